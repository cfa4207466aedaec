"""Neighbour search that TorchScript can carry inside an exported model.

Two strategies return the same set of edges (in different orders):

* :func:`all_pairs` compares every atom with every atom in every periodic image
  that can lie within the cutoff. Cost grows as N**2, but it handles boxes of
  any shape and size, including boxes smaller than twice the cutoff.
* :func:`cell_list` sorts atoms into bins at least half a cutoff wide and
  compares each pair of atoms in nearby bins once, so cost grows linearly with
  N. It needs periodic boxes at least 2.5 cutoffs across (five bins) along
  every direction, or no periodicity at all, and falls back to
  :func:`all_pairs` otherwise.

Every function returns ``(src, dst, images)``: the edge ``src -> dst`` has the
vector ``positions[dst] - positions[src] + images @ cell`` (Å), where
``images`` holds integer lattice translations stored as floats. Positions that
drifted outside the box are handled: they are wrapped internally and the wrap
is folded into ``images``. The search works on detached tensors; callers
build differentiable edge vectors from the returned indices.
"""

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


def _wrap(positions: Tensor, cell: Tensor, pbc: Tensor) -> tuple[Tensor, Tensor, Tensor]:
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


def all_pairs(positions: Tensor, cell: Tensor, pbc: Tensor, cutoff: float) -> tuple[Tensor, Tensor, Tensor]:
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
    is_self = (
        torch.eye(n_atoms, dtype=torch.bool, device=device)[:, :, None] & (shifts.abs().sum(-1) == 0)[None, None, :]
    )
    found = torch.nonzero(close & ~is_self)
    src, dst, image = found[:, 0], found[:, 1], found[:, 2]
    images = shifts[image] - offset[dst] + offset[src]
    return src, dst, images


def _bins(frac: Tensor, n_bins: Tensor) -> Tensor:
    bins = torch.floor(frac * n_bins.to(frac.dtype)).to(torch.long)
    return torch.minimum(torch.clamp(bins, min=0), n_bins - 1)


def cell_list(
    positions: Tensor, cell: Tensor, pbc: Tensor, cutoff: float, bins_per_cutoff: int = 2
) -> tuple[Tensor, Tensor, Tensor]:
    """Pairs closer than ``cutoff`` (Å) found with a linear-cost cell list.

    Atoms are binned into a grid of bins at least ``cutoff / bins_per_cutoff`` wide and sorted by
    bin, so that the atoms of a bin, and of a run of consecutive bins along the third lattice
    direction, are a contiguous range of the sorted atoms. Each atom is compared only with the atoms
    of the bins up to ``bins_per_cutoff`` away that come after its own bin in lexicographic order, and
    with the atoms after it in its own bin: every pair of atoms is checked once, and the reverse of
    each edge found is the other half of the edge list. In a uniform liquid with the default two bins
    per cutoff that is about 2.2-2.5 candidate pairs per edge (bins are not padded), and the
    intermediate tensors hold a few numbers per candidate pair.

    Works for fully periodic boxes of any shape with at least ``2 bins_per_cutoff + 1`` bins along
    each lattice direction (plane spacings of at least 2.5 cutoffs with the default), and for
    non-periodic systems (bins span the bounding box; at most 64 bins per atom, wider where atoms are
    sparse). Other cases fall back to :func:`all_pairs`.

    Parameters
    ----------
    positions : Tensor, shape (N, 3)
        Cartesian positions in Å; atoms may lie outside the box.
    cell : Tensor, shape (3, 3)
        Lattice vectors as rows, Å. Ignored without periodicity.
    pbc : Tensor, shape (3,), bool
        Periodicity per lattice direction.
    cutoff : float
        Interaction range in Å.
    bins_per_cutoff : int
        Bins per cutoff length: finer bins check fewer candidates but handle more bins per atom.

    Returns
    -------
    src, dst : Tensor, shape (E,), int64
    images : Tensor, shape (E, 3), same dtype as positions
        The edge set of :func:`all_pairs` (see the module docstring), in another order.
    """
    periodic = _is_periodic(pbc)
    if periodic and not bool(torch.all(pbc)):
        return all_pairs(positions, cell, pbc, cutoff)
    pos = positions.detach()
    cell = cell.detach()
    n_atoms = pos.shape[0]
    device = pos.device
    dtype = pos.dtype
    reach = bins_per_cutoff
    if periodic:
        n_bins = torch.floor(plane_spacings(cell) * (reach / cutoff)).to(torch.long)
        if bool(torch.any(n_bins < 2 * reach + 1)):
            return all_pairs(positions, cell, pbc, cutoff)
        frac, offset, pos = _wrap(pos, cell, pbc)
    else:
        lower = pos.min(0).values
        extent = pos.max(0).values - lower
        widths = torch.clamp(torch.floor(extent * (reach / cutoff)), min=1.0)
        excess = float(widths.prod()) / (64 * n_atoms)  # at most 64 bins per atom, however far apart
        if excess > 1.0:
            widths = torch.clamp(torch.floor(widths / excess ** (1.0 / 3.0)), min=1.0)
        n_bins = widths.to(torch.long)
        frac = (pos - lower) / torch.clamp(extent, min=1e-12)
        offset = torch.zeros_like(pos)

    # Sort atoms by bin: the atoms of bins b .. c - 1 are sorted atoms bounds[b] .. bounds[c] - 1.
    bins = _bins(frac, n_bins)
    bin_id = (bins[:, 0] * n_bins[1] + bins[:, 1]) * n_bins[2] + bins[:, 2]
    bin_id, order = torch.sort(bin_id, stable=True)
    occupancy = torch.bincount(bin_id, minlength=int(n_bins.prod()))
    bounds = torch.cat([torch.zeros(1, dtype=torch.long, device=device), torch.cumsum(occupancy, 0)])
    bins, pos, offset = bins[order], pos[order], offset[order]

    # Rows of bins along the third direction, by their offset along the first two: (0, 0) first, then
    # the lexicographically positive half. Row r of sorted atom a spans bins z_start .. z_stop - 1.
    steps = torch.arange(-reach, reach + 1, device=device)
    rows = torch.cartesian_prod(steps, steps)[reach * (2 * reach + 1) + reach :]
    n_rows = rows.shape[0]
    row_xy = bins[:, None, :2] + rows[None, :, :]
    images_xy = torch.div(row_xy, n_bins[:2], rounding_mode="floor")
    row_xy = row_xy - images_xy * n_bins[:2]
    row_first_bin = (row_xy[:, :, 0] * n_bins[1] + row_xy[:, :, 1]) * n_bins[2]
    z_start = (bins[:, 2:3] - reach).repeat(1, n_rows)
    z_start[:, 0] = bins[:, 2]  # the own row only looks ahead
    z_stop = (bins[:, 2:3] + reach + 1).expand(n_atoms, n_rows)
    n_z = n_bins[2]
    # Each row in three pieces (some empty), with images -1, 0 and +1 along the third direction:
    # bins wrapped from below, bins inside the grid, bins wrapped from above.
    piece_start = torch.stack(
        [torch.clamp(z_start + n_z, min=0, max=n_z), torch.clamp(z_start, min=0), torch.zeros_like(z_start)], 2
    )
    piece_stop = torch.stack(
        [n_z.expand(n_atoms, n_rows), torch.clamp(z_stop, max=n_z), torch.clamp(z_stop - n_z, min=0, max=n_z)], 2
    )
    begin = bounds[row_first_bin[:, :, None] + piece_start]
    begin[:, 0, 1] = torch.arange(1, n_atoms + 1, device=device)  # after the atom itself in its own bin
    lengths = bounds[row_first_bin[:, :, None] + piece_stop] - begin
    if not periodic:  # no images: only the inside pieces of rows within the grid
        inside = (images_xy == 0).all(-1)[:, :, None] & (torch.arange(3, device=device) == 1)[None, None, :]
        lengths = lengths * inside.to(torch.long)
    images_z = torch.arange(-1, 2, device=device)[None, None, :, None].expand(n_atoms, n_rows, 3, 1)
    piece_images = torch.cat([images_xy[:, :, None, :].expand(n_atoms, n_rows, 3, 2), images_z], 3)
    piece_images = piece_images.reshape(-1, 3).to(dtype)

    # One candidate pair per atom of every piece: the piece it comes from, then its two atoms.
    lengths = lengths.reshape(-1)
    n_candidates = int(lengths.sum())
    piece = torch.repeat_interleave(lengths, output_size=n_candidates)
    dst = torch.arange(n_candidates, device=device) + (begin.reshape(-1) - (torch.cumsum(lengths, 0) - lengths))[piece]
    src = torch.div(piece, 3 * n_rows, rounding_mode="floor")
    vectors = pos[dst] - pos[src]
    if periodic:
        vectors = vectors + (piece_images @ cell)[piece]
    keep = (vectors * vectors).sum(-1) < cutoff * cutoff
    piece, src, dst = piece[keep], src[keep], dst[keep]
    images = piece_images[piece] - offset[dst] + offset[src]
    src, dst = order[src], order[dst]
    return torch.cat([src, dst]), torch.cat([dst, src]), torch.cat([images, -images])


def neighbor_list(
    positions: Tensor,
    cell: Tensor,
    pbc: Tensor,
    cutoff: float,
    strategy: str = "auto",
    cell_list_min_atoms: int = 200,
) -> tuple[Tensor, Tensor, Tensor]:
    """Edges closer than ``cutoff`` (Å) with the chosen strategy.

    ``strategy`` is ``"all_pairs"``, ``"cell_list"`` or ``"auto"`` (a cell list
    from ``cell_list_min_atoms`` atoms on). See :func:`all_pairs` for the
    arguments and return values.
    """
    if strategy == "all_pairs" or (strategy == "auto" and positions.shape[0] < cell_list_min_atoms):
        return all_pairs(positions, cell, pbc, cutoff)
    return cell_list(positions, cell, pbc, cutoff)
