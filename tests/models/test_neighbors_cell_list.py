"""The sort-based cell list: the same edges as all pairs on every path (bin sizes, shapes, images, dtypes)."""

import torch

import numpy as np
import pytest

from mlff_distiller.models import all_pairs, cell_list
from mlff_distiller.models.neighbors import plane_spacings

PBC = torch.ones(3, dtype=torch.bool)
NO_PBC = torch.zeros(3, dtype=torch.bool)
NO_CELL = torch.zeros((3, 3), dtype=torch.float64)
CUTOFF = 5.0
TRICLINIC = np.array([[7.0, 0.0, 0.0], [1.8, 6.5, 0.0], [-1.2, 1.5, 7.5]])


def edge_set(src, dst, images):
    return sorted(
        zip(src.tolist(), dst.tolist(), [tuple(int(round(x)) for x in row) for row in images.tolist()], strict=False)
    )


def uniform_box(n_atoms: int, cell: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Positions (Å, float64) uniformly distributed in the cell (atoms may overlap: only distances matter)."""
    return torch.tensor(rng.uniform(0.0, 1.0, size=(n_atoms, 3)) @ cell)


def assert_same_edges(positions, cell, pbc, cutoff=CUTOFF, **options):
    reference = edge_set(*all_pairs(positions, cell, pbc, cutoff))
    found = cell_list(positions, cell, pbc, cutoff, **options)
    assert len(found[0]) == len(reference), "an edge is missing or found twice"
    assert edge_set(*found) == reference
    return reference


def spacings_in_cutoffs(cell: torch.Tensor) -> torch.Tensor:
    return plane_spacings(cell) / CUTOFF


@pytest.mark.parametrize("scale", [13.0, 14.9], ids=["2.6-cutoffs", "2.98-cutoffs"])
def test_box_just_big_enough_for_half_cutoff_bins(rng, scale):
    """Five bins of half a cutoff per side: the smallest box the default search takes (27 wider cells need 3 cutoffs)."""
    cell = torch.tensor(np.eye(3) * scale)
    assert bool(((spacings_in_cutoffs(cell) >= 2.5) & (spacings_in_cutoffs(cell) < 3.0)).all())
    assert len(assert_same_edges(uniform_box(400, cell.numpy(), rng), cell, PBC)) > 1000


def test_triclinic_box_just_big_enough_for_half_cutoff_bins(rng):
    cell = torch.tensor(TRICLINIC * 2.0)
    spacings = spacings_in_cutoffs(cell)
    assert bool((spacings >= 2.5).all()) and float(spacings.min()) < 3.0
    assert len(assert_same_edges(uniform_box(500, cell.numpy(), rng), cell, PBC)) > 1000


@pytest.mark.parametrize("bins_per_cutoff", [1, 2, 3])
@pytest.mark.parametrize("shape", ["cubic", "triclinic"])
def test_every_bin_size_finds_all_pairs(rng, bins_per_cutoff, shape):
    cell_np = np.eye(3) * 16.0 if shape == "cubic" else TRICLINIC * 2.4
    cell = torch.tensor(cell_np)
    assert bool((spacings_in_cutoffs(cell) * bins_per_cutoff >= 2 * bins_per_cutoff + 1).all()), "would fall back"
    assert_same_edges(uniform_box(350, cell_np, rng), cell, PBC, bins_per_cutoff=bins_per_cutoff)


def test_atoms_far_outside_the_box(rng):
    """Atoms several lattice vectors away (and some on the faces): the wrap is folded into the images."""
    cell_np = TRICLINIC * 2.4
    cell = torch.tensor(cell_np)
    positions = uniform_box(300, cell_np, rng)
    positions = positions + torch.tensor(rng.integers(-4, 5, size=(300, 3)), dtype=torch.float64) @ cell
    positions[:10] = torch.tensor(rng.integers(-2, 3, size=(10, 3)), dtype=torch.float64) @ cell  # lattice points
    assert_same_edges(positions, cell, PBC)


def test_boxes_too_small_or_partly_periodic_fall_back_to_all_pairs(rng):
    small = torch.tensor(np.eye(3) * 12.0)  # 2.4 cutoffs: fewer than five half-cutoff bins
    assert_same_edges(uniform_box(60, small.numpy(), rng), small, PBC)
    slab = torch.tensor(np.eye(3) * 20.0)
    assert_same_edges(uniform_box(200, slab.numpy(), rng), slab, torch.tensor([True, True, False]))


@pytest.mark.parametrize("bins_per_cutoff", [1, 2])
def test_without_periodicity(rng, bins_per_cutoff):
    cloud = torch.tensor(rng.uniform(-9.0, 9.0, size=(300, 3)))
    assert_same_edges(cloud, NO_CELL, NO_PBC, bins_per_cutoff=bins_per_cutoff)
    flat = cloud.clone()
    flat[:, 2] = 0.0  # no extent along z: a single bin there
    assert_same_edges(flat, NO_CELL, NO_PBC, bins_per_cutoff=bins_per_cutoff)
    assert_same_edges(cloud[:1], NO_CELL, NO_PBC, bins_per_cutoff=bins_per_cutoff)


def test_far_apart_clusters_without_periodicity(rng):
    """Two clusters 2 km apart: the bin grid is capped (bins widened) instead of spanning the gap."""
    near = rng.uniform(0.0, 8.0, size=(80, 3))
    positions = torch.tensor(np.concatenate([near, near[:40] + 2.0e4]))
    assert len(assert_same_edges(positions, NO_CELL, NO_PBC)) > 200


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes_and_torchscript(rng, dtype):
    cell = torch.tensor(np.eye(3) * 16.0, dtype=dtype)
    positions = uniform_box(400, cell.double().numpy(), rng).to(dtype) + 30.0
    scripted = torch.jit.script(cell_list)
    src, dst, images = scripted(positions, cell, PBC, CUTOFF)
    assert images.dtype == dtype
    eager = cell_list(positions, cell, PBC, CUTOFF)
    assert torch.equal(src, eager[0]) and torch.equal(dst, eager[1]) and torch.equal(images, eager[2])
    assert edge_set(src, dst, images) == edge_set(*all_pairs(positions, cell, PBC, CUTOFF))
    vectors = positions[dst] - positions[src] + images @ cell
    assert float(vectors.norm(dim=1).max()) < CUTOFF


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_equals_cpu(rng):
    cell = torch.tensor(TRICLINIC * 2.4)
    positions = uniform_box(500, cell.numpy(), rng)
    on_cpu = edge_set(*cell_list(positions, cell, PBC, CUTOFF))
    on_gpu = cell_list(positions.cuda(), cell.cuda(), PBC.cuda(), CUTOFF)
    assert edge_set(*(t.cpu() for t in on_gpu)) == on_cpu
