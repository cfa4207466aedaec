"""Do the engines agree? One structure through the PyTorch student, the ASE calculator, OpenMM and LAMMPS.

Each engine gives the energy (eV), forces (eV/Å) and virial W = sum r ⊗ f = -dE/dstrain (eV)
of the same configuration; each is compared with the direct PyTorch student.

The model under test is a student checkpoint or a file written by ``mlffd export``
(:func:`resolve_models`): an OpenMM export runs in OpenMM, a LAMMPS export in LAMMPS, and
the other engines run the checkpoint it was exported from.

Tolerances. Energies and forces agree to rounding error in float64; the default relative
tolerance is :data:`TOLERANCE` (:data:`FLOAT32_TOLERANCE` for a float32 export). The PyTorch,
ASE and LAMMPS virials are analytic and share it. OpenMM has no virial: it is differentiated by
finite strain (:mod:`.finite_strain`), within that stencil's own error estimate and never below
the energy and force tolerance.
"""

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

import numpy as np
from ase import Atoms

from ..elements import check_supported
from ..errors import CheckpointError, MLFFDError
from ..export.metadata import load_exported
from ..export.verify import OPENMM_TOLERANCE
from ..models import StudentCalculator, load_checkpoint
from ..models.checkpoint import file_sha256, read_checkpoint
from ..models.student import Student
from ..units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM
from .finite_strain import finite_strain_virial

#: Relative disagreement above which two float64 engines are said to differ (energy, forces, analytic virials).
TOLERANCE = 1e-8
#: The same for an engine running a float32 export: its rounding against the float64 student.
FLOAT32_TOLERANCE = OPENMM_TOLERANCE[torch.float32]
#: Engines besides the direct student, in the order they run.
ENGINES = ["ase", "openmm", "lammps"]


@dataclass
class EngineModels:
    """The files each engine runs: the reference checkpoint, and exports under test (None: built from it).

    Attributes
    ----------
    checkpoint : Path
        Student checkpoint of the PyTorch reference and the ASE calculator (and of the engines without an export).
    openmm, lammps : Path, optional
        A model exported by ``mlffd export`` for that engine.
    precision : str
        ``"float64"``, or ``"float32"`` when the export computes in float32.
    same_source : bool, optional
        For an export: whether it was written from ``checkpoint`` (equal SHA-256).
    """

    checkpoint: Path
    openmm: Path | None = None
    lammps: Path | None = None
    precision: str = "float64"
    same_source: bool | None = None

    def describe(self, engine: str) -> str:
        """Where ``engine``'s model comes from, in words."""
        export = self.openmm if engine == "openmm" else self.lammps if engine == "lammps" else None
        if export is None:
            return f"{self.checkpoint}" + (" (exported to a temporary file)" if engine == "lammps" else "")
        source = "exported from the reference checkpoint" if self.same_source else "exported from ANOTHER checkpoint"
        return f"{export} ({self.precision} export, {source})"


@dataclass
class EngineResult:
    """Energy (eV), forces (N, 3) in eV/Å and virial (3, 3) in eV of one engine (virial None if unavailable).

    ``virial_error`` is the error bound (eV) of a numerical virial, None for an analytic one.
    """

    engine: str
    energy: float
    forces: np.ndarray
    virial: np.ndarray | None
    virial_method: str = ""
    virial_error: float | None = None


@dataclass
class Comparison:
    """One engine against the reference: absolute and relative differences, and the relative tolerances applied."""

    engine: str
    energy: float
    energy_difference: float
    energy_relative: float
    force_difference: float
    force_relative: float
    virial_difference: float | None
    virial_relative: float | None
    virial_method: str
    tolerance: float = TOLERANCE
    virial_tolerance: float | None = None

    def agrees(self) -> bool:
        """Energy and forces within ``tolerance``, virial within ``virial_tolerance`` (False for NaN)."""
        checks = [(self.energy_relative, self.tolerance), (self.force_relative, self.tolerance)]
        if self.virial_relative is not None:
            checks.append((self.virial_relative, self.virial_tolerance))
        return all(value <= limit for value, limit in checks)


def resolve_models(model: str | Path, checkpoint: str | Path | None = None) -> EngineModels:
    """Sort ``model`` into a checkpoint, an OpenMM export or a LAMMPS export.

    Parameters
    ----------
    model : str or Path
        Student checkpoint (``.ckpt``) or a file of ``mlffd export`` (``.pt``, OpenMM or LAMMPS).
    checkpoint : str or Path, optional
        Reference checkpoint for an export; default: the checkpoint recorded in the export,
        if it is still there unchanged (same SHA-256).

    Raises
    ------
    MLFFDError
        For a file that is neither, a checkpoint given twice, or an export whose source checkpoint is unavailable.
    """
    model = Path(model)
    if not model.is_file():
        raise CheckpointError(f"{model}: no such file")
    metadata = _export_metadata(model)
    if metadata is None:
        _check_checkpoint(model)
        if checkpoint is not None:
            raise MLFFDError(f"{model} is itself a checkpoint; --checkpoint is for exported models")
        return EngineModels(model)
    reference = Path(checkpoint) if checkpoint is not None else _recorded_source(model, metadata)
    _check_checkpoint(reference)
    return EngineModels(
        reference,
        precision=metadata.get("precision", "float64"),
        same_source=file_sha256(reference) == metadata.get("source_checkpoint_sha256"),
        **{metadata["engine"]: model},
    )


def _export_metadata(path: Path) -> dict | None:
    """The metadata of an OpenMM or LAMMPS export, None for any other file (which must then be a checkpoint)."""
    try:
        metadata = load_exported(path)[1]
    except CheckpointError:
        return None
    if metadata.get("engine") not in ("openmm", "lammps"):
        raise CheckpointError(
            f"{path}: exported for engine '{metadata.get('engine')}'; check-engines runs OpenMM and LAMMPS exports"
        )
    return metadata


def _check_checkpoint(path: Path) -> None:
    """Raise :class:`CheckpointError` unless ``path`` is a student checkpoint (one line, with read_checkpoint's reason)."""
    try:
        read_checkpoint(path)
    except CheckpointError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise CheckpointError(
            f"{path}: neither a student checkpoint nor a model exported by 'mlffd export' for OpenMM or LAMMPS ({reason})"
        ) from exc


def _recorded_source(export: Path, metadata: dict) -> Path:
    """The checkpoint ``export`` was written from, if it is still there and unchanged."""
    source = metadata.get("source_checkpoint")
    if source is None or not Path(source).is_file() or file_sha256(source) != metadata.get("source_checkpoint_sha256"):
        raise MLFFDError(
            f"{export}: the checkpoint it was exported from ({source}) is not available unchanged; "
            "pass the reference with --checkpoint"
        )
    return Path(source)


def _relative(difference: float, scale: float) -> float:
    return difference / max(scale, 1e-300)


def pytorch_result(student: Student, atoms: Atoms) -> EngineResult:
    """The direct student: autograd forces, and the virial from the derivative with respect to strain."""
    periodic = bool(atoms.pbc.all())
    positions = torch.tensor(atoms.positions, dtype=torch.float64, requires_grad=True)
    cell = (
        torch.tensor(np.asarray(atoms.cell), dtype=torch.float64)
        if periodic
        else torch.zeros((3, 3), dtype=torch.float64)
    )
    pbc = torch.tensor([periodic] * 3)
    strain = torch.zeros((3, 3), dtype=torch.float64, requires_grad=True)
    deformation = torch.eye(3, dtype=torch.float64) + strain
    energy = student(positions @ deformation, student.species(atoms.numbers), cell @ deformation, pbc)
    gradient, strain_gradient = torch.autograd.grad(energy, [positions, strain])
    virial = -0.5 * (strain_gradient + strain_gradient.T)
    return EngineResult(
        "PyTorch (direct)", float(energy.detach()), -gradient.numpy(), virial.numpy(), "autograd strain"
    )


def ase_result(student: Student, atoms: Atoms) -> EngineResult:
    """The ASE calculator (stress only for periodic systems)."""
    atoms = atoms.copy()
    atoms.calc = StudentCalculator(student)
    virial = None
    if atoms.pbc.all():
        xx, yy, zz, yz, xz, xy = atoms.get_stress()
        virial = -np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]]) * atoms.get_volume()
    return EngineResult(
        "ASE calculator",
        atoms.get_potential_energy(),
        atoms.get_forces(),
        virial,
        "stress" if virial is not None else "",
    )


def openmm_result(model: str | Path, atoms: Atoms, precision: str = "float64") -> EngineResult:
    """OpenMM's Reference platform with the student's TorchForce (nm, kJ/mol converted to Å, eV).

    ``model`` is a checkpoint or an OpenMM export computing in ``precision``. OpenMM computes in the frame where the cell is
    lower-triangular (:func:`structure_to_openmm` turns a periodic structure into it); forces and
    virial (:func:`finite_strain_virial`) are turned back into ``atoms``' frame.
    """
    import openmm

    from ..plugin.openmm.system import build_system, structure_to_openmm

    structure = structure_to_openmm(atoms)
    system = build_system(structure, model, remove_cm_motion=False)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    box = np.asarray(structure.topology.getPeriodicBoxVectors()._value) if structure.periodic else None

    def state_at(deformation: np.ndarray, forces: bool = False):
        if box is not None:
            context.setPeriodicBoxVectors(*(box @ deformation))
        context.setPositions(structure.positions @ deformation)
        return context.getState(getEnergy=True, getForces=forces)

    def energy_at(deformation: np.ndarray) -> float:
        return state_at(deformation).getPotentialEnergy()._value / EV_TO_KJ_PER_MOL

    state = state_at(np.eye(3), forces=True)
    energy = state.getPotentialEnergy()._value / EV_TO_KJ_PER_MOL
    forces = state.getForces(asNumpy=True)._value / EV_TO_KJ_PER_MOL / NM_TO_ANGSTROM
    eps = float(np.finfo(np.float32 if precision == "float32" else np.float64).eps)
    virial, error, step = finite_strain_virial(energy_at, energy, eps=eps)
    # positions in OpenMM's frame are those of atoms times this rotation
    rotation = (
        np.linalg.solve(np.asarray(atoms.cell), np.asarray(atoms.cell.standard_form()[0]))
        if structure.periodic
        else np.eye(3)
    )
    method = f"finite strain (5-point, h {step:.0e})"
    return EngineResult(
        "OpenMM (Reference)", energy, forces @ rotation.T, rotation @ virial @ rotation.T, method, error
    )


def lammps_result(models: EngineModels, atoms: Atoms) -> EngineResult:
    """LAMMPS with ``pair_style mlffd``: the LAMMPS export, or the checkpoint exported to a temporary file."""
    from ..export.lammps import export_lammps

    if models.lammps is not None:
        return _lammps_single_point(models.lammps, atoms)
    with tempfile.TemporaryDirectory() as folder:
        model = export_lammps(models.checkpoint, Path(folder) / "model.pt", precision="float64")  # as every engine here
        return _lammps_single_point(model, atoms)


def _lammps_single_point(model: Path, atoms: Atoms) -> EngineResult:
    """One LAMMPS evaluation with the LAMMPS export ``model`` (its cutoff sets the vacuum around molecules)."""
    from ..plugin.lammps.single_point import single_point

    metadata = load_exported(model)[1]
    check_supported(atoms.numbers, metadata["atomic_numbers"], f"the LAMMPS model {model}")
    result = single_point(model, atoms, float(metadata["cutoff_angstrom"]))
    return EngineResult(
        "LAMMPS (pair_style mlffd)", result["energy"], result["forces"], result["virial"], "pair virial"
    )


def compare_engines(
    model: str | Path | EngineModels,
    atoms: Atoms,
    engines: list[str] | None = None,
    tolerance: float | None = None,
) -> list[Comparison]:
    """Compare the engines on ``atoms``, in float64, against the direct PyTorch student.

    Parameters
    ----------
    model : str, Path or EngineModels
        Student checkpoint, an export whose source checkpoint is still in place (see
        :func:`resolve_models`), or the resolved models.
    atoms : ase.Atoms
        A molecule or a periodic box of any shape (positions in Å).
    engines : list of str, optional
        Subset of :data:`ENGINES` (default: all).
    tolerance : float, optional
        Relative tolerance of energies, forces and analytic virials (default :data:`TOLERANCE`,
        :data:`FLOAT32_TOLERANCE` for the engine of a float32 export); the finite-strain virial
        gets the larger of it and its own error estimate.

    Returns
    -------
    list of Comparison
        The reference first (zero differences), then each engine.
    """
    models = model if isinstance(model, EngineModels) else resolve_models(model)
    engines = engines or list(ENGINES)
    student = load_checkpoint(models.checkpoint, dtype=torch.float64)
    student.species(atoms.numbers)  # UnsupportedElementError before any engine starts
    runners: dict[str, Callable[[], EngineResult]] = {
        "ase": lambda: ase_result(student, atoms),
        "openmm": lambda: openmm_result(models.openmm or models.checkpoint, atoms, _engine_precision(models, "openmm")),
        "lammps": lambda: lammps_result(models, atoms),
    }
    reference = pytorch_result(student, atoms)
    results = [(reference, TOLERANCE)] + [
        (runners[name](), _engine_tolerance(models, name, tolerance)) for name in engines
    ]
    return [_compare(result, reference, limit) for result, limit in results]


def _engine_precision(models: EngineModels, engine: str) -> str:
    """The dtype ``engine`` computes in: its export's, else float64 (built from the checkpoint)."""
    return models.precision if getattr(models, engine, None) is not None else "float64"


def _engine_tolerance(models: EngineModels, engine: str, tolerance: float | None) -> float:
    """The user's tolerance, else the default for the precision ``engine`` computes in."""
    if tolerance is not None:
        return tolerance
    return FLOAT32_TOLERANCE if _engine_precision(models, engine) == "float32" else TOLERANCE


def _compare(result: EngineResult, reference: EngineResult, tolerance: float) -> Comparison:
    """``result`` against ``reference``: differences, relative ones, and the tolerances that apply."""
    d_energy = abs(result.energy - reference.energy)
    d_forces = float(np.abs(result.forces - reference.forces).max())
    force_scale = float(np.abs(reference.forces).max())
    virial_scale = float(np.abs(reference.virial).max())
    d_virial, virial_relative, virial_tolerance = None, None, None
    if result.virial is not None:
        d_virial = float(np.abs(result.virial - reference.virial).max())
        virial_relative = _relative(d_virial, virial_scale)
        virial_tolerance = max(tolerance, _relative(result.virial_error or 0.0, virial_scale))
    return Comparison(
        result.engine,
        result.energy,
        d_energy,
        _relative(d_energy, abs(reference.energy)),
        d_forces,
        _relative(d_forces, force_scale),
        d_virial,
        virial_relative,
        result.virial_method,
        tolerance,
        virial_tolerance,
    )
