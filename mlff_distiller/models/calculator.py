"""An ASE calculator that drives a student."""

import copy
from pathlib import Path
from typing import List, Optional, Union

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from .checkpoint import load_checkpoint
from .student import Student


class StudentCalculator(Calculator):
    """ASE calculator for a student: energy (eV), per-atom energies, forces (eV/Å), stress (eV/Å³).

    Each call runs a TorchScript-compiled, frozen copy of the student (weights folded in as
    constants that need no gradient); the species indices are mapped, and the elements checked,
    only when the atomic numbers change. The copy runs unoptimised
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

    Attributes
    ----------
    student : Student
        The calculator's own eager copy of the student, in ``dtype`` and eval mode.
    compiled : torch.jit.ScriptModule
        The frozen TorchScript student that each call evaluates (its ``atomic_energies`` method).
    dtype : torch.dtype
        Precision of the evaluation.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, model: Union[Student, str, Path], dtype: torch.dtype = torch.float64, **kwargs) -> None:
        super().__init__(**kwargs)
        student = load_checkpoint(model, dtype) if isinstance(model, (str, Path)) else copy.deepcopy(model).to(dtype)
        self.student = student.eval().requires_grad_(False)
        self.dtype = dtype
        self.compiled = torch.jit.freeze(torch.jit.script(self.student), preserved_attrs=["atomic_energies"])
        self._numbers: Optional[np.ndarray] = None
        self._species: Optional[torch.Tensor] = None

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
        self, atoms: Optional[Atoms] = None, properties: Optional[List[str]] = None, system_changes: List[str] = all_changes
    ) -> None:
        """Evaluate ``atoms`` (positions in Å): energy, per-atom energies, forces, and stress if periodic."""
        super().calculate(atoms, properties, system_changes)
        properties = properties or ["energy"]
        species = self.species(self.atoms.numbers)
        positions = torch.tensor(self.atoms.positions, dtype=self.dtype, requires_grad=True)
        pbc = torch.tensor(self.atoms.pbc, dtype=torch.bool)
        cell = torch.tensor(np.asarray(self.atoms.cell), dtype=self.dtype)
        want_stress = "stress" in properties and bool(pbc.all())
        inputs = [positions]
        if want_stress:
            # energy of the box deformed by (1 + strain): its strain derivative at zero is the virial
            strain = torch.zeros((3, 3), dtype=self.dtype, requires_grad=True)
            deformation = torch.eye(3, dtype=self.dtype) + strain
            positions, cell = positions @ deformation, cell @ deformation
            inputs.append(strain)
        with torch.jit.optimized_execution(False):
            atom_energies = self.compiled.atomic_energies(positions, species, cell, pbc)
        energy = atom_energies.sum()
        gradients = torch.autograd.grad(energy, inputs)
        self.results["energy"] = float(energy.detach())
        self.results["free_energy"] = self.results["energy"]
        self.results["energies"] = atom_energies.detach().numpy().astype(float)
        self.results["forces"] = -gradients[0].numpy().astype(float)
        if want_stress:
            stress = gradients[1].numpy() / self.atoms.get_volume()
            sym = 0.5 * (stress + stress.T)
            self.results["stress"] = np.array([sym[0, 0], sym[1, 1], sym[2, 2], sym[1, 2], sym[0, 2], sym[0, 1]])
