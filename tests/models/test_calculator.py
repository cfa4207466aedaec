"""The ASE calculator (frozen forces module, frozen TorchScript copy of the student for stress) against
the eager student it drives, and its stress against a strain derivative."""

import torch

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from kit import EXACT, FINITE_DIFFERENCE, assert_close, random_box

from mlff_distiller import InvalidValueError, UnsupportedElementError
from mlff_distiller.models import StudentCalculator, save_checkpoint
from mlff_distiller.models.kernel import default_threads


@pytest.mark.parametrize("kernel", ["portable", "fused"])
def test_molecule_matches_the_student(tiny_student, kernel):
    atoms = molecule("CH3CH2OH")
    atoms.calc = StudentCalculator(tiny_student, kernel=kernel)
    species = tiny_student.species(atoms.numbers)
    energy, forces = tiny_student.energy_and_forces(torch.tensor(atoms.positions), species)
    assert_close(atoms.get_potential_energy(), energy, EXACT, "energy")
    assert_close(atoms.get_forces(), forces, EXACT, "forces")
    assert_close(atoms.get_potential_energies().sum(), energy, EXACT, "per-atom energies sum")


def test_threads_of_the_fused_kernel(tiny_student):
    """Two threads: the eager student's energy and forces still (summation order only); default count from
    OMP_NUM_THREADS (1 in the tests)."""
    atoms = molecule("CH3CH2OH")
    atoms.calc = StudentCalculator(tiny_student, threads=2)
    assert atoms.calc.threads == 2 and StudentCalculator(tiny_student).threads == default_threads() == 1
    species = tiny_student.species(atoms.numbers)
    energy, forces = tiny_student.energy_and_forces(torch.tensor(atoms.positions), species)
    assert_close(atoms.get_potential_energy(), energy, EXACT, "energy")
    assert_close(atoms.get_forces(), forces, EXACT, "forces")


def test_unknown_keyword_is_refused_naming_the_accepted_ones(tiny_student):
    with pytest.raises(TypeError, match=r"'thread'.*threads, label, atoms, directory"):
        StudentCalculator(tiny_student, thread=2)
    with pytest.raises(InvalidValueError, match="threads"):
        StudentCalculator(tiny_student, threads=0)


def test_ase_keywords_it_accepts(tiny_student, tmp_path):
    atoms = molecule("H2O")
    calculator = StudentCalculator(tiny_student, atoms=atoms, label="water", directory=tmp_path)
    assert atoms.calc is calculator and calculator.directory == str(tmp_path)
    assert calculator.label == f"{tmp_path}/water"
    assert np.isfinite(atoms.get_potential_energy())


def test_loads_from_a_checkpoint_path(tiny_student, tmp_path):
    path = save_checkpoint(tiny_student, tmp_path / "s.ckpt")
    atoms = molecule("H2O")
    atoms.calc = StudentCalculator(path)
    reference = molecule("H2O")
    reference.calc = StudentCalculator(tiny_student)
    assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=EXACT)


def test_stress_is_the_strain_derivative(tiny_student, rng):
    cell = np.array([[8.0, 0.0, 0.0], [0.5, 8.5, 0.0], [0.2, -0.3, 9.0]])
    positions, species = random_box(16, cell, 4, rng, spacing=1.2)
    numbers = [tiny_student.elements[i] for i in species.tolist()]
    atoms = Atoms(numbers=numbers, positions=positions.numpy(), cell=cell, pbc=True)
    calculator = StudentCalculator(tiny_student)
    atoms.calc = calculator
    stress = atoms.get_stress(voigt=False)
    h = 1e-5
    numeric = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            energies = []
            for sign in (1, -1):
                strain = np.eye(3)
                strain[i, j] += sign * h
                strained = atoms.copy()
                strained.set_cell(cell @ strain, scale_atoms=True)
                strained.calc = calculator
                energies.append(strained.get_potential_energy())
            numeric[i, j] = (energies[0] - energies[1]) / (2 * h) / atoms.get_volume()
    numeric = 0.5 * (numeric + numeric.T)
    assert_close(stress, numeric, FINITE_DIFFERENCE, "stress vs finite strain")


def test_unsupported_element_is_named(tiny_student):
    atoms = Atoms("FeO", positions=[[0, 0, 0], [1.8, 0, 0]])
    atoms.calc = StudentCalculator(tiny_student)
    with pytest.raises(UnsupportedElementError, match="Fe"):
        atoms.get_potential_energy()


def _eager(student, atoms: Atoms):
    """Energy (eV), per-atom energies (eV) and forces (eV/Å) of ``atoms`` from the eager student."""
    species = student.species(atoms.numbers)
    periodic = bool(atoms.pbc.all())
    cell = torch.tensor(np.asarray(atoms.cell)) if periodic else None
    pbc = torch.tensor(atoms.pbc) if periodic else None
    energy, forces = student.energy_and_forces(torch.tensor(atoms.positions), species, cell, pbc)
    per_atom = student.atomic_energies(
        torch.tensor(atoms.positions), species, torch.tensor(np.asarray(atoms.cell)), torch.tensor(atoms.pbc)
    )
    return energy, per_atom.detach(), forces


def _assert_matches_eager(student, atoms: Atoms) -> None:
    energy, per_atom, forces = _eager(student, atoms)
    assert_close(atoms.get_potential_energy(), energy, EXACT, "energy")
    assert_close(atoms.get_potential_energies(), per_atom, EXACT, "per-atom energies")
    assert_close(atoms.get_forces(), forces, EXACT, "forces")


def test_compiled_copy_matches_the_eager_student_in_a_periodic_box(tiny_student, rng):
    cell = np.array([[7.5, 0.0, 0.0], [0.4, 8.0, 0.0], [-0.3, 0.2, 8.5]])
    positions, species = random_box(20, cell, 4, rng, spacing=1.2)
    numbers = [tiny_student.elements[i] for i in species.tolist()]
    atoms = Atoms(numbers=numbers, positions=positions.numpy(), cell=cell, pbc=True)
    calculator = StudentCalculator(tiny_student)
    assert isinstance(calculator.compiled, torch.jit.ScriptModule)
    atoms.calc = calculator
    _assert_matches_eager(tiny_student, atoms)
    for _ in range(3):  # new positions on the same calculator (some atoms leave the box: wrapped inside)
        atoms.positions = atoms.positions + rng.normal(scale=0.3, size=atoms.positions.shape)
        _assert_matches_eager(tiny_student, atoms)


def test_changed_atomic_numbers_are_mapped_again(tiny_student):
    calculator = StudentCalculator(tiny_student)
    ethanol = molecule("CH3CH2OH")
    ethanol.calc = calculator
    _assert_matches_eager(tiny_student, ethanol)
    water = molecule("H2O")  # another molecule on the same calculator
    water.calc = calculator
    _assert_matches_eager(tiny_student, water)
    swapped = ethanol.copy()  # same number of atoms, other elements: carbon and oxygen exchanged
    swapped.numbers = np.where(ethanol.numbers == 6, 8, np.where(ethanol.numbers == 8, 6, ethanol.numbers))
    swapped.calc = calculator
    _assert_matches_eager(tiny_student, swapped)
    ethanol.numbers = swapped.numbers  # the numbers of an Atoms changed in place between calls
    assert ethanol.get_potential_energy() == pytest.approx(swapped.get_potential_energy(), abs=EXACT)


def test_unsupported_element_after_a_supported_one(tiny_student):
    calculator = StudentCalculator(tiny_student)
    water = molecule("H2O")
    water.calc = calculator
    energy = water.get_potential_energy()
    iron = Atoms("FeO", positions=[[0, 0, 0], [1.8, 0, 0]])
    iron.calc = calculator
    with pytest.raises(UnsupportedElementError, match="Fe"):
        iron.get_potential_energy()
    again = molecule("H2O")  # a supported structure after the error: mapped again, same energy
    again.calc = calculator
    assert again.get_potential_energy() == pytest.approx(energy, abs=EXACT)


def test_the_callers_student_is_left_untouched(tiny_student):
    student = tiny_student.float().train()
    atoms = molecule("H2O")
    atoms.calc = StudentCalculator(student, dtype=torch.float64)
    atoms.get_forces()
    assert student.training
    assert all(p.dtype == torch.float32 and p.requires_grad for p in student.parameters())
    assert atoms.calc.student is not student
