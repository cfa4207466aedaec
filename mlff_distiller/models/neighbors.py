"""Neighbour search that TorchScript can carry inside an exported model.

Two strategies return the same edge list:

* :func:`all_pairs` compares every atom with every atom in every periodic image
  that can lie within the cutoff. Cost grows as N**2, but it handles boxes of
  any shape and size, including boxes smaller than twice the cutoff.
* :func:`cell_list` bins atoms into cells at least one cutoff wide and compares
  each atom only with the 27 surrounding cells, so cost grows linearly with N.
  It needs at least three cells along each periodic direction and falls back
  to :func:`all_pairs` otherwise.

Every function returns ``(src, dst, images)``: the edge ``src -> dst`` has the
vector ``positions[dst] - positions[src] + images @ cell`` (Å), where
``images`` holds integer lattice translations stored as floats. Positions that
drifted outside the box are handled: they are wrapped internally and the wrap
is folded into ``images``. The search works on detached tensors; callers
build differentiable edge vectors from the returned indices.
"""

from typing import Tuple

import torch
from torch import Tensor

def plane_spacings(cell: Tensor) -> Tensor:
    """Distances (Å) between opposite faces of the cell spanned by the rows of ``cell``."""
    a, b, c = cell[0], cell[1], cell[2]
    volume = torch.abs(torch.dot(a, torch.cross(b, c, dim=0)))
    areas = torch.stack(
        [
            torch.linalg.norm(torch.cross(b, c, dim=0)),
            torch.linalg.norm(torch.cross(c, a, dim=0)),
            torch.linalg.norm(torch.cross(a, b, dim=0)),
        ]
    )
    return volume / areas


def _wrap(positions: Tensor, cell: Tensor, pbc: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Wrap positions into the cell along periodic directions.

    Returns the fractional coordinates in [0, 1) (periodic directions), the
    integer number of cells each atom was moved by, and the wrapped positions.
    """
    frac = positions @ torch.linalg.inv(cell)
    offset = torch.floor(frac) * pbc.to(frac.dtype)
    frac = frac - offset
    wrapped = positions - offset @ cell
    return frac, offset, wrapped


def _is_periodic(pbc: Tensor) -> bool:
    return bool(torch.any(pbc))


def all_pairs(positions: Tensor, cell: Tensor, pbc: Tensor, cutoff: float) -> Tuple[Tensor, Tensor, Tensor]:
    """All pairs closer than ``cutoff`` (Å), over every needed periodic image.

    Parameters
    ----------
    positions : Tensor, shape (N, 3)
        Cartesian positions in Å.
    cell : Tensor, shape (3, 3)
        Lattice vectors as rows, Å. Ignored along non-periodic directions.
    pbc : Tensor, shape (3,), bool
        Periodicity per lattice direction.
    cutoff : float
        Interaction range in Å.

    Returns
    -------
    src, dst : Tensor, shape (E,), int64
    images : Tensor, shape (E, 3), same dtype as positions
    """
    pos = positions.detach()
    cell = cell.detach()
    n_atoms = pos.shape[0]
    dtype = pos.dtype
    device = pos.device
    if not _is_periodic(pbc):  # one image: a plain distance matrix
        diff = pos[None, :, :] - pos[:, None, :]
        close = (diff * diff).sum(-1) < cutoff * cutoff
        close.fill_diagonal_(False)
        found = torch.nonzero(close)
        return found[:, 0], found[:, 1], torch.zeros((found.shape[0], 3), dtype=dtype, device=device)
    _, offset, pos = _wrap(pos, cell, pbc)
    counts = torch.ceil(cutoff / plane_spacings(cell)).to(torch.long) * pbc.to(torch.long)
    ranges = [torch.arange(-int(counts[k]), int(counts[k]) + 1, device=device) for k in range(3)]
    shifts = torch.cartesian_prod(ranges[0], ranges[1], ranges[2]).to(dtype)
    shift_vectors = shifts @ cell
    diff = pos[None, :, None, :] - pos[:, None, None, :] + shift_vectors[None, None, :, :]
    close = (diff * diff).sum(-1) < cutoff * cutoff
    is_self = torch.eye(n_atoms, dtype=torch.bool, device=device)[:, :, None] & (shifts.abs().sum(-1) == 0)[None, None, :]
    found = torch.nonzero(close & ~is_self)
    src, dst, image = found[:, 0], found[:, 1], found[:, 2]
    images = shifts[image] - offset[dst] + offset[src]
    return src, dst, images


def _bins(frac: Tensor, n_bins: Tensor) -> Tensor:
    bins = torch.floor(frac * n_bins.to(frac.dtype)).to(torch.long)
    return torch.minimum(torch.clamp(bins, min=0), n_bins - 1)


def cell_list(positions: Tensor, cell: Tensor, pbc: Tensor, cutoff: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Pairs closer than ``cutoff`` (Å) found with a linear-cost cell list.

    Works for fully periodic boxes of any shape with at least three cells of
    width ``cutoff`` along each lattice direction, and for non-periodic systems
    (bins span the bounding box). Other cases fall back to :func:`all_pairs`.
    Arguments and return values are those of :func:`all_pairs`.
    """
    periodic = _is_periodic(pbc)
    if periodic and not bool(torch.all(pbc)):
        return all_pairs(positions, cell, pbc, cutoff)
    pos = positions.detach()
    cell = cell.detach()
    n_atoms = pos.shape[0]
    device = pos.device
    dtype = pos.dtype
    if periodic:
        n_bins = torch.floor(plane_spacings(cell) / cutoff).to(torch.long)
        if bool(torch.any(n_bins < 3)):
            return all_pairs(positions, cell, pbc, cutoff)
        frac, offset, pos = _wrap(pos, cell, pbc)
    else:
        lower = pos.min(0).values
        extent = pos.max(0).values - lower
        n_bins = torch.clamp(torch.floor(extent / cutoff).to(torch.long), min=1)
        frac = (pos - lower) / torch.clamp(extent, min=1e-12)
        offset = torch.zeros_like(pos)
    bins = _bins(frac, n_bins)
    strides = torch.stack([n_bins[1] * n_bins[2], n_bins[2], torch.ones_like(n_bins[2])])
    bin_id = (bins * strides).sum(-1)
    n_total = int(n_bins.prod())
    occupancy = torch.bincount(bin_id, minlength=n_total)
    max_per_bin = int(occupancy.max())
    order = torch.argsort(bin_id)
    first = torch.cumsum(occupancy, 0) - occupancy
    sorted_bins = bin_id[order]
    rank = torch.arange(n_atoms, device=device) - first[sorted_bins]
    table = torch.full((n_total, max_per_bin), -1, dtype=torch.long, device=device)
    table[sorted_bins, rank] = order

    steps = torch.arange(-1, 2, device=device)
    stencil = torch.cartesian_prod(steps, steps, steps)
    neighbour_bins = bins[:, None, :] + stencil[None, :, :]
    wraps = torch.div(neighbour_bins, n_bins, rounding_mode="floor")
    inside = torch.ones(neighbour_bins.shape[:2], dtype=torch.bool, device=device)
    if not periodic:
        inside = (wraps == 0).all(-1)
    neighbour_bins = neighbour_bins - wraps * n_bins
    neighbour_id = (neighbour_bins * strides).sum(-1)
    candidates = table[neighbour_id]
    valid = (candidates >= 0) & inside[:, :, None]
    src_all = torch.arange(n_atoms, device=device)[:, None, None].expand_as(candidates)
    shift = wraps.to(dtype)[:, :, None, :].expand(n_atoms, 27, max_per_bin, 3)

    src = src_all[valid]
    dst = candidates[valid]
    shift = shift[valid]
    vectors = pos[dst] - pos[src] + (shift @ cell if periodic else shift)
    keep = ((vectors * vectors).sum(-1) < cutoff * cutoff) & ~((src == dst) & (shift.abs().sum(-1) == 0))
    src, dst, shift = src[keep], dst[keep], shift[keep]
    images = shift - offset[dst] + offset[src]
    return src, dst, images


def neighbor_list(
    positions: Tensor,
    cell: Tensor,
    pbc: Tensor,
    cutoff: float,
    strategy: str = "auto",
    cell_list_min_atoms: int = 200,
) -> Tuple[Tensor, Tensor, Tensor]:
    """Edges closer than ``cutoff`` (Å) with the chosen strategy.

    ``strategy`` is ``"all_pairs"``, ``"cell_list"`` or ``"auto"`` (a cell list
    from ``cell_list_min_atoms`` atoms on). See :func:`all_pairs` for the
    arguments and return values.
    """
    if strategy == "all_pairs" or (strategy == "auto" and positions.shape[0] < cell_list_min_atoms):
        return all_pairs(positions, cell, pbc, cutoff)
    return cell_list(positions, cell, pbc, cutoff)
