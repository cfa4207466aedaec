"""pair_style mlffd under ``hybrid`` and ``hybrid/overlay``, and ``NULL`` in its ``pair_coeff``.

Expected values come from code other than the plugin: the student in PyTorch (float64) on the
atoms it sees, LAMMPS's own ``zbl`` run alone, and Lennard-Jones in numpy. The student has 3
layers, so its energies reach 15 Å, beyond the ghost shell: the per-layer feature exchange must
carry the same data with atoms of a NULL type in the box and a skip neighbour list.
"""

import itertools

import torch

import numpy as np
import pytest
from ase import Atoms
from ase.data import atomic_numbers
from kit import ENGINE64, assert_close
from lammps_harness import read_dump, run_lammps, thermo, water_box, write_data

from mlff_distiller.export.lammps import export_lammps
from mlff_distiller.models import Student, preset, save_checkpoint
from mlff_distiller.plugin.lammps import build_plugin

SCRIPT = """
units metal
atom_style atomic
boundary p p p
read_data system.data
{pair}
compute energy all pe/atom
dump frame all custom 1 dump.txt id type x y z fx fy fz c_energy
dump_modify frame format float %.17g
thermo_style custom step pe {columns}
thermo_modify format float %.17g
run 0
"""

#: Lennard-Jones parameters (epsilon eV, sigma Å) of the pairs lj/cut covers, by style: under
#: hybrid the pairs with argon; under hybrid/overlay O-O as well, on top of the student. Cutoff 4 Å.
LJ = {
    "hybrid": {("O", "Ar"): (0.005, 2.5), ("H", "Ar"): (0.003, 2.2), ("Ar", "Ar"): (0.0104, 3.4)},
    "hybrid/overlay": {
        ("O", "O"): (0.0067, 3.15),
        ("O", "Ar"): (0.005, 2.5),
        ("H", "Ar"): (0.003, 2.2),
        ("Ar", "Ar"): (0.0104, 3.4),
    },
}
LJ_CUTOFF = 4.0
TYPES = {"O": 1, "H": 2, "Ar": 3}


def with_lj(style: str, model) -> str:
    """The pair_style and pair_coeff lines: mlffd on types O H (NULL for Ar), lj/cut on the pairs of LJ[style]."""
    lines = [f"pair_style {style} mlffd {model} lj/cut {LJ_CUTOFF}", "pair_coeff * * mlffd O H NULL"]
    lines += [f"pair_coeff {TYPES[a]} {TYPES[b]} lj/cut {e} {s}" for (a, b), (e, s) in LJ[style].items()]
    return "\n".join(lines)


#: zbl between the nuclei of O (type 1) and H (type 2); ``{style}`` is "zbl " under hybrid.
ZBL = """pair_coeff 1 1 {style}8 8
pair_coeff 1 2 {style}8 1
pair_coeff 2 2 {style}1 1"""


@pytest.fixture(scope="module")
def student():
    torch.manual_seed(3)
    model = Student(preset("ultra-tiny", elements=[1, 8])).double().eval()
    with torch.no_grad():  # reference energies far from zero: an energy leaking onto a NULL atom shows
        model.network.energy_scale.fill_(0.7)
        model.network.reference_energies.copy_(torch.tensor([-13.6, -2041.0]))
    return model


@pytest.fixture(scope="module")
def model_file(student, tmp_path_factory):
    build_plugin()
    folder = tmp_path_factory.mktemp("model")
    save_checkpoint(student, folder / "student.ckpt")
    return export_lammps(folder / "student.ckpt", folder / "student.pt", precision="float64")


def water_and_argon() -> Atoms:
    """8 waters in a 7 Å cube and 4 argon atoms in the gaps between them."""
    atoms = water_box(2, density=0.7, seed=1)
    half = atoms.cell.lengths()[0] / 2
    corners = np.array([[0, 0, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1]]) * half + 0.3
    return atoms + Atoms("Ar4", positions=corners)


def run(atoms: Atoms, pair: str, folder, ranks: int, columns: str = "") -> dict:
    """Energy (eV), forces (eV/Å) and per-atom energies (eV) by atom id, positions, and the last
    thermo row (with the extra ``columns``) of one run."""
    folder.mkdir(exist_ok=True)
    write_data(atoms, folder / "system.data", ["O", "H", "Ar"][: len(set(atoms.numbers))])
    run_lammps(SCRIPT.format(pair=pair, columns=columns), folder, ranks=ranks)
    dump = read_dump(folder / "dump.txt")
    return {
        "energy": thermo(folder / "log.lammps")["PotEng"][-1],
        "thermo": {name: column[-1] for name, column in thermo(folder / "log.lammps").items()},
        "forces": np.stack([dump["fx"], dump["fy"], dump["fz"]], 1),
        "atomic": dump["c_energy"],
        "positions": np.stack([dump["x"], dump["y"], dump["z"]], 1),
        "cell": np.diag(dump["box"][:, 1] - dump["box"][:, 0]),
    }


def student_on(student, symbols, positions, cell):
    """Energy, forces and per-atom energies of the student on these atoms alone (periodic)."""
    species = student.species([atomic_numbers[s] for s in symbols])
    positions, cell, pbc = torch.tensor(positions), torch.tensor(cell), torch.ones(3, dtype=torch.bool)
    energy, forces = student.energy_and_forces(positions, species, cell, pbc)
    atomic = student.atomic_energies(positions, species, cell, pbc).detach().numpy()
    return float(energy), forces.detach().numpy(), atomic


def lennard_jones(table, symbols, positions, cell):
    """Energy, forces and per-atom energies (half of each pair) of the pairs in ``table``, over periodic images."""
    n = len(symbols)
    energy, forces, atomic = 0.0, np.zeros((n, 3)), np.zeros(n)
    shifts = [np.array(s) @ cell for s in itertools.product((-1, 0, 1), repeat=3)]
    for i, j in itertools.product(range(n), repeat=2):
        pair = (symbols[i], symbols[j]) if (symbols[i], symbols[j]) in table else (symbols[j], symbols[i])
        if pair not in table:
            continue
        epsilon, sigma = table[pair]
        for shift in shifts:
            d = positions[j] + shift - positions[i]
            r = np.linalg.norm(d)
            if r == 0.0 or r >= LJ_CUTOFF:
                continue
            phi = 4 * epsilon * ((sigma / r) ** 12 - (sigma / r) ** 6)
            slope = 4 * epsilon * (-12 * sigma**12 / r**13 + 6 * sigma**6 / r**7)
            energy += 0.5 * phi
            atomic[i] += 0.5 * phi
            forces[i] += slope * d / r  # -dphi/dx_i, with d = x_j - x_i
    return energy, forces, atomic


@pytest.mark.parametrize("style, ranks", [("hybrid", 1), ("hybrid", 2), ("hybrid/overlay", 2)])
def test_mlffd_on_water_and_lj_on_argon_is_the_sum_of_the_parts(style, ranks, student, model_file, tmp_path):
    atoms = water_and_argon()
    pair = with_lj(style, model_file) + "\ncompute student all pair mlffd"
    result = run(atoms, pair, tmp_path / "lj", ranks, columns="c_student")
    symbols = atoms.get_chemical_symbols()
    water = [k for k, s in enumerate(symbols) if s != "Ar"]
    energy, forces, atomic = student_on(
        student, [symbols[k] for k in water], result["positions"][water], result["cell"]
    )
    lj_energy, lj_forces, lj_atomic = lennard_jones(LJ[style], symbols, result["positions"], result["cell"])
    forces_expected, atomic_expected = lj_forces.copy(), lj_atomic.copy()
    forces_expected[water] += forces
    atomic_expected[water] += atomic
    assert_close(result["energy"], energy + lj_energy, ENGINE64, "total energy")
    assert_close(result["thermo"]["c_student"], energy, ENGINE64, "the student's share (compute pair mlffd)")
    assert_close(result["forces"], forces_expected, ENGINE64, "forces")
    assert_close(result["atomic"], atomic_expected, ENGINE64, "per-atom energies")


@pytest.mark.parametrize("ranks", [1, 2])
def test_overlay_of_mlffd_and_zbl_is_the_sum_of_the_parts(ranks, student, model_file, tmp_path):
    atoms = water_box(2, density=0.7, seed=4)
    overlay = f"pair_style hybrid/overlay mlffd {model_file} zbl 0.5 1.0\npair_coeff * * mlffd O H\n{ZBL.format(style='zbl ')}"
    both = run(atoms, overlay, tmp_path / "overlay", ranks)
    zbl = run(atoms, f"pair_style zbl 0.5 1.0\n{ZBL.format(style='')}", tmp_path / "zbl", ranks)
    energy, forces, atomic = student_on(student, atoms.get_chemical_symbols(), both["positions"], both["cell"])
    assert abs(zbl["energy"]) > 1e-3, "the water's O-H bonds should reach into zbl's switching range"
    assert_close(both["energy"], energy + zbl["energy"], ENGINE64, "total energy")
    assert_close(both["forces"], forces + zbl["forces"], ENGINE64, "forces")
    assert_close(both["atomic"], atomic + zbl["atomic"], ENGINE64, "per-atom energies")
