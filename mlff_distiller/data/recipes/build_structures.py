"""Rebuild the bundled structures: benchmark molecules from SMILES and a 32-molecule water box, relaxed by GFN2-xTB.

Run from the repository root: ``OMP_NUM_THREADS=1 python mlff_distiller/data/recipes/build_structures.py``.
Outputs: ``mlff_distiller/data/molecules/<name>.xyz`` and ``mlff_distiller/data/systems/water-32.xyz``.
"""

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write
from ase.optimize import BFGS, FIRE

from mlff_distiller.structures import molecule_from_smiles
from mlff_distiller.teachers import TeacherCalculator, load_teacher

DATA = Path(__file__).resolve().parents[1]

#: The classic MD benchmark molecules (MD17 and relatives), by SMILES.
MOLECULES = {
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "ethanol": "CCO",
    "malonaldehyde": "O=CCC=O",
    "uracil": "O=C1C=CNC(=O)N1",
    "toluene": "Cc1ccccc1",
    "naphthalene": "c1ccc2ccccc2c1",
    "salicylic-acid": "OC(=O)c1ccccc1O",
    "benzene": "c1ccccc1",
    "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    "caffeine": "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
}

#: Water box: molecules and density (g/cm³).
WATER_MOLECULES = 32
WATER_DENSITY = 1.0


def relaxed(atoms: Atoms, fmax: float, steps: int, optimizer=BFGS) -> Atoms:
    """``atoms`` relaxed by GFN2-xTB to ``fmax`` (eV/Å) or ``steps`` steps."""
    atoms = atoms.copy()
    atoms.calc = TeacherCalculator(load_teacher("gfn2-xtb"))
    optimizer(atoms, logfile=None).run(fmax=fmax, steps=steps)
    atoms.calc = None
    return atoms


def water_box(n_molecules: int, density: float, seed: int = 0) -> Atoms:
    """Randomly packed rigid waters (O-H 0.9572 Å, H-O-H 104.52°) in a cube of the given density (g/cm³)."""
    rng = np.random.default_rng(seed)
    mass = 18.01528 * n_molecules / 0.602214076  # g/mol -> Å³ at 1 g/cm³
    side = (mass / density) ** (1 / 3)
    angle = np.radians(104.52)
    template = np.array([[0, 0, 0], [0.9572, 0, 0], [0.9572 * np.cos(angle), 0.9572 * np.sin(angle), 0]])
    cell = np.eye(3) * side
    placed = []
    while len(placed) < n_molecules:
        q, r = np.linalg.qr(rng.normal(size=(3, 3)))
        trial = template @ (q * np.sign(np.diag(r))).T + rng.uniform(0, side, 3)
        ok = True
        for other in placed:
            d = trial[:, None, :] - other[None, :, :]
            d -= np.round(d / side) * side
            dist = np.linalg.norm(d, axis=2)
            if dist[0, 0] < 2.6 or dist.min() < 1.7:
                ok = False
                break
        if ok:
            placed.append(trial)
    atoms = Atoms("OH2" * n_molecules, positions=np.concatenate(placed), cell=cell, pbc=True)
    atoms.wrap()
    return atoms


def main() -> None:
    for name, smiles in MOLECULES.items():
        atoms = relaxed(molecule_from_smiles(smiles, seed=0), fmax=0.01, steps=300)
        atoms.info["smiles"] = smiles
        write(DATA / "molecules" / f"{name}.xyz", atoms, format="extxyz")
        print(f"{name}: {len(atoms)} atoms")
    box = relaxed(water_box(WATER_MOLECULES, WATER_DENSITY), fmax=0.2, steps=40, optimizer=FIRE)
    box.info["density_g_cm3"] = WATER_DENSITY
    write(DATA / "systems" / f"water-{WATER_MOLECULES}.xyz", box, format="extxyz")
    print(f"water-{WATER_MOLECULES}: {len(box)} atoms, box {box.cell[0, 0]:.3f} Å")


if __name__ == "__main__":
    main()
