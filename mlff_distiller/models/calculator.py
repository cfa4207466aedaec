"""An ASE calculator that drives a student."""

import copy
from pathlib import Path

import torch

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from ..errors import SimulationError, StructureError
from ..structures import MIN_DISTANCE_A, check_box_for_cutoff, check_positions, closest_pair
from .checkpoint import load_checkpoint
from .fused import FusedStudentForces
from .kernel import resolve_kernel, resolve_threads
from .student import Student


class StudentCalculator(Calculator):
    """ASE calculator for a student: energy (eV), per-atom energies, forces (eV/Å), stress (eV/Å³).

    Energies and forces come by default from the fused C++ kernel
    (:class:`~mlff_distiller.models.fused.FusedStudentForces`, frozen in TorchScript). With
    ``kernel="portable"``, and for every call that asks for the stress of a periodic system, a
    TorchScript-compiled, frozen copy of the student runs under autograd instead (weights folded
    in as constants that need no gradient). The species indices are mapped, and the elements
    checked, only when the atomic numbers change. The autograd copy runs unoptimised
    (``torch.jit.optimized_execution(False)``): the optimising executor's profiling runs cost
    about half a second per calculator and gave no measurable speed-up on these graphs, and
    without it autograd records the same operations as for the eager student, so the results
    equal the eager student's.

    Parameters
    ----------
    model : Student or path
        A student (copied: the caller's module is left as it is) or a checkpoint file.
    dtype : torch.dtype
        Precision of the evaluation (float64 by default).
    kernel : str
        ``"auto"`` (the fused kernel where it compiles), ``"fused"`` or ``"portable"``.
    threads : int, optional
        Threads the fused kernel splits each evaluation over; default
        (:func:`~mlff_distiller.models.kernel.default_threads`): ``OMP_NUM_THREADS`` when set, else
        every core this process may run on. Results differ from one thread's by the order of a few
        sums only. The portable kernel and the stress use torch's own threads
        (``torch.set_num_threads``).
    label, atoms, directory
        As for ASE's ``Calculator``: a name for files, atoms to attach the calculator to, a working
        folder. No other keyword is accepted.

    Raises
    ------
    TypeError
        For a keyword argument it does not take, naming it and those it takes.
    InvalidValueError
        For a thread count that is not a whole number from 1 to
        :data:`~mlff_distiller.models.kernel.MAX_THREADS`.

    Attributes
    ----------
    student : Student
        The calculator's own eager copy of the student, in ``dtype`` and eval mode.
    forces : torch.jit.ScriptModule or None
        The frozen fused module that gives per-atom energies and forces; None for the portable kernel.
    compiled : torch.jit.ScriptModule
        The frozen TorchScript student whose ``atomic_energies`` autograd differentiates.
    dtype : torch.dtype
        Precision of the evaluation.
    threads : int
        Threads of the fused kernel.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(
        self,
        model: Student | str | Path,
        dtype: torch.dtype = torch.float64,
        kernel: str = "auto",
        threads: int | None = None,
        *,
        label: str | None = None,
        atoms: Atoms | None = None,
        directory: str | Path = ".",
        **unknown,
    ) -> None:
        if unknown:
            accepted = "model, dtype, kernel, threads, label, atoms, directory"
            raise TypeError(
                f"StudentCalculator got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
                f"it takes {accepted}"
            )
        self.threads = resolve_threads(threads)
        student = load_checkpoint(model, dtype) if isinstance(model, (str, Path)) else copy.deepcopy(model).to(dtype)
        self.student = student.eval().requires_grad_(False)
        self.dtype = dtype
        self.forces: torch.jit.ScriptModule | None = None
        if resolve_kernel(kernel) == "fused":
            fused = FusedStudentForces(self.student, self.threads).eval()
            self.forces = torch.jit.freeze(torch.jit.script(fused))
        self.compiled = torch.jit.freeze(torch.jit.script(self.student), preserved_attrs=["atomic_energies"])
        self._numbers: np.ndarray | None = None
        self._species: torch.Tensor | None = None
        super().__init__(label=label, atoms=atoms, directory=directory)  # last: attaches to atoms

    def species(self, numbers: np.ndarray) -> torch.Tensor:
        """Species indices of ``numbers``, mapped again only when they differ from the last call's.

        Raises
        ------
        UnsupportedElementError
            If an atomic number is not one of the student's elements.
        """
        if self._species is None or not np.array_equal(numbers, self._numbers):
            self._species = self.student.species(numbers)
            self._numbers = np.array(numbers, copy=True)
        return self._species

    def calculate(
        self, atoms: Atoms | None = None, properties: list[str] | None = None, system_changes: list[str] = all_changes
    ) -> None:
        """Evaluate ``atoms`` (positions in Å): energy, per-atom energies, forces, and stress if periodic."""
        super().calculate(atoms, properties, system_changes)
        properties = properties or ["energy"]
        self._check_input(system_changes)
        species = self.species(self.atoms.numbers)
        pbc = torch.tensor(self.atoms.pbc, dtype=torch.bool)
        cell = torch.tensor(np.asarray(self.atoms.cell), dtype=self.dtype)
        want_stress = "stress" in properties and bool(pbc.all())
        if self.forces is not None and not want_stress:
            positions = torch.tensor(self.atoms.positions, dtype=self.dtype)
            with torch.jit.optimized_execution(False):
                atom_energies, forces = self.forces(positions, species, cell, pbc)
            self._store(atom_energies, forces)
            return
        positions = torch.tensor(self.atoms.positions, dtype=self.dtype, requires_grad=True)
        inputs = [positions]
        if want_stress:  # energy of the box deformed by (1 + strain): its strain derivative at zero is the virial
            strain = torch.zeros((3, 3), dtype=self.dtype, requires_grad=True)
            inputs.append(strain)
            deformation = torch.eye(3, dtype=self.dtype) + strain
            positions, cell = positions @ deformation, cell @ deformation
        with torch.jit.optimized_execution(False):
            atom_energies = self.compiled.atomic_energies(positions, species, cell, pbc)
        gradients = torch.autograd.grad(atom_energies.sum(), inputs)
        self._store(atom_energies.detach(), -gradients[0])
        if not want_stress:
            return
        stress = gradients[1].numpy() / self.atoms.get_volume()
        sym = 0.5 * (stress + stress.T)
        self.results["stress"] = np.array([sym[0, 0], sym[1, 1], sym[2, 2], sym[1, 2], sym[0, 2], sym[0, 1]])

    def _check_input(self, system_changes: list[str]) -> None:
        """Refuse non-finite positions, and (when the cell changed) a periodic cell that is singular or narrower than the cutoff.

        Raises :class:`~mlff_distiller.errors.StructureError`: NaN positions would otherwise give a
        finite energy and zero forces (the neighbour search finds no pair). Coordinates beyond
        ±:data:`~mlff_distiller.structures.MAX_COORDINATE_A` Å are refused as in every structure.
        """
        check_positions(self.atoms.positions, "StudentCalculator")
        if self.atoms.pbc.any() and ("cell" in system_changes or "pbc" in system_changes):
            check_box_for_cutoff(self.atoms.cell[:], self.student.cutoff, "StudentCalculator", self.atoms.pbc)

    def _store(self, atom_energies: torch.Tensor, forces: torch.Tensor) -> None:
        """Results from per-atom energies (eV) and forces (eV/Å); non-finite ones raise, naming overlapping atoms if any."""
        if not (bool(torch.isfinite(atom_energies).all()) and bool(torch.isfinite(forces).all())):
            pair = closest_pair(self.atoms, MIN_DISTANCE_A)
            if pair is not None:
                i, j, distance, _ = pair
                raise StructureError(
                    f"StudentCalculator: atoms {i} and {j} are {distance:.3g} Å apart (closer than "
                    f"{MIN_DISTANCE_A:g} Å: they overlap), and the student's energy or forces are not finite"
                )
            raise SimulationError("StudentCalculator: the student's energy or forces are not finite for these atoms")
        self.results["energy"] = float(atom_energies.sum())
        self.results["free_energy"] = self.results["energy"]
        self.results["energies"] = atom_energies.numpy().astype(float)
        self.results["forces"] = forces.numpy().astype(float)
