"""The ASE calculator against the student it drives, and its stress against a strain derivative."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from kit import EXACT, FINITE_DIFFERENCE, assert_close, random_box
from mlff_distiller import UnsupportedElementError
from mlff_distiller.models import StudentCalculator, save_checkpoint


def test_molecule_matches_the_student(tiny_student):
    atoms = molecule("CH3CH2OH")
    atoms.calc = StudentCalculator(tiny_student)
    species = tiny_student.species(atoms.numbers)
    energy, forces = tiny_student.energy_and_forces(torch.tensor(atoms.positions), species)
    assert_close(atoms.get_potential_energy(), energy, EXACT, "energy")
    assert_close(atoms.get_forces(), forces, EXACT, "forces")
    assert_close(atoms.get_potential_energies().sum(), energy, EXACT, "per-atom energies sum")


def test_loads_from_a_checkpoint_path(tiny_student, tmp_path):
    path = save_checkpoint(tiny_student, tmp_path / "s.ckpt")
    atoms = molecule("H2O")
    atoms.calc = StudentCalculator(path)
    reference = molecule("H2O")
    reference.calc = StudentCalculator(tiny_student)
    assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-12)


def test_stress_is_the_strain_derivative(tiny_student, rng):
    cell = np.array([[8.0, 0.0, 0.0], [0.5, 8.5, 0.0], [0.2, -0.3, 9.0]])
    positions, species = random_box(16, cell, 4, rng, spacing=1.2)
    numbers = [tiny_student.elements[i] for i in species.tolist()]
    atoms = Atoms(numbers=numbers, positions=positions.numpy(), cell=cell, pbc=True)
    atoms.calc = StudentCalculator(tiny_student)
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
                strained.calc = StudentCalculator(tiny_student)
                energies.append(strained.get_potential_energy())
            numeric[i, j] = (energies[0] - energies[1]) / (2 * h) / atoms.get_volume()
    numeric = 0.5 * (numeric + numeric.T)
    assert_close(stress, numeric, FINITE_DIFFERENCE, "stress vs finite strain")


def test_unsupported_element_is_named(tiny_student):
    atoms = Atoms("FeO", positions=[[0, 0, 0], [1.8, 0, 0]])
    atoms.calc = StudentCalculator(tiny_student)
    with pytest.raises(UnsupportedElementError, match="Fe"):
        atoms.get_potential_energy()
