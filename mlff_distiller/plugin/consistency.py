"""Do the engines agree? One structure through the PyTorch student, the ASE calculator, OpenMM and LAMMPS.

Each engine gives the energy (eV), forces (eV/Å) and virial W = sum r ⊗ f = -dE/dstrain (eV)
of the same configuration; each is compared with the direct PyTorch student.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

import numpy as np
import torch
from ase import Atoms

from ..models import StudentCalculator, load_checkpoint
from ..models.student import Student
from ..units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM

#: Relative disagreement above which two float64 engines are said to differ.
TOLERANCE = 1e-8
#: Strain step of the finite-difference virial (OpenMM has no virial of its own), taken with the
#: five-point stencil: truncation error of order step^4.
STRAIN_STEP = 1e-5


@dataclass
class EngineResult:
    """Energy (eV), forces (N, 3) in eV/Å and virial (3, 3) in eV of one engine (virial None if unavailable)."""

    engine: str
    energy: float
    forces: np.ndarray
    virial: Optional[np.ndarray]
    virial_method: str = ""


@dataclass
class Comparison:
    """One engine against the reference: absolute and relative differences."""

    engine: str
    energy: float
    energy_difference: float
    energy_relative: float
    force_difference: float
    force_relative: float
    virial_difference: Optional[float]
    virial_relative: Optional[float]
    virial_method: str

    def agrees(self, tolerance: float = TOLERANCE) -> bool:
        values = [self.energy_relative, self.force_relative] + ([self.virial_relative] if self.virial_relative is not None else [])
        return all(value <= tolerance for value in values)  # False for NaN too


def _relative(difference: float, scale: float) -> float:
    return difference / max(scale, 1e-300)


def pytorch_result(student: Student, atoms: Atoms) -> EngineResult:
    """The direct student: autograd forces, and the virial from the derivative with respect to strain."""
    periodic = bool(atoms.pbc.all())
    positions = torch.tensor(atoms.positions, dtype=torch.float64, requires_grad=True)
    cell = torch.tensor(np.asarray(atoms.cell), dtype=torch.float64) if periodic else torch.zeros((3, 3), dtype=torch.float64)
    pbc = torch.tensor([periodic] * 3)
    strain = torch.zeros((3, 3), dtype=torch.float64, requires_grad=True)
    deformation = torch.eye(3, dtype=torch.float64) + strain
    energy = student(positions @ deformation, student.species(atoms.numbers), cell @ deformation, pbc)
    gradient, strain_gradient = torch.autograd.grad(energy, [positions, strain])
    virial = -0.5 * (strain_gradient + strain_gradient.T)
    return EngineResult("PyTorch (direct)", float(energy.detach()), -gradient.numpy(), virial.numpy(), "autograd strain")


def ase_result(student: Student, atoms: Atoms) -> EngineResult:
    """The ASE calculator (stress only for periodic systems)."""
    atoms = atoms.copy()
    atoms.calc = StudentCalculator(student)
    virial = None
    if atoms.pbc.all():
        xx, yy, zz, yz, xz, xy = atoms.get_stress()
        virial = -np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]]) * atoms.get_volume()
    return EngineResult("ASE calculator", atoms.get_potential_energy(), atoms.get_forces(), virial, "stress" if virial is not None else "")


def openmm_result(checkpoint: Union[str, Path], atoms: Atoms) -> EngineResult:
    """OpenMM's Reference platform with the student's TorchForce (nm, kJ/mol converted to Å, eV).

    OpenMM computes in the frame where the cell is lower-triangular (:func:`structure_to_openmm`
    turns a periodic structure into it); forces and virial are turned back into ``atoms``' frame.
    """
    import openmm

    from .system import build_system, structure_to_openmm

    structure = structure_to_openmm(atoms)
    system = build_system(structure, checkpoint, remove_cm_motion=False)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    box = np.asarray(structure.topology.getPeriodicBoxVectors()._value) if structure.periodic else None

    def energy_at(deformation: np.ndarray, forces: bool = False):
        if box is not None:
            context.setPeriodicBoxVectors(*(box @ deformation))
        context.setPositions(structure.positions @ deformation)
        state = context.getState(getEnergy=True, getForces=forces)
        energy = state.getPotentialEnergy()._value / EV_TO_KJ_PER_MOL
        return (energy, state.getForces(asNumpy=True)._value / EV_TO_KJ_PER_MOL / NM_TO_ANGSTROM) if forces else energy

    # positions in OpenMM's frame are those of atoms times this rotation
    rotation = np.linalg.solve(np.asarray(atoms.cell), np.asarray(atoms.cell.standard_form()[0])) if structure.periodic else np.eye(3)
    energy, forces = energy_at(np.eye(3), forces=True)
    virial = np.zeros((3, 3))
    for a in range(3):
        for b in range(a, 3):
            steps = []
            for multiple in (2.0, 1.0, -1.0, -2.0):
                deformation = np.eye(3)  # x_a += h x_b: keeps OpenMM's box lower-triangular; W is symmetric
                deformation[b, a] += multiple * STRAIN_STEP
                steps.append(energy_at(deformation))
            derivative = (-steps[0] + 8.0 * steps[1] - 8.0 * steps[2] + steps[3]) / (12.0 * STRAIN_STEP)
            virial[a, b] = virial[b, a] = -derivative
    return EngineResult("OpenMM (Reference)", energy, forces @ rotation.T, rotation @ virial @ rotation.T, "finite strain")


def lammps_result(checkpoint: Union[str, Path], atoms: Atoms, cutoff: float) -> EngineResult:
    """LAMMPS with ``pair_style mlffd`` (the checkpoint exported to a temporary file)."""
    from ..export.lammps import export_lammps
    from .lammps.single_point import single_point

    with tempfile.TemporaryDirectory() as folder:
        model = export_lammps(checkpoint, Path(folder) / "model.pt")
        result = single_point(model, atoms, cutoff)
    return EngineResult("LAMMPS (pair_style mlffd)", result["energy"], result["forces"], result["virial"], "pair virial")


def compare_engines(checkpoint: Union[str, Path], atoms: Atoms, engines: Optional[List[str]] = None) -> List[Comparison]:
    """Compare the engines on ``atoms``, in float64, against the direct PyTorch student.

    Parameters
    ----------
    checkpoint : str or Path
        Student checkpoint.
    atoms : ase.Atoms
        A molecule or a periodic box of any shape (positions in Å).
    engines : list of str, optional
        Subset of ``"ase"``, ``"openmm"``, ``"lammps"`` (default: all).

    Returns
    -------
    list of Comparison
        The reference first (zero differences), then each engine.
    """
    student = load_checkpoint(checkpoint, dtype=torch.float64)
    student.species(atoms.numbers)  # UnsupportedElementError before any engine starts
    runners: Dict[str, Callable[[], EngineResult]] = {
        "ase": lambda: ase_result(student, atoms),
        "openmm": lambda: openmm_result(checkpoint, atoms),
        "lammps": lambda: lammps_result(checkpoint, atoms, student.cutoff),
    }
    reference = pytorch_result(student, atoms)
    results = [reference] + [runners[name]() for name in (engines or list(runners))]
    force_scale = float(np.abs(reference.forces).max())
    virial_scale = float(np.abs(reference.virial).max())
    comparisons = []
    for result in results:
        d_energy = abs(result.energy - reference.energy)
        d_forces = float(np.abs(result.forces - reference.forces).max())
        d_virial = float(np.abs(result.virial - reference.virial).max()) if result.virial is not None else None
        comparisons.append(
            Comparison(
                result.engine,
                result.energy,
                d_energy,
                _relative(d_energy, abs(reference.energy)),
                d_forces,
                _relative(d_forces, force_scale),
                d_virial,
                _relative(d_virial, virial_scale) if d_virial is not None else None,
                result.virial_method,
            )
        )
    return comparisons
