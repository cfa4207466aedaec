"""An ASE calculator that drives a student."""

from pathlib import Path
from typing import List, Optional, Union

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from .checkpoint import load_checkpoint
from .student import Student


class StudentCalculator(Calculator):
    """ASE calculator for a student: energy (eV), per-atom energies, forces (eV/Å), stress (eV/Å³).

    Parameters
    ----------
    model : Student or path
        A student or a checkpoint file.
    dtype : torch.dtype
        Precision of the evaluation (float64 by default).
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, model: Union[Student, str, Path], dtype: torch.dtype = torch.float64, **kwargs):
        super().__init__(**kwargs)
        self.student = load_checkpoint(model, dtype) if isinstance(model, (str, Path)) else model.to(dtype).eval()
        self.dtype = dtype

    def calculate(self, atoms=None, properties: Optional[List[str]] = None, system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        properties = properties or ["energy"]
        numbers = self.atoms.get_atomic_numbers()
        species = self.student.species(numbers)
        positions = torch.tensor(self.atoms.get_positions(), dtype=self.dtype)
        pbc = torch.tensor(self.atoms.get_pbc(), dtype=torch.bool)
        cell = torch.tensor(np.asarray(self.atoms.get_cell()), dtype=self.dtype)
        want_stress = "stress" in properties and bool(pbc.all())
        strain = torch.zeros((3, 3), dtype=self.dtype, requires_grad=want_stress)
        deformation = torch.eye(3, dtype=self.dtype) + strain
        positions.requires_grad_(True)
        atom_energies = self.student.atomic_energies(positions @ deformation, species, cell @ deformation, pbc)
        energy = atom_energies.sum()
        inputs = [positions, strain] if want_stress else [positions]
        gradients = torch.autograd.grad(energy, inputs)
        self.results["energy"] = float(energy.detach())
        self.results["free_energy"] = self.results["energy"]
        self.results["energies"] = atom_energies.detach().numpy().astype(float)
        self.results["forces"] = -gradients[0].numpy().astype(float)
        if want_stress:
            stress = gradients[1].numpy() / self.atoms.get_volume()
            sym = 0.5 * (stress + stress.T)
            self.results["stress"] = np.array([sym[0, 0], sym[1, 1], sym[2, 2], sym[1, 2], sym[0, 2], sym[0, 1]])
