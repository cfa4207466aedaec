"""The training path of PaiNN (a batch of frames in one graph, edges in chunks or whole, forces kept
differentiable) against the C++ kernel, an independent implementation, and its loss gradient against
finite differences of the loss (the double backward)."""

import torch

import numpy as np
import pytest
from kit import FINITE_DIFFERENCE, TIGHT, assert_close, random_box, random_molecule

from mlff_distiller.distillation.dataset import Frame
from mlff_distiller.distillation.graphs import GraphPool, frame_graph, predict
from mlff_distiller.models.kernel import load_kernel
from mlff_distiller.models.kernel.weights import kernel_weights

TRICLINIC = np.array([[8.0, 0.0, 0.0], [2.0, 7.5, 0.0], [1.0, 1.5, 7.0]])


def frame(student, positions, species, cell=None) -> Frame:
    """An unlabelled frame (zero energy and forces) of ``species`` indices, periodic when ``cell`` is given."""
    n_atoms = len(species)
    return Frame(
        numbers=np.array(student.elements)[species.numpy()],
        positions=positions.numpy(),
        energy=0.0,
        forces=np.zeros((n_atoms, 3)),
        cell=np.zeros((3, 3)) if cell is None else cell,
        pbc=np.full(3, cell is not None),
    )


def mixed_pool(student, rng) -> GraphPool:
    """Two molecules, a small orthorhombic and a small triclinic box (several images of one neighbour):
    about 2,000 edges, more than one chunk of 1,024."""
    n_species = len(student.elements)
    frames = [frame(student, *random_molecule(14, n_species, rng)) for _ in range(2)]
    for cell in (np.diag([7.0, 7.5, 8.0]), TRICLINIC):
        frames.append(frame(student, *random_box(24, cell, n_species, rng), cell=cell))
    return GraphPool([frame_graph(student, f) for f in frames], torch.float64)


def chunked(student, chunks: bool):
    """``student`` with its edges processed in chunks of 1,024 (``chunks``) or all at once."""
    for block in student.network.interactions:
        block.edge_chunk_bytes = 0 if chunks else 2**40
    return student


@pytest.mark.parametrize("chunks", [False, True])
def test_batched_energies_and_forces_equal_the_kernel(any_student, rng, chunks):
    """``predict`` on one graph of vacuum and periodic frames, with the graph kept for a force loss,
    against ``painn_forces`` of the C++ kernel on the same edges."""
    load_kernel()
    pool = mixed_pool(any_student, rng)
    batch = pool.batch([3, 0, 2, 1])
    energies, forces = predict(chunked(any_student, chunks), batch, training=True)

    network = any_student.network
    vectors = batch.positions[batch.dst] - batch.positions[batch.src] + batch.shifts
    atomic, expected_forces = torch.ops.mlffd.painn_forces(
        batch.species,
        batch.src,
        batch.dst,
        vectors,
        kernel_weights(any_student),
        len(network.interactions),
        float(network.cutoff),
        network.interactions[0].norm_epsilon,
    )
    expected_energies = torch.zeros(len(batch.n_atoms), dtype=torch.float64).index_add(0, batch.frame_of_atom, atomic)
    assert len(batch.src) > 1024
    assert_close(energies.detach(), expected_energies, TIGHT, "energies per frame")
    assert_close(forces.detach(), expected_forces, TIGHT, "forces")


def test_loss_gradient_equals_finite_differences(any_student, rng):
    """The gradient of an energy + force loss with respect to weights of every block (the double
    backward through the chunked edges) against central differences of the loss; the first block's
    vector-vector filter, which meets only the zero incoming vectors, has none."""
    student = chunked(any_student, True)
    pool = mixed_pool(student, rng)
    batch = pool.batch([0, 2, 3])
    target_energies = torch.tensor(rng.normal(size=3))
    target_forces = torch.tensor(rng.normal(size=(len(batch.species), 3)))

    def loss(training: bool) -> torch.Tensor:
        energies, forces = predict(student, batch, training)
        return ((energies - target_energies) ** 2).sum() + ((forces - target_forces) ** 2).sum()

    f = student.network.features
    blocks = student.network.interactions
    entries = [
        (student.network.embedding.weight, (1, 3)),
        (blocks[0].filter.weight, (2, 4)),  # scalar third
        (blocks[0].filter.weight, (f + 2, 4)),  # vector-vector third: no gradient
        (blocks[0].filter.bias, (2 * f + 5,)),  # vector-scalar third
        (blocks[1].filter.weight, (f + 7, 11)),
        (blocks[1].context[2].weight, (f + 3, 1)),
        (blocks[2].mix_v.weight, (4, 2)),
        (blocks[2].gate[0].weight, (5, f + 6)),
    ]
    gradient = torch.autograd.grad(loss(True), [p for p, _ in entries], allow_unused=True)
    analytic = torch.stack([g[index] for g, (_, index) in zip(gradient, entries, strict=True)])

    step = 1e-5
    numeric = []
    for parameter, index in entries:
        values = []
        for shift in (step, -2 * step, step):
            with torch.no_grad():
                parameter[index] += shift
            values.append(loss(False).detach())
        numeric.append((values[0] - values[1]) / (2 * step))
    assert analytic[2] == 0
    assert_close(analytic, torch.stack(numeric), FINITE_DIFFERENCE, "loss gradient")
