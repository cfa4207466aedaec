"""Energies and forces of a student from the fused C++ kernel (CPU).

:class:`FusedStudentForces` gives the per-atom energies and the forces of a
:class:`~mlff_distiller.models.student.Student`, as autograd on it would, but hands the whole
network, forward and reverse, to one call of the C++ kernel (:mod:`mlff_distiller.models.kernel`).
On a molecule of a few dozen atoms that replaces several hundred small tensor operations and
their autograd graph, whose dispatch and allocation cost more than their arithmetic, by plain
loops. A system in vacuum or fully periodic goes to ``torch.ops.mlffd.painn_all_pairs_forces``,
which also finds the pairs (a cell list for large systems); a partly periodic one keeps the
student's TorchScript neighbour search and its edges go to ``torch.ops.mlffd.painn_forces``. Off
the CPU (GPUs) the module differentiates the student with autograd.

On the CPU the kernel splits its work over :attr:`FusedStudentForces.threads` threads: a count
given at construction or later with :meth:`~FusedStudentForces.set_threads` (also on a scripted
module, as OpenMM's ``TorchForce`` holds it), or 0, torch's intra-op thread count at each call
(``torch.set_num_threads``, ``OMP_NUM_THREADS``). Results of different counts differ by the
order of a few sums only (see :mod:`mlff_distiller.models.kernel`).

Constructing the module loads the kernel (:func:`~mlff_distiller.models.kernel.load_kernel`,
building it on first use), as scripting it requires; a TorchScript file containing it needs the
kernel loaded before it is loaded.
"""

import torch
from torch import Tensor, nn

from .kernel import load_kernel, resolve_threads
from .kernel.weights import kernel_weights
from .student import Student


class FusedStudentForces(nn.Module):
    """Per-atom energies (eV) and forces (eV/Å) of a student from the fused CPU kernel.

    Parameters
    ----------
    student : Student
        The force field, in the dtype it should compute in. Its weights are copied in the
        kernel's layout at construction: later changes to the student are not seen.
    threads : int
        Threads the kernel splits its work over, from 1 to
        :data:`~mlff_distiller.models.kernel.MAX_THREADS`; 0 (the default) for torch's intra-op
        thread count at each call.

    Attributes
    ----------
    threads : int
        As given, or as last set by :meth:`set_threads`.

    Raises
    ------
    KernelBuildError
        When the kernel cannot be compiled.
    InvalidValueError
        For a thread count that is not 0 or from 1 to ``MAX_THREADS``.
    """

    def __init__(self, student: Student, threads: int = 0):
        super().__init__()
        load_kernel()
        self.threads = resolve_threads(threads) if threads != 0 else 0
        self.student = student  # neighbour search (partly periodic), and autograd off the CPU
        self.weights = kernel_weights(student)
        self.layers = len(student.network.interactions)
        self.cutoff = float(student.network.cutoff)
        self.norm_epsilon = float(student.network.interactions[0].norm_epsilon)

    @torch.jit.export
    def set_threads(self, threads: int) -> None:
        """Split the kernel's work over ``threads`` threads from the next call on (0: torch's
        intra-op thread count at each call; the kernel refuses counts above ``MAX_THREADS``); works
        on the scripted module too, not on a frozen one."""
        self.threads = threads

    def forward(self, positions: Tensor, species: Tensor, cell: Tensor, pbc: Tensor) -> tuple[Tensor, Tensor]:
        """Energy of each atom (N,) in eV and force on each atom (N, 3) in eV/Å, without a graph.

        Parameters
        ----------
        positions : Tensor, shape (N, 3)
            Positions in Å, in the student's dtype (not differentiated: detached).
        species : Tensor, shape (N,), int64
            Species indices (see :meth:`Student.species <mlff_distiller.models.student.Student.species>`).
        cell : Tensor, shape (3, 3)
            Lattice vectors as rows in Å.
        pbc : Tensor, shape (3,), bool
            Periodicity per lattice direction.
        """
        positions = positions.detach()
        if not positions.is_cpu:
            leaf = positions.requires_grad_(True)
            energies = self.student.atomic_energies(leaf, species, cell, pbc)
            gradient = torch.autograd.grad([energies.sum()], [leaf])[0]
            assert gradient is not None  # positions always reach the energy
            return energies.detach(), -gradient
        periodic = bool(pbc.any())
        if not periodic or bool(pbc.all()):  # pairs found in the kernel
            return torch.ops.mlffd.painn_all_pairs_forces(
                species,
                positions,
                cell if periodic else None,
                self.weights,
                self.layers,
                self.cutoff,
                self.norm_epsilon,
                self.threads,
            )
        src, dst, images = self.student.edges(positions, cell, pbc)  # partly periodic
        vectors = positions.index_select(0, dst) - positions.index_select(0, src) + images @ cell
        return torch.ops.mlffd.painn_forces(
            species, src, dst, vectors, self.weights, self.layers, self.cutoff, self.norm_epsilon, self.threads
        )
