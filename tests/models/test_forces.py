"""The hand-written reverse passes against autograd on the same student: StudentForces
(TorchScript operations) and FusedStudentForces (the C++ kernel), through the same tests."""

import numpy as np
import pytest
import torch

from kit import TIGHT, assert_close, random_box, random_molecule
from mlff_distiller.models import FusedStudentForces, StudentForces

NO_CELL = torch.zeros((3, 3), dtype=torch.float64)
NO_PBC = torch.zeros(3, dtype=torch.bool)
PBC = torch.ones(3, dtype=torch.bool)


def autograd_reference(student, positions, species, cell, pbc):
    leaf = positions.clone().requires_grad_(True)
    energies = student.atomic_energies(leaf, species, cell, pbc)
    (gradient,) = torch.autograd.grad(energies.sum(), leaf)
    return energies.detach(), -gradient


@pytest.fixture(params=["portable", "fused"])
def forces_class(request):
    """Each way of computing forces without autograd (constructing the fused one loads the kernel)."""
    return FusedStudentForces if request.param == "fused" else StudentForces


def check(forces_class, student, positions, species, cell, pbc, scripted=False):
    forces_module = forces_class(student)
    if scripted:
        forces_module = torch.jit.script(forces_module)
    energies, forces = forces_module(positions, species, cell, pbc)
    expected_energies, expected_forces = autograd_reference(student, positions, species, cell, pbc)
    assert_close(energies, expected_energies, TIGHT, "per-atom energies")
    assert_close(forces, expected_forces, TIGHT, "forces")


def test_molecule_every_preset(forces_class, any_student, rng):
    positions, species = random_molecule(14, len(any_student.elements), rng)
    check(forces_class, any_student, positions, species, NO_CELL, NO_PBC)


def test_scripted_and_frozen_like_openmm_torch(forces_class, tiny_student, rng):
    positions, species = random_molecule(9, len(tiny_student.elements), rng)
    check(forces_class, tiny_student, positions, species, NO_CELL, NO_PBC, scripted=True)
    frozen = torch.jit.freeze(torch.jit.script(forces_class(tiny_student.requires_grad_(False)).eval()))
    energies, forces = frozen(positions, species, NO_CELL, NO_PBC)
    assert_close(forces, autograd_reference(tiny_student, positions, species, NO_CELL, NO_PBC)[1], TIGHT, "frozen forces")


@pytest.mark.parametrize("cell", [np.diag([7.0, 7.5, 8.0]), np.array([[8.0, 0.0, 0.0], [2.0, 7.5, 0.0], [1.0, 1.5, 7.0]])])
def test_small_periodic_boxes(forces_class, tiny_student, rng, cell):
    """Boxes smaller than twice the cutoff: an atom meets several images of the same neighbour."""
    positions, species = random_box(24, cell, len(tiny_student.elements), rng)
    check(forces_class, tiny_student, positions, species, torch.tensor(cell), PBC)


def test_atoms_far_outside_a_triclinic_cell(forces_class, tiny_student, rng):
    """Atoms several cells away from the one given: wrapped before the pairs are searched."""
    cell = np.array([[8.0, 0.0, 0.0], [2.0, 7.5, 0.0], [1.0, 1.5, 7.0]])
    positions, species = random_box(20, cell, len(tiny_student.elements), rng)
    moved = positions + torch.tensor(rng.integers(-3, 4, size=(20, 3)) @ cell, dtype=torch.float64)
    check(forces_class, tiny_student, moved, species, torch.tensor(cell), PBC)
    energies, _ = forces_class(tiny_student)(moved, species, torch.tensor(cell), PBC)
    assert_close(energies, forces_class(tiny_student)(positions, species, torch.tensor(cell), PBC)[0], TIGHT, "energies")


def test_large_box_with_cell_list_and_edge_chunks(forces_class, tiny_student, rng):
    """Enough atoms for the cell list and for several edge chunks (both modules chunk on CPU)."""
    cell = np.diag([16.0, 16.0, 16.0])
    positions, species = random_box(380, cell, len(tiny_student.elements), rng, spacing=1.0)
    check(forces_class, tiny_student, positions, species, torch.tensor(cell), PBC)


def test_large_triclinic_cell_with_atoms_on_and_far_outside_its_faces(forces_class, tiny_student, rng):
    """A cell three cutoffs wide: the kernel's cell list, bins wrapping across faces and edges."""
    cell = np.array([[16.0, 0.0, 0.0], [4.0, 15.5, 0.0], [2.0, 3.0, 16.0]])
    positions, species = random_box(260, cell, len(tiny_student.elements), rng, spacing=1.0)
    fractional = positions[:3].numpy() @ np.linalg.inv(cell)
    fractional[0, 0], fractional[1, 1], fractional[2] = 0.0, 1.0 - 1e-15, [0.0, 1.0, 0.0]  # on faces and an edge
    positions[:3] = torch.tensor(fractional @ cell)
    positions[3:40] += torch.tensor(rng.integers(-3, 4, size=(37, 3)) @ cell, dtype=torch.float64)
    check(forces_class, tiny_student, positions, species, torch.tensor(cell), PBC)


def test_slab_periodic_in_two_directions(forces_class, tiny_student, rng):
    """Partly periodic: the TorchScript neighbour search, its edges handed to the kernel."""
    cell = np.diag([9.0, 8.0, 12.0])
    positions, species = random_box(40, cell, len(tiny_student.elements), rng, spacing=1.1)
    check(forces_class, tiny_student, positions, species, torch.tensor(cell), torch.tensor([True, True, False]))


def test_large_cluster_in_vacuum(forces_class, tiny_student, rng):
    """More than 64 atoms without a cell: the kernel bins the bounding box."""
    positions, species = random_box(150, np.diag([14.0, 9.0, 6.0]), len(tiny_student.elements), rng, spacing=1.2)
    check(forces_class, tiny_student, positions, species, NO_CELL, NO_PBC)


def test_atoms_without_neighbours(forces_class, tiny_student):
    """No edge at all: zero forces, and each atom's energy from its species alone."""
    positions = torch.tensor([[0.0, 0.0, 0.0], [20.0, 0.0, 0.0], [0.0, 30.0, 0.0]], dtype=torch.float64)
    species = torch.tensor([0, 1, 0])
    energies, forces = forces_class(tiny_student)(positions, species, NO_CELL, NO_PBC)
    assert torch.equal(forces, torch.zeros_like(forces))
    assert energies[0] == energies[2] and energies[0] != energies[1]
    check(forces_class, tiny_student, positions, species, NO_CELL, NO_PBC)


def test_float32(forces_class, tiny_student, rng):
    student = tiny_student.float()
    positions, species = random_molecule(12, len(student.elements), rng)
    energies, forces = forces_class(student)(positions.float(), species, NO_CELL.float(), NO_PBC)
    _, expected = autograd_reference(student.double(), positions, species, NO_CELL, NO_PBC)
    assert_close(forces.double(), expected, 1e-4, "float32 forces")


def test_kernel_refuses_bad_arguments(tiny_student, rng):
    """Mixed dtypes, species or atoms out of range: a clear error from the kernel, never a wild read."""
    module = FusedStudentForces(tiny_student)
    positions, species = random_molecule(5, len(tiny_student.elements), rng)
    src, dst = torch.tensor([0, 1]), torch.tensor([1, 0])
    vectors = positions[dst] - positions[src]
    args = (module.weights, module.layers, 5.0, 1e-8)
    with pytest.raises(RuntimeError, match="differ in dtype"):
        torch.ops.mlffd.painn_forces(species, src, dst, vectors.float(), *args)
    with pytest.raises(RuntimeError, match="species index -1 out of range"):
        torch.ops.mlffd.painn_all_pairs_forces(torch.tensor([0, -1, 0, 0, 0]), positions, None, *args)
    with pytest.raises(RuntimeError, match="out of range"):
        torch.ops.mlffd.painn_forces(species, src, torch.tensor([1, 7]), vectors, *args)
