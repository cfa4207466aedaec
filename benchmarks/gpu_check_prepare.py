"""Companion of ``gpu_check.py``: export the portable OpenMM files it checks, with CPU reference values.

Run where mlff-distiller is installed; copy the folder to the GPU machine, which needs only torch:

    OMP_NUM_THREADS=1 python benchmarks/gpu_check_prepare.py gpu-check [--water-atoms 1536 12288] [--precision float32]
    python benchmarks/gpu_check.py gpu-check          # on the GPU machine

For aspirin (organic-standard) and water boxes (water-standard; water-32 replicated to each
``--water-atoms``, a multiple of 96) it writes ``NAME.pt`` (``mlffd export --engine openmm``:
energy-only, verified; without a topology, so that the export's own check runs on a small cluster
rather than on 12,288 atoms under autograd) and ``NAME.npz``: ``numbers`` (for ``set_species``),
``positions`` (nm), ``box`` (nm, rows; absent in vacuum), ``energy`` (kJ/mol) and ``forces``
(kJ/mol/nm) of the float64 student from the fused C++ kernel (an implementation independent of
the file's autograd, and one that needs no autograd memory), and ``manifest.json`` listing them.
"""

import argparse
import itertools
import json
from pathlib import Path

import torch

import numpy as np
from ase import Atoms

from mlff_distiller.data import bundled_structure, bundled_student
from mlff_distiller.export import export_openmm
from mlff_distiller.models import StudentCalculator
from mlff_distiller.structures import read_structure
from mlff_distiller.units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM

#: Atoms of the bundled water box that larger boxes replicate.
WATER_UNIT = 96


def replicas(copies: int) -> tuple[int, int, int]:
    """The most cubic (a, b, c) with a * b * c == copies."""
    factors = [
        (a, b, copies // (a * b)) for a, b in itertools.product(range(1, copies + 1), repeat=2) if copies % (a * b) == 0
    ]
    return min(factors, key=lambda f: (max(f) - min(f), f))


def water_box(atoms_wanted: int) -> Atoms:
    """The bundled 96-atom water box replicated to ``atoms_wanted`` atoms (Å, periodic)."""
    if atoms_wanted % WATER_UNIT:
        raise SystemExit(f"--water-atoms must be multiples of {WATER_UNIT}, not {atoms_wanted}")
    return read_structure(bundled_structure("water-32")).repeat(replicas(atoms_wanted // WATER_UNIT))


def reference(checkpoint: Path, atoms: Atoms) -> dict[str, np.ndarray]:
    """Atomic numbers, positions and box (nm), energy (kJ/mol) and forces (kJ/mol/nm) of the float64
    student (fused kernel)."""
    atoms = atoms.copy()
    atoms.calc = StudentCalculator(checkpoint, dtype=torch.float64, kernel="fused")
    values = {
        "numbers": atoms.numbers,
        "positions": atoms.positions / NM_TO_ANGSTROM,
        "energy": np.array(atoms.get_potential_energy() * EV_TO_KJ_PER_MOL),
        "forces": atoms.get_forces() * EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM,
    }
    if atoms.pbc.all():
        values["box"] = np.asarray(atoms.cell) / NM_TO_ANGSTROM
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="folder to write the files into")
    parser.add_argument(
        "--water-atoms", type=int, nargs="*", default=[1536, 12288], help="water box sizes (default: 1536 12288)"
    )
    parser.add_argument(
        "--precision", choices=["float32", "float64"], default="float32", help="exported dtype (default: float32)"
    )
    args = parser.parse_args()

    args.folder.mkdir(parents=True, exist_ok=True)
    cases = {"aspirin": ("organic-standard", read_structure(bundled_structure("aspirin")))}
    cases.update({f"water-{n}": ("water-standard", water_box(n)) for n in args.water_atoms})
    manifest = {"precision": args.precision, "torch_version": torch.__version__, "cases": {}}
    for name, (student, atoms) in cases.items():
        checkpoint = bundled_student(student)
        export_openmm(checkpoint, args.folder / f"{name}.pt", precision=args.precision, periodic=True, overwrite=True)
        np.savez(args.folder / f"{name}.npz", **reference(checkpoint, atoms))
        manifest["cases"][name] = {"atoms": len(atoms), "student": student, "periodic": bool(atoms.pbc.all())}
        print(f"wrote {name}.pt and {name}.npz ({len(atoms)} atoms, {student}, {args.precision})", flush=True)
    (args.folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
