"""Frames as one concatenated graph per batch: fixed neighbour edges, offset indices, per-frame sums.

The neighbour edges of a frame are searched once (:func:`frame_graph`); training puts all of its
frames into one :class:`GraphPool`, from which a batch of any frames is gathered with a few
vectorised index operations (no per-frame Python in a step).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

import numpy as np

from ..models import Student
from .dataset import Frame


@dataclass
class FrameGraph:
    """One frame prepared for a student: species, neighbour edges and their periodic shifts.

    The edges are searched once at the frame's positions; because the positions of a labelled frame
    never move, ``positions[dst] - positions[src] + shifts`` (Å) is the exact edge vector.
    """

    positions: Tensor
    species: Tensor
    src: Tensor
    dst: Tensor
    shifts: Tensor
    energy: float
    forces: Tensor
    numbers: Tensor


@dataclass
class Batch:
    """Several frames concatenated into one graph (atom and edge indices offset per frame)."""

    positions: Tensor
    species: Tensor
    src: Tensor
    dst: Tensor
    shifts: Tensor
    frame_of_atom: Tensor
    n_atoms: Tensor
    energies: Tensor
    forces: Tensor
    numbers: Tensor


def frame_graph(student: Student, frame: Frame) -> FrameGraph:
    """Edges of ``frame`` within the student's cutoff, in float64 (species checked against the student)."""
    positions = torch.as_tensor(frame.positions, dtype=torch.float64)
    cell = torch.as_tensor(frame.cell, dtype=torch.float64)
    pbc = torch.as_tensor(frame.pbc, dtype=torch.bool)
    with torch.no_grad():
        src, dst, images = student.edges(positions, cell, pbc)
    return FrameGraph(
        positions=positions,
        species=student.species(frame.numbers).cpu(),
        src=src,
        dst=dst,
        shifts=images.to(torch.float64) @ cell,
        energy=float(frame.energy),
        forces=torch.as_tensor(frame.forces, dtype=torch.float64),
        numbers=torch.as_tensor(frame.numbers),
    )


def collate(graphs: Sequence[FrameGraph], dtype: torch.dtype) -> Batch:
    """One graph of all ``graphs`` in ``dtype``."""
    counts = torch.tensor([len(g.species) for g in graphs])
    offsets = torch.cumsum(counts, 0) - counts
    return Batch(
        positions=torch.cat([g.positions for g in graphs]).to(dtype),
        species=torch.cat([g.species for g in graphs]),
        src=torch.cat([g.src + o for g, o in zip(graphs, offsets, strict=False)]),
        dst=torch.cat([g.dst + o for g, o in zip(graphs, offsets, strict=False)]),
        shifts=torch.cat([g.shifts for g in graphs]).to(dtype),
        frame_of_atom=torch.repeat_interleave(torch.arange(len(graphs)), counts),
        n_atoms=counts,
        energies=torch.tensor([g.energy for g in graphs], dtype=dtype),
        forces=torch.cat([g.forces for g in graphs]).to(dtype),
        numbers=torch.cat([g.numbers for g in graphs]),
    )


def _segments(starts: Tensor, counts: Tensor) -> Tensor:
    """Concatenated ranges ``starts[i] .. starts[i] + counts[i] - 1`` (int64)."""
    total = int(counts.sum())
    shift = starts - (torch.cumsum(counts, 0) - counts)
    return torch.repeat_interleave(shift, counts, output_size=total) + torch.arange(total)


class GraphPool:
    """Frames' graphs concatenated once, in one dtype, from which batches are gathered.

    Parameters
    ----------
    graphs : sequence of FrameGraph
    dtype : torch.dtype
        Dtype of positions, shifts, energies and forces in the batches.
    """

    def __init__(self, graphs: Sequence[FrameGraph], dtype: torch.dtype):
        self.dtype = dtype
        self.n_atoms = torch.tensor([len(g.species) for g in graphs], dtype=torch.long)
        self.n_edges = torch.tensor([len(g.src) for g in graphs], dtype=torch.long)
        self.atom_start = torch.cumsum(self.n_atoms, 0) - self.n_atoms
        self.edge_start = torch.cumsum(self.n_edges, 0) - self.n_edges
        empty = torch.zeros(0, dtype=torch.long)
        self.positions = torch.cat([g.positions for g in graphs]).to(dtype) if graphs else torch.zeros((0, 3))
        self.species = torch.cat([g.species for g in graphs]) if graphs else empty
        self.numbers = torch.cat([g.numbers for g in graphs]) if graphs else empty
        self.forces = torch.cat([g.forces for g in graphs]).to(dtype) if graphs else torch.zeros((0, 3))
        self.energies = torch.tensor([g.energy for g in graphs], dtype=dtype)
        self.src = torch.cat([g.src for g in graphs]) if graphs else empty  # frame-local atom indices
        self.dst = torch.cat([g.dst for g in graphs]) if graphs else empty
        self.shifts = torch.cat([g.shifts for g in graphs]).to(dtype) if graphs else torch.zeros((0, 3))

    def __len__(self) -> int:
        return len(self.n_atoms)

    def batch(self, frames: Sequence[int] | Tensor) -> Batch:
        """One graph of the pool's ``frames`` (indices into the pool), in their order."""
        frames = torch.as_tensor(frames, dtype=torch.long)
        counts, edge_counts = self.n_atoms[frames], self.n_edges[frames]
        atoms = _segments(self.atom_start[frames], counts)
        edges = _segments(self.edge_start[frames], edge_counts)
        offsets = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, edge_counts, output_size=len(edges))
        return Batch(
            positions=self.positions[atoms],
            species=self.species[atoms],
            src=self.src[edges] + offsets,
            dst=self.dst[edges] + offsets,
            shifts=self.shifts[edges],
            frame_of_atom=torch.repeat_interleave(torch.arange(len(frames)), counts, output_size=len(atoms)),
            n_atoms=counts,
            energies=self.energies[frames],
            forces=self.forces[atoms],
            numbers=self.numbers[atoms],
        )


def predict(student: Student, batch: Batch, training: bool = False) -> list[Tensor]:
    """Energies per frame (eV) and forces (eV/Å) of a batch; ``training`` keeps the graph for a force loss."""
    positions = batch.positions.detach().requires_grad_(True)
    vectors = positions[batch.dst] - positions[batch.src] + batch.shifts
    atomic = student.network(batch.species, batch.src, batch.dst, vectors)
    energies = torch.zeros(len(batch.n_atoms), dtype=atomic.dtype).index_add(0, batch.frame_of_atom, atomic)
    (gradient,) = torch.autograd.grad(energies.sum(), positions, create_graph=training)
    return [energies, -gradient]


def predict_all(
    student: Student, graphs: Sequence[FrameGraph], dtype: torch.dtype, batch_size: int = 64
) -> list[np.ndarray]:
    """Energies (F,) in eV and forces (A, 3) in eV/Å of every graph, as numpy float64."""
    energies, forces = [], []
    for start in range(0, len(graphs), batch_size):
        batch = collate(graphs[start : start + batch_size], dtype)
        e, f = predict(student, batch)
        energies.append(e.detach().double().numpy())
        forces.append(f.detach().double().numpy())
    return [np.concatenate(energies), np.concatenate(forces)]
