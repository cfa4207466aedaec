"""Frames as one concatenated graph per batch: fixed neighbour edges, offset indices, per-frame sums."""

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
