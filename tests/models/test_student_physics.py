"""Invariances, forces, cutoff smoothness and TorchScript parity of every student preset."""

import torch

import numpy as np
import pytest
from kit import EXACT, FINITE_DIFFERENCE, TIGHT, assert_close, random_molecule, random_rotation

from mlff_distiller.models import Student, StudentConfig

NO_CELL = torch.zeros((3, 3), dtype=torch.float64)
NO_PBC = torch.zeros(3, dtype=torch.bool)


def energy(student, positions, species):
    return student(positions, species, NO_CELL, NO_PBC)


def test_rotation_translation_permutation(any_student, rng):
    positions, species = random_molecule(14, len(any_student.elements), rng)
    e0, f0 = any_student.energy_and_forces(positions, species)

    rotation = torch.tensor(random_rotation(rng))
    e_rot, f_rot = any_student.energy_and_forces(positions @ rotation.T, species)
    assert_close(e_rot, e0, TIGHT, "energy after rotation")
    assert_close(f_rot, f0 @ rotation.T, TIGHT, "forces after rotation (equivariance)")

    shift = torch.tensor(rng.normal(size=3) * 10.0)
    e_tr, f_tr = any_student.energy_and_forces(positions + shift, species)
    assert_close(e_tr, e0, TIGHT, "energy after translation")
    assert_close(f_tr, f0, TIGHT, "forces after translation")

    order = torch.tensor(rng.permutation(len(species)))
    e_perm, f_perm = any_student.energy_and_forces(positions[order], species[order])
    assert_close(e_perm, e0, TIGHT, "energy after permutation")
    assert_close(f_perm, f0[order], TIGHT, "forces after permutation")


def test_reflection_keeps_energy(tiny_student, rng):
    positions, species = random_molecule(10, 4, rng)
    mirrored = positions * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    assert_close(
        energy(tiny_student, mirrored, species), energy(tiny_student, positions, species), TIGHT, "mirror energy"
    )


def test_forces_are_minus_finite_difference_gradient(any_student, rng):
    positions, species = random_molecule(8, len(any_student.elements), rng)
    _, forces = any_student.energy_and_forces(positions, species)
    h = 1e-5
    numeric = torch.zeros_like(positions)
    for atom in range(positions.shape[0]):
        for axis in range(3):
            plus, minus = positions.clone(), positions.clone()
            plus[atom, axis] += h
            minus[atom, axis] -= h
            numeric[atom, axis] = -(energy(any_student, plus, species) - energy(any_student, minus, species)) / (2 * h)
    assert_close(forces, numeric.detach(), FINITE_DIFFERENCE, "forces vs finite difference")


def test_crossing_the_cutoff_is_smooth(tiny_student):
    cutoff = tiny_student.cutoff
    species = torch.tensor([0, 1, 3])
    base = torch.tensor([[0.0, 0.0, 0.0], [1.1, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)

    def place(distance):
        positions = base.clone()
        positions[2] = torch.tensor([0.0, distance, 0.0], dtype=torch.float64)
        return tiny_student.energy_and_forces(positions, species)

    e_in, f_in = place(cutoff - 1e-6)
    e_out, f_out = place(cutoff + 1e-6)
    assert abs(float(e_in - e_out)) < TIGHT
    assert float((f_in - f_out).abs().max()) < FINITE_DIFFERENCE
    # The neighbour does interact further inside: the test would catch a model that ignores it.
    e_inside, _ = place(cutoff - 1.0)
    assert abs(float(e_inside - e_out)) > FINITE_DIFFERENCE


def test_envelope_multiplies_every_filter():
    """A one-neighbour pair energy and its slope both go to zero at the cutoff."""
    torch.manual_seed(0)
    student = Student(StudentConfig(features=8, layers=2, n_rbf=6, cutoff=4.0, elements=[1, 8])).double()
    species = torch.tensor([0, 1])
    distances = torch.linspace(3.9, 3.999999, 50, dtype=torch.float64)
    alone = energy(student, torch.zeros((1, 3), dtype=torch.float64), species[:1]) + energy(
        student, torch.zeros((1, 3), dtype=torch.float64), species[1:]
    )
    interaction = []
    for d in distances:
        positions = torch.tensor([[0.0, 0.0, 0.0], [float(d), 0.0, 0.0]], dtype=torch.float64)
        interaction.append(float(energy(student, positions, species) - alone))
    assert abs(interaction[-1]) < TIGHT
    slope = np.gradient(np.array(interaction), distances.numpy())
    assert abs(slope[-1]) < 10 * FINITE_DIFFERENCE


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_torchscript_matches_eager(any_student, rng, dtype):
    student = any_student.to(dtype)
    scripted = torch.jit.script(student)
    positions, species = random_molecule(12, len(student.elements), rng)
    positions = positions.to(dtype).requires_grad_(True)
    cell, pbc = NO_CELL.to(dtype), NO_PBC
    e_eager = student(positions, species, cell, pbc)
    (g_eager,) = torch.autograd.grad(e_eager, positions)
    e_script = scripted(positions, species, cell, pbc)
    (g_script,) = torch.autograd.grad(e_script, positions)
    tolerance = EXACT if dtype == torch.float64 else 1e-6
    assert_close(e_script, e_eager, tolerance, "scripted energy")
    assert_close(g_script, g_eager, tolerance, "scripted forces")


def test_preset_sizes_match_the_reference_family(any_student):
    targets = {110: 427_000, 45: 77_000, 22: 21_000}
    target = targets[any_student.config.features]
    assert abs(any_student.parameter_count() - target) / target < 0.03
