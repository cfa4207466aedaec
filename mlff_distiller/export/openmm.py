"""The OpenMM target: a TorchScript module for openmm-torch's ``TorchForce`` (nm in, kJ/mol out).

The module takes positions in nm (and, for periodic systems, box vectors in nm as rows)
in whatever dtype the platform passes, computes in the student's dtype, and returns the
energy in kJ/mol and the forces in kJ/mol/nm, both in the input dtype. The forces come from
the student's hand-written reverse pass (:class:`~mlff_distiller.models.forces.StudentForces`),
not from autograd, so the ``TorchForce`` must be told that the model outputs forces:
``force.setOutputsForces(True)`` (:func:`mlff_distiller.plugin.create_torch_force` does it).
With ``kernel="fused"`` the CPU computation is one call of the C++ kernel
(:class:`~mlff_distiller.models.fused.FusedStudentForces`): several times faster on small
molecules, but the file then loads only in a process that ran ``mlff_distiller.load_kernel()``.
The species of the atoms are a buffer: baked in at export time (``topology``: a
self-contained file) or set later with ``set_species``.
"""

import copy
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..errors import OverwriteError
from ..models import load_checkpoint
from ..models.forces import StudentForces
from ..models.fused import FusedStudentForces
from ..models.kernel import KERNELS
from ..models.student import Student
from ..units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM
from .metadata import PRECISIONS, build_metadata, save_with_metadata
from .verify import verify_openmm


class OpenMMStudent(nn.Module):
    """A student as an OpenMM ``TorchForce`` model: positions (nm) [, box (nm)] -> energy (kJ/mol), forces (kJ/mol/nm).

    Parameters
    ----------
    student : Student
        The force field (Å, eV), already in the dtype it should compute in.
    numbers : sequence of int, optional
        Atomic numbers of the atoms it applies to; ``None`` leaves them to :meth:`set_species`.
    periodic : bool
        Whether the model accepts box vectors; a non-periodic model refuses them.
    kernel : str
        ``"portable"`` (:class:`StudentForces`, TorchScript only) or ``"fused"``
        (:class:`FusedStudentForces`: the C++ kernel on CPU, which must be loaded first).
    """

    def __init__(
        self, student: Student, numbers: Optional[Sequence[int]] = None, periodic: bool = True, kernel: str = "portable"
    ):
        super().__init__()
        # the only reference to the student: freezing mishandles aliases
        self.forces = FusedStudentForces(student) if kernel == "fused" else StudentForces(student)
        self.periodic = periodic
        self.angstrom_per_nm = NM_TO_ANGSTROM
        self.kj_per_mol_per_ev = EV_TO_KJ_PER_MOL
        dtype = student.network.energy_scale.dtype
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

    def forward(self, positions: Tensor, box: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Potential energy in kJ/mol and the force on every particle in kJ/mol/nm.

        Parameters
        ----------
        positions : Tensor, shape (N, 3)
            Positions of every particle of the System in nm, any float dtype.
        box : Tensor, shape (3, 3), optional
            Periodic box vectors as rows in nm; ``None`` for a system in vacuum.

        Returns
        -------
        energy : Tensor, shape ()
            In kJ/mol, in the dtype of ``positions``.
        forces : Tensor, shape (N, 3)
            In kJ/mol/nm, in the dtype of ``positions``; zero on particles outside the model's atoms.
        """
        if self.species.shape[0] == 0:
            raise RuntimeError("the model's species are not set: export with a topology or call set_species")
        dtype = self.vacuum_cell.dtype
        pos = positions.detach()[self.atoms].to(dtype) * self.angstrom_per_nm
        if box is None:
            cell = self.vacuum_cell
            pbc = self.vacuum_pbc
        else:
            if not self.periodic:
                raise RuntimeError("this model was exported without periodic support but received a box")
            cell = box.detach().to(dtype) * self.angstrom_per_nm
            pbc = self.periodic_pbc
        # openmm-torch's CPU platform passes positions that require grad even when the model
        # outputs forces; without no_grad TorchScript would prepare autodiff for every operation
        with torch.no_grad():
            energies, forces = self.forces(pos, self.species, cell, pbc)
            energy = (energies.sum() * self.kj_per_mol_per_ev).to(positions.dtype)
            forces = (forces * (self.kj_per_mol_per_ev * self.angstrom_per_nm)).to(positions.dtype)
            return energy, torch.zeros_like(positions).index_add(0, self.atoms, forces)


def openmm_module(
    student: Student, numbers: Optional[Sequence[int]] = None, periodic: bool = True, kernel: str = "portable"
) -> torch.jit.ScriptModule:
    """The scripted :class:`OpenMMStudent` of a copy of ``student`` (computing in the student's dtype).

    The copy's parameters do not require grad: the forces are computed without autograd, and
    nothing should record a graph for the weights at every MD step. ``kernel`` is one of
    :data:`~mlff_distiller.models.kernel.KERNELS`; ``"fused"`` loads (and if needed builds) the kernel.
    """
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel '{kernel}'; choose one of {', '.join(KERNELS)}")
    inference_copy = copy.deepcopy(student).eval().requires_grad_(False)
    return torch.jit.script(OpenMMStudent(inference_copy, numbers, periodic, kernel).eval())


def export_openmm(
    checkpoint: Union[str, Path],
    output: Union[str, Path],
    topology: Optional[Union[str, Path]] = None,
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
        plain OpenMM script with ``TorchForce("OUT.pt")`` and ``setOutputsForces(True)``. Without it, species are set at run
        time (``set_species``), which ``mlff_distiller.plugin`` does for you.
    precision : str
        ``"float32"`` or ``"float64"``: the dtype the model computes in.
    periodic : bool
        Accept periodic boxes (True) or refuse them (False).
    overwrite : bool
        Replace an existing ``output``.
    kernel : str
        ``"portable"``: TorchScript operations only, the file runs in any openmm-torch process.
        ``"fused"``: on CPU the student runs as one C++ kernel (several times faster on small
        molecules); the loading process must first run ``mlff_distiller.load_kernel()``
        (``mlffd md`` and :mod:`mlff_distiller.plugin` do). On GPUs both run the same code.

    Returns
    -------
    Path
        The written file, after it was reloaded and checked against the eager student.
    """
    from ..structures import read_structure

    output = Path(output)
    if output.exists() and not overwrite:
        raise OverwriteError(f"{output} exists; pass --overwrite to replace it")
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
    save_with_metadata(openmm_module(student, numbers, periodic, kernel), output, metadata)
    try:
        verify_openmm(output, student, atoms, periodic)
    except Exception:
        output.unlink(missing_ok=True)
        raise
    return output
