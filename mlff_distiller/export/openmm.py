"""The OpenMM target: a TorchScript module for openmm-torch's ``TorchForce`` (nm in, kJ/mol out).

The module takes positions in nm (and, for periodic systems, box vectors in nm as rows)
in whatever dtype the platform passes, computes in the student's dtype, and returns the
energy in kJ/mol in the input dtype: openmm-torch takes the forces by autograd, so a plain
``TorchForce("model.pt")`` with its defaults runs it, on CPU and on GPUs
(:class:`OpenMMStudent`, ``kernel="portable"``). With ``kernel="fused"`` the CPU computation is
one call of the C++ kernel (:class:`FusedOpenMMStudent`, built on
:class:`~mlff_distiller.models.fused.FusedStudentForces`), which returns the energy and the
forces (kJ/mol/nm): several times faster on small molecules, but the file then loads only in a
process that ran ``mlff_distiller.load_kernel()`` and its ``TorchForce`` needs
``setOutputsForces(True)`` (:func:`mlff_distiller.plugin.create_torch_force` sets both from the
metadata). The species of the atoms are a buffer: baked in at export time (``topology``: a
self-contained file) or set later with ``set_species``. The fused kernel's thread count is not
baked in: the file splits its work over torch's intra-op thread count (``torch.set_num_threads``)
unless ``model.forces.set_threads(n)`` is called after loading, as
:func:`~mlff_distiller.plugin.load_force_model` does.
"""

import copy
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from ..models import load_checkpoint
from ..models.fused import FusedStudentForces
from ..models.kernel import KERNELS
from ..models.student import Student
from ..safe_write import check_output, staged_file
from ..units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM
from .metadata import PRECISIONS, build_metadata, save_with_metadata
from .verify import verify_openmm


class OpenMMInputs(nn.Module):
    """What both OpenMM modules share: the atoms they apply to and OpenMM's inputs in the student's units.

    Parameters
    ----------
    student : Student
        The force field (Å, eV), already in the dtype it should compute in; not kept (the
        subclass holds its only reference: freezing mishandles aliases).
    numbers : sequence of int, optional
        Atomic numbers of the atoms it applies to; ``None`` leaves them to :meth:`set_species`.
    periodic : bool
        Whether the model accepts box vectors; a non-periodic model refuses them.
    """

    def __init__(self, student: Student, numbers: Sequence[int] | None = None, periodic: bool = True):
        super().__init__()
        self.periodic = periodic
        self.all_atoms = False  # the ML atoms are the first ones, in order (no gather or scatter)
        dtype = student.network.energy_scale.dtype
        # unit factors as 0-d tensors in the student's dtype: a Python float operand costs a cast per call
        self.register_buffer("angstrom_per_nm", torch.tensor(NM_TO_ANGSTROM, dtype=dtype))
        self.register_buffer("kj_per_mol_per_ev", torch.tensor(EV_TO_KJ_PER_MOL, dtype=dtype))
        self.register_buffer("species_lookup", student.species_lookup.clone())
        self.register_buffer("species", torch.empty(0, dtype=torch.long))
        self.register_buffer("atoms", torch.empty(0, dtype=torch.long))
        self.register_buffer("vacuum_cell", torch.zeros((3, 3), dtype=dtype))
        self.register_buffer("vacuum_pbc", torch.zeros(3, dtype=torch.bool))
        self.register_buffer("periodic_pbc", torch.ones(3, dtype=torch.bool))
        if numbers is not None:
            self.set_species(torch.as_tensor(list(numbers), dtype=torch.long), torch.arange(len(numbers)))

    @torch.jit.export
    def set_species(self, numbers: Tensor, atoms: Tensor) -> None:
        """Set the atoms the model applies to.

        Parameters
        ----------
        numbers : Tensor, shape (M,), int64
            Atomic numbers of the ML atoms.
        atoms : Tensor, shape (M,), int64
            Their indices among the positions OpenMM passes (all atoms of the System).
        """
        if numbers.shape[0] != atoms.shape[0]:
            raise RuntimeError("set_species: numbers and atoms differ in length")
        species = self.species_lookup[numbers]
        if bool(torch.any(species < 0)):
            raise RuntimeError("set_species: an element the model does not support")
        self.species = species
        self.atoms = atoms.to(torch.long)
        self.all_atoms = bool(torch.equal(self.atoms, torch.arange(self.atoms.shape[0])))

    def student_inputs(self, positions: Tensor, box: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """The ML atoms' positions (Å, differentiable), the cell (Å, rows) and its periodicity, in the student's dtype.

        Parameters
        ----------
        positions : Tensor, shape (N, 3)
            Positions of every particle of the System in nm, any float dtype.
        box : Tensor, shape (3, 3), optional
            Periodic box vectors as rows in nm; ``None`` for a system in vacuum.
        """
        if self.species.shape[0] == 0:
            raise RuntimeError("the model's species are not set: export with a topology or call set_species")
        if not (self.all_atoms and positions.shape[0] == self.atoms.shape[0]):
            positions = positions[self.atoms]
        angstrom = self.to_angstrom(positions)
        if box is None:
            return angstrom, self.vacuum_cell, self.vacuum_pbc
        if not self.periodic:
            raise RuntimeError("this model was exported without periodic support but received a box")
        return angstrom, self.to_angstrom(box.detach()), self.periodic_pbc

    def to_angstrom(self, nm: Tensor) -> Tensor:
        """``nm`` (nm) in Å, in the student's dtype (differentiable)."""
        return nm.to(self.vacuum_cell.dtype) * self.angstrom_per_nm


class OpenMMStudent(OpenMMInputs):
    """A student as an OpenMM ``TorchForce`` model: positions (nm) [, box (nm)] -> energy (kJ/mol).

    openmm-torch's defaults apply: it differentiates the energy for the forces. Arguments as in
    :class:`OpenMMInputs`; the student is kept (its weights should not require grad).
    """

    def __init__(self, student: Student, numbers: Sequence[int] | None = None, periodic: bool = True):
        super().__init__(student, numbers, periodic)
        self.student = student

    def forward(self, positions: Tensor, box: Tensor | None = None) -> Tensor:
        """Potential energy in kJ/mol, shape (), in the dtype of ``positions``; arguments as in
        :meth:`~OpenMMInputs.student_inputs`."""
        angstrom, cell, pbc = self.student_inputs(positions, box)
        energy = self.student(angstrom, self.species, cell, pbc)
        return (energy * self.kj_per_mol_per_ev).to(positions.dtype)


class FusedOpenMMStudent(OpenMMInputs):
    """A student as a ``TorchForce`` model that outputs forces: positions (nm) [, box (nm)] ->
    energy (kJ/mol), forces (kJ/mol/nm), from the fused C++ kernel on CPU.

    Its ``TorchForce`` needs ``setOutputsForces(True)``. Arguments as in :class:`OpenMMInputs`.

    Raises
    ------
    KernelBuildError
        When the kernel cannot be compiled.
    """

    def __init__(self, student: Student, numbers: Sequence[int] | None = None, periodic: bool = True):
        super().__init__(student, numbers, periodic)
        self.forces = FusedStudentForces(student)
        dtype = student.network.energy_scale.dtype
        self.register_buffer(
            "kj_per_mol_nm_per_ev_angstrom", torch.tensor(EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM, dtype=dtype)
        )

    def forward(self, positions: Tensor, box: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Potential energy in kJ/mol (shape ()) and the force on every particle in kJ/mol/nm (N, 3),
        zero outside the model's atoms, both in the dtype of ``positions``; arguments as in
        :meth:`~OpenMMInputs.student_inputs`.

        On the CPU the kernel's operator is called here, the cell ``None`` in vacuum: OpenMM's
        systems are fully periodic or not at all, so the periodicity tests of
        :meth:`FusedStudentForces.forward <mlff_distiller.models.fused.FusedStudentForces.forward>`
        are not needed at each step. Nothing is changed in place: with positions that require grad
        (openmm-torch's), TorchScript marks the operator's outputs as requiring grad too and
        refuses in-place changes of them.
        """
        angstrom, cell, pbc = self.student_inputs(positions.detach(), box)
        if angstrom.is_cpu:
            fused = self.forces
            energies, forces = torch.ops.mlffd.painn_all_pairs_forces(
                self.species,
                angstrom,
                None if box is None else cell,
                fused.weights,
                fused.layers,
                fused.cutoff,
                fused.norm_epsilon,
                fused.threads,
            )
        else:
            energies, forces = self.forces(angstrom, self.species, cell, pbc)
        energy = (energies.sum() * self.kj_per_mol_per_ev).to(positions.dtype)
        forces = (forces * self.kj_per_mol_nm_per_ev_angstrom).to(positions.dtype)
        if self.all_atoms and positions.shape[0] == self.atoms.shape[0]:
            return energy, forces
        return energy, torch.zeros_like(positions).index_add(0, self.atoms, forces)


def openmm_module(
    student: Student, numbers: Sequence[int] | None = None, periodic: bool = True, kernel: str = "portable"
) -> torch.jit.ScriptModule:
    """The scripted OpenMM module of a copy of ``student`` (computing in the student's dtype).

    :class:`OpenMMStudent` for ``kernel="portable"``, :class:`FusedOpenMMStudent` for ``"fused"``
    (which loads, and if needed builds, the kernel); see :data:`~mlff_distiller.models.kernel.KERNELS`.
    The copy's parameters do not require grad: the forces are the gradient with respect to the
    positions only, and nothing should record a graph for the weights at every MD step.
    """
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel '{kernel}'; choose one of {', '.join(KERNELS)}")
    inference_copy = copy.deepcopy(student).eval().requires_grad_(False)
    module = FusedOpenMMStudent if kernel == "fused" else OpenMMStudent
    return torch.jit.script(module(inference_copy, numbers, periodic).eval())


def export_openmm(
    checkpoint: str | Path,
    output: str | Path,
    topology: str | Path | None = None,
    precision: str = "float64",
    periodic: bool = True,
    overwrite: bool = False,
    kernel: str = "portable",
) -> Path:
    """Export a student checkpoint as a TorchScript file for OpenMM's ``TorchForce``, verified.

    Parameters
    ----------
    checkpoint : str or Path
        Student checkpoint (``*.ckpt``).
    output : str or Path
        TorchScript file to write (``*.pt``).
    topology : str or Path, optional
        Structure file (PDB, XYZ, SDF, ...) whose atoms are baked in: the file then runs in a
        plain OpenMM script with ``TorchForce("OUT.pt")`` (see :func:`~.metadata.usage_lines`).
        Without it, species are set at run time (``set_species``), which
        :mod:`mlff_distiller.plugin` does for you.
    precision : str
        ``"float32"`` or ``"float64"``: the dtype the model computes in.
    periodic : bool
        Accept periodic boxes (True) or refuse them (False).
    overwrite : bool
        Replace an existing ``output`` (never the checkpoint or topology itself).
    kernel : str
        ``"portable"``: TorchScript operations returning the energy; the file runs in any
        openmm-torch process with ``TorchForce``'s defaults. ``"fused"``: on CPU the student runs
        as one C++ kernel (several times faster on small molecules) returning energy and forces;
        the loading process must first run ``mlff_distiller.load_kernel()`` and the
        ``TorchForce`` needs ``setOutputsForces(True)`` (``mlffd md`` and
        :mod:`mlff_distiller.plugin` do both).

    Returns
    -------
    Path
        The written file, after it was reloaded and checked against the eager student; it is
        written beside ``output`` and renamed into place only then (:mod:`~mlff_distiller.safe_write`):
        a file that fails verification never replaces the previous output.
    """
    from ..structures import read_structure

    output = check_output(output, inputs=[checkpoint, topology], overwrite=overwrite)
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}")
    student = load_checkpoint(checkpoint, dtype=PRECISIONS[precision])
    atoms = read_structure(topology) if topology is not None else None
    numbers = None
    if atoms is not None:
        student.species(atoms.numbers)  # raises UnsupportedElementError naming foreign elements
        numbers = [int(z) for z in atoms.numbers]
    metadata = build_metadata(
        student, "openmm", precision, checkpoint=checkpoint, periodic=periodic, species=numbers, kernel=kernel
    )
    scripted = openmm_module(student, numbers, periodic, kernel)
    with staged_file(output, inputs=[checkpoint, topology], overwrite=overwrite) as staged:
        verify_openmm(save_with_metadata(scripted, staged, metadata), student, atoms, periodic, output)
    return output
