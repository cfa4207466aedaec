"""Self-check of exported models: reload the file and compare with the eager student."""

import copy
from pathlib import Path

import torch

import numpy as np
from ase import Atoms

from ..errors import MLFFDError
from ..models.student import Student
from ..units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM
from .metadata import load_exported

#: Largest relative disagreement of an OpenMM export against the float64 student, per export dtype.
#: A float32 file is checked against float64 truth. Its forces (autograd of the file's energy, or
#: the fused kernel's) differ from it by float32 rounding of the network and of the positions
#: (about 3e-7 Å at 5 Å), not by the way the gradient is taken: measured 2e-4 of the largest force
#: on aspirin and water-32 at their minima (largest forces under 0.2 eV/Å), 1e-5 on caffeine (1.2
#: eV/Å); energies agree to 1e-7. 1e-3 passes that rounding with a margin of 5, and fails a wrong
#: model (species, units, weights: errors of order one). The position rounding grows with the
#: coordinates (8e-4 on a 1,536-atom, 40 Å water box): a float32 file with a large baked-in box
#: may need float64, or an export without --topology (checked on a small cluster).
OPENMM_TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-3}


class ExportVerificationError(MLFFDError):
    """An exported model that disagrees with the student it came from, or returns non-finite values."""


def test_configuration(student: Student, atoms: Atoms | None = None) -> Atoms:
    """The structure an export is checked on: ``atoms`` if given, else a small made-up cluster (Å).

    The cluster holds 8 atoms cycling through the model's elements, on a jittered grid 1.3 Å apart.
    """
    if atoms is not None:
        return atoms
    rng = np.random.default_rng(0)
    grid = np.array([[i, j, k] for i in range(2) for j in range(2) for k in range(2)], dtype=float) * 1.3
    numbers = [student.elements[i % len(student.elements)] for i in range(len(grid))]
    return Atoms(numbers=numbers, positions=grid + rng.uniform(-0.15, 0.15, grid.shape))


def _disagreement(actual: torch.Tensor, expected: torch.Tensor) -> float:
    scale = max(float(expected.abs().max()), 1e-30)
    return float((actual - expected).abs().max()) / scale


def verify_openmm(
    path: Path, student: Student, atoms: Atoms | None, periodic: bool, name: str | Path | None = None
) -> None:
    """Reload the OpenMM export at ``path`` and check it against ``student`` in vacuum and, if periodic, in a box.

    Raises :class:`ExportVerificationError` on non-finite output or a disagreement with the
    float64 student larger than :data:`OPENMM_TOLERANCE` for the student's dtype; its message
    names the file ``name`` (default ``path``: an exporter verifies a staged copy of its output).
    """
    name = path if name is None else name
    module, metadata = load_exported(path)
    structure = test_configuration(student, atoms)
    numbers = torch.as_tensor(structure.numbers, dtype=torch.long)
    if metadata.get("species") is None:
        module.set_species(numbers, torch.arange(len(numbers)))
    species = student.species(structure.numbers)
    positions = torch.tensor(structure.positions, dtype=torch.float64)
    boxes = [None]
    if periodic:
        cell = structure.cell[:] if structure.pbc.all() else np.diag(np.ptp(structure.positions, 0) + 3.0)
        boxes.append(torch.tensor(np.asarray(cell), dtype=torch.float64))
    tolerance = OPENMM_TOLERANCE[student.network.energy_scale.dtype]
    reference = copy.deepcopy(student).double()
    for box in boxes:
        energy, forces = _openmm_energy_forces(module, positions / NM_TO_ANGSTROM, box)
        pbc = None if box is None else torch.ones(3, dtype=torch.bool)
        expected_energy, expected_forces = reference.energy_and_forces(positions, species, box, pbc)
        where = "in vacuum" if box is None else "in a periodic box"
        if not (torch.isfinite(energy) and torch.isfinite(forces).all()):
            raise ExportVerificationError(f"{name}: the exported model returns non-finite values {where}")
        energy_error = _disagreement(energy.double(), expected_energy.double())
        force_error = _disagreement(forces.double(), expected_forces.double())
        if energy_error > tolerance or force_error > tolerance:
            raise ExportVerificationError(
                f"{name}: the exported model disagrees with the student {where} "
                f"(relative energy error {energy_error:.2e}, force error {force_error:.2e}, tolerance {tolerance:.0e})"
            )


def _openmm_energy_forces(
    module, positions_nm: torch.Tensor, box_nm: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Energy (eV) and forces (eV/Å) of an OpenMM-target module, converted back from kJ/mol and nm.

    A module that returns the energy alone (portable) gets its forces as openmm-torch takes them:
    minus the autograd gradient of the loaded module's energy; a fused one returns both.
    """
    positions_nm = positions_nm.detach().requires_grad_(True)
    output = module(positions_nm) if box_nm is None else module(positions_nm, box_nm / NM_TO_ANGSTROM)
    if isinstance(output, torch.Tensor):
        energy = output
        forces = -torch.autograd.grad(energy, positions_nm)[0]
    else:
        energy, forces = output
    return energy.detach() / EV_TO_KJ_PER_MOL, forces.detach() / (EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM)


#: Largest relative disagreement of a LAMMPS export, evaluated by the C++ kernel, against the float64
#: student, per export dtype: float32 rounding as for OpenMM exports (see :data:`OPENMM_TOLERANCE`).
LAMMPS_TOLERANCE = OPENMM_TOLERANCE


def verify_lammps(path: Path, student: Student, name: str | Path | None = None) -> None:
    """Run the LAMMPS export at ``path`` through the C++ network ``pair_style mlffd`` runs, and
    check it against ``student`` by autograd in float64, in vacuum and in a small periodic box.

    The file's weights go, by name, to ``torch.ops.mlffd.painn_all_pairs_forces``: the torch
    operator built from the headers the pair style compiles (``models/kernel/painn.h``, the
    weights' checks of ``weights.h``, the loop of ``driver.h``). Builds the kernel if needed.

    Raises
    ------
    ExportVerificationError
        When the kernel refuses the file's weights, returns non-finite values, or disagrees with
        the student beyond :data:`LAMMPS_TOLERANCE` for the file's dtype (energy, and forces
        relative to the largest force), or when the file's element list is not the student's;
        its message names the file ``name`` (default ``path``: an exporter verifies a staged copy).
    """
    from ..elements import symbols
    from ..models.kernel import load_kernel
    from .metadata import PRECISIONS

    load_kernel()
    name = path if name is None else name
    module, metadata = load_exported(path)
    if list(module.symbols) != symbols(student.elements):
        raise ExportVerificationError(
            f"{name}: elements {list(module.symbols)}, the student's {symbols(student.elements)}"
        )
    dtype = PRECISIONS[metadata["precision"]]
    settings = (dict(module.kernel_weights), int(module.layers), float(module.cutoff), float(module.norm_epsilon))
    structure = test_configuration(student)
    species = student.species(structure.numbers)
    positions = torch.tensor(structure.positions, dtype=torch.float64)
    reference = copy.deepcopy(student).double()
    for cell in (None, torch.tensor(np.diag(np.ptp(structure.positions, 0) + 3.0))):
        where = "in vacuum" if cell is None else "in a periodic box"
        try:
            energies, forces = torch.ops.mlffd.painn_all_pairs_forces(
                species, positions.to(dtype), None if cell is None else cell.to(dtype), *settings
            )
        except RuntimeError as exc:
            reason = str(exc).splitlines()[0]
            raise ExportVerificationError(
                f"{name}: the C++ network of pair_style mlffd refuses the file: {reason}"
            ) from exc
        pbc = None if cell is None else torch.ones(3, dtype=torch.bool)
        expected_energy, expected_forces = reference.energy_and_forces(positions, species, cell, pbc)
        errors = (
            _disagreement(energies.sum().double(), expected_energy),
            _disagreement(forces.double(), expected_forces),
        )
        if not all(error <= LAMMPS_TOLERANCE[dtype] for error in errors):  # also catches NaN
            raise ExportVerificationError(
                f"{name}: pair_style mlffd's C++ network disagrees with the student {where} (relative energy error "
                f"{errors[0]:.2e}, force error {errors[1]:.2e}, tolerance {LAMMPS_TOLERANCE[dtype]:.0e})"
            )
