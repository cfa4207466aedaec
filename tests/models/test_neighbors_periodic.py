"""Periodic boundary conditions: wrapping, lattice translations, small boxes, cell list vs all pairs."""

import torch

import numpy as np
import pytest
from kit import TIGHT, assert_close, random_box

from mlff_distiller.models import Student, StudentConfig, all_pairs, cell_list
from mlff_distiller.models.neighbors import plane_spacings

PBC = torch.ones(3, dtype=torch.bool)
TRICLINIC = np.array([[7.0, 0.0, 0.0], [1.8, 6.5, 0.0], [-1.2, 1.5, 7.5]])


def periodic_energy(student, positions, species, cell):
    return student(positions, species, torch.as_tensor(cell, dtype=torch.float64), PBC)


def edge_set(src, dst, images):
    return sorted(
        zip(src.tolist(), dst.tolist(), [tuple(int(round(x)) for x in row) for row in images.tolist()], strict=False)
    )


def test_wrapping_and_lattice_translations_change_nothing(tiny_student, rng):
    cell = torch.tensor(TRICLINIC)
    positions, species = random_box(20, TRICLINIC, 4, rng)
    e0 = periodic_energy(tiny_student, positions, species, cell)
    lattice_shift = torch.tensor(rng.integers(-3, 4, size=(20, 3)), dtype=torch.float64) @ cell
    assert_close(
        periodic_energy(tiny_student, positions + lattice_shift, species, cell), e0, TIGHT, "translated images"
    )
    drifted = positions + torch.tensor([30.0, -25.0, 41.0], dtype=torch.float64)
    assert_close(periodic_energy(tiny_student, drifted, species, cell), e0, TIGHT, "rigid shift far outside the box")


def _brute_force_energy(student: Student, positions, species, cell, replicas: int):
    """Sum of the central cell's atomic energies inside an explicit, non-periodic cluster of images."""
    n = positions.shape[0]
    shifts = [
        np.array([i, j, k])
        for i in range(-replicas, replicas + 1)
        for j in range(-replicas, replicas + 1)
        for k in range(-replicas, replicas + 1)
    ]
    shifts.sort(key=lambda s: np.abs(s).sum())  # central image first
    cluster = torch.cat([positions + torch.tensor(s, dtype=torch.float64) @ cell for s in shifts])
    cluster_species = species.repeat(len(shifts))
    no_cell = torch.zeros((3, 3), dtype=torch.float64)
    energies = student.atomic_energies(cluster, cluster_species, no_cell, torch.zeros(3, dtype=torch.bool))
    return energies[:n].sum()


@pytest.mark.parametrize("layers", [1, 2])
def test_box_smaller_than_twice_the_cutoff_equals_explicit_images(rng, layers):
    torch.manual_seed(11)
    student = Student(StudentConfig(features=16, layers=layers, n_rbf=8, cutoff=4.0, elements=[1, 6, 8])).double()
    cell_np = np.array([[3.6, 0.0, 0.0], [0.9, 3.4, 0.0], [0.3, -0.4, 3.8]])
    cell = torch.tensor(cell_np)
    assert float(plane_spacings(cell).min()) < 2 * student.cutoff
    positions, species = random_box(3, cell_np, 3, rng, spacing=1.2)
    receptive_field = layers * student.cutoff
    replicas = int(np.ceil(receptive_field / float(plane_spacings(cell).min()))) + 1
    reference = _brute_force_energy(student, positions, species, cell, replicas)
    assert_close(periodic_energy(student, positions, species, cell), reference, TIGHT, "periodic vs explicit images")


@pytest.mark.parametrize("cell", [np.eye(3) * 16.0, TRICLINIC * 2.4], ids=["cubic", "triclinic"])
def test_cell_list_equals_all_pairs(rng, cell):
    positions, _ = random_box(300, cell, 1, rng, spacing=0.9)
    positions = positions + torch.tensor([0.0, -40.0, 17.0], dtype=torch.float64)  # drifted outside
    cell_t = torch.tensor(cell)
    assert bool((plane_spacings(cell_t) / 5.0 >= 3).all()), "box too small to exercise the cell list"
    reference = edge_set(*all_pairs(positions, cell_t, PBC, 5.0))
    assert edge_set(*cell_list(positions, cell_t, PBC, 5.0)) == reference
    assert len(reference) > 1000


def test_cell_list_equals_all_pairs_without_periodicity(rng):
    positions = torch.tensor(rng.uniform(0, 18, size=(250, 3)))
    no_cell, no_pbc = torch.zeros((3, 3), dtype=torch.float64), torch.zeros(3, dtype=torch.bool)
    assert edge_set(*cell_list(positions, no_cell, no_pbc, 4.0)) == edge_set(
        *all_pairs(positions, no_cell, no_pbc, 4.0)
    )


def test_cell_list_falls_back_for_small_boxes(rng):
    cell = np.eye(3) * 9.0  # fewer than three 5 Å cells per side
    positions, _ = random_box(30, cell, 1, rng)
    cell_t = torch.tensor(cell)
    assert edge_set(*cell_list(positions, cell_t, PBC, 5.0)) == edge_set(*all_pairs(positions, cell_t, PBC, 5.0))


def test_student_energy_independent_of_neighbour_strategy(tiny_student, rng):
    cell = np.eye(3) * 15.5
    positions, species = random_box(220, cell, 4, rng, spacing=1.0)
    cell_t = torch.tensor(cell)
    tiny_student.neighbor_strategy = "all_pairs"
    reference = periodic_energy(tiny_student, positions, species, cell_t)
    tiny_student.neighbor_strategy = "cell_list"
    assert_close(periodic_energy(tiny_student, positions, species, cell_t), reference, TIGHT, "cell list energy")
