"""Open an MD run (our run directory or any trajectory MDAnalysis reads) for validation."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers as ASE_NUMBERS

from ..errors import TrajectoryError
from ..units import EV_TO_KJ_PER_MOL
from .energies import EnergySeries, find_energy_file, read_energies

#: Trajectory formats that carry their own topology.
SELF_CONTAINED = {".pdb", ".gro", ".xyz", ".pqr", ".mol2"}
#: H5MD observables that EnergyDrift reads per frame (eV).
ENERGY_OBSERVABLES = ("potential_energy", "kinetic_energy")


@dataclass
class Run:
    """An MD run opened for validation.

    Attributes
    ----------
    universe : MDAnalysis.Universe
        Topology and trajectory; lengths in Å, forces in kJ/(mol·Å) (MDAnalysis units).
    trajectory : Path
        The trajectory file.
    topology : Path or None
        The topology file (None for self-contained formats).
    energies : EnergySeries or None
        Energies from a CSV or LAMMPS log; None when the trajectory's own H5MD observables hold them.
    settings : dict
        The run's ``settings.json`` (empty for foreign trajectories).
    summary : dict
        The run's ``summary.json`` (empty when absent).
    """

    universe: object
    trajectory: Path
    topology: Optional[Path]
    energies: Optional[EnergySeries]
    settings: Dict = field(default_factory=dict)
    summary: Dict = field(default_factory=dict)

    @property
    def requested_time_ps(self) -> Optional[float]:
        """Simulation time the run was asked for, in ps, from ``settings.json`` (None when unknown)."""
        if self.settings.get("time") is not None:  # mlffd md's settings.json: "time" in ps
            return float(self.settings["time"])
        steps = _first(self.settings, "steps", "requested_steps")
        dt_fs = _first(self.settings, "timestep", "time_step_fs")
        if steps is None or dt_fs is None:
            return None
        return float(steps) * float(dt_fs) * 1e-3

    @property
    def model_path(self) -> Optional[Path]:
        """The student model the run used, from ``settings.json`` (None when unknown or missing)."""
        model = self.settings.get("model")
        path = model.get("path") if isinstance(model, dict) else model
        return Path(path) if path and Path(path).is_file() else None

    @property
    def has_energy_observables(self) -> bool:
        """Whether the trajectory stores energies per frame (H5MD observables)."""
        data = self.universe.trajectory.ts.data
        return all(key in data for key in ENERGY_OBSERVABLES)


def _first(mapping: Dict, *keys):
    for key in keys:
        if mapping.get(key) is not None:
            return mapping[key]
    return None


def _read_json(path: Path) -> Dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TrajectoryError(f"{path} is not valid JSON: {exc}") from None


def open_run(
    path: Union[str, Path],
    topology: Union[str, Path, None] = None,
    energies: Union[str, Path, None] = None,
) -> Run:
    """Open a run directory written by ``mlffd md``, or a trajectory file, for validation.

    Parameters
    ----------
    path : str or Path
        A run directory (``topology.pdb`` + ``trajectory.h5md``) or any trajectory MDAnalysis reads.
    topology : str or Path, optional
        Topology file; required for trajectories without one (DCD, XTC, H5MD, LAMMPS dump).
    energies : str or Path, optional
        Energy file (mlffd ``energies.csv``, OpenMM StateDataReporter CSV, LAMMPS log). By default
        the trajectory's H5MD observables, else a file found next to the trajectory.

    Raises
    ------
    TrajectoryError
        Missing files, a topology whose atom count differs from the trajectory's, a corrupt file.
    """
    path = Path(path)
    settings, summary = {}, {}
    if path.is_dir():
        trajectory = path / "trajectory.h5md"
        topology = Path(topology) if topology else path / "topology.pdb"
        settings, summary = _read_json(path / "settings.json"), _read_json(path / "summary.json")
        for required in (trajectory, topology):
            if not required.is_file():
                raise TrajectoryError(f"{path} is not a complete run directory: {required.name} is missing")
    else:
        trajectory = path
        if not trajectory.is_file():
            raise TrajectoryError(f"trajectory {trajectory} does not exist")
        topology = Path(topology) if topology else None
        if topology is None and trajectory.suffix.lower() not in SELF_CONTAINED:
            raise TrajectoryError(f"{trajectory.name} carries no topology; pass one with --top (PDB, PSF, GRO, data file)")
        if topology is not None and not topology.is_file():
            raise TrajectoryError(f"topology {topology} does not exist")
    series = read_energies(energies) if energies is not None else None
    if series is None and not _is_h5md(trajectory):
        found = find_energy_file(trajectory)
        series = read_energies(found) if found else None
    universe = _universe(topology, trajectory, series)
    if len(universe.trajectory) == 0:
        raise TrajectoryError(f"{trajectory} holds no frames")
    _ensure_elements(universe)
    run = Run(universe, trajectory, topology, series, settings, summary)
    if run.energies is None and run.has_energy_observables:
        _check_observable_units(universe)
    elif run.energies is None and find_energy_file(trajectory):
        run.energies = read_energies(find_energy_file(trajectory))
    return run


def _is_h5md(path: Path) -> bool:
    return path.suffix.lower() in (".h5md", ".h5")


#: LAMMPS data-file atom styles tried in turn (MDAnalysis needs to be told the column layout).
LAMMPS_ATOM_STYLES = (None, "id type x y z", "id resid type q x y z", "id resid type x y z", "id type q x y z")


def _universe(topology: Optional[Path], trajectory: Path, series: Optional[EnergySeries]):
    """An MDAnalysis Universe, with the extra arguments LAMMPS data files and dumps need."""
    import MDAnalysis as mda

    kwargs: Dict = {}
    if trajectory.suffix.lower() in (".dump", ".lammpstrj"):
        if series is None or series.timestep_ps is None:
            raise TrajectoryError(f"{trajectory.name} is a LAMMPS dump: pass its LAMMPS log with --energies (it gives the time step)")
        kwargs = {"format": "LAMMPSDUMP", "dt": series.timestep_ps}
    styles = LAMMPS_ATOM_STYLES if topology is not None and topology.suffix.lower() in (".data", ".lmp") else (None,)
    message = ""
    for style in styles:
        extra = {**kwargs, "atom_style": style} if style else kwargs
        try:
            return mda.Universe(str(topology), str(trajectory), **extra) if topology else mda.Universe(str(trajectory), **extra)
        except Exception as exc:  # MDAnalysis raises ValueError, OSError, KeyError, EOFError... for bad files
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    where = f"cannot read {trajectory}" + (f" with topology {topology}" if topology else "")
    raise TrajectoryError(f"{where}: {message}")


def _ensure_elements(universe) -> None:
    """Give the universe element symbols: guessed from atom names, or from masses (LAMMPS types are numbers)."""
    def complete():
        return hasattr(universe.atoms, "elements") and all(str(e).strip().capitalize() in ASE_NUMBERS for e in universe.atoms.elements)

    if not complete():
        try:
            universe.guess_TopologyAttrs(to_guess=["elements"], force_guess=["elements"])
        except Exception:  # the guesser gives up on names such as LAMMPS's numeric types
            pass
    if not complete() and hasattr(universe.atoms, "masses") and np.all(universe.atoms.masses > 0):
        from ase.data import atomic_masses, chemical_symbols

        nearest = np.abs(universe.atoms.masses[:, None] - atomic_masses[None, 1:]).argmin(axis=1) + 1
        universe.add_TopologyAttr("elements", [chemical_symbols[z] for z in nearest])


def _check_observable_units(universe) -> None:
    """Energies in H5MD observables must be in eV (the unit attribute says so) or kJ/mol (converted on read)."""
    handle = getattr(universe.trajectory, "_file", None)
    if handle is None:
        return
    for key in ENERGY_OBSERVABLES:
        unit = handle[f"observables/{key}/value"].attrs.get("unit", "eV")
        unit = unit.decode() if isinstance(unit, bytes) else str(unit)
        if unit not in ("eV", "kJ mol-1"):
            raise TrajectoryError(f"observables/{key} is in '{unit}'; expected eV or kJ mol-1")


def observable_scale(universe, key: str) -> float:
    """Divide an H5MD energy observable by this to get eV (1 for eV, 96.485 for kJ/mol)."""
    handle = getattr(universe.trajectory, "_file", None)
    if handle is None or f"observables/{key}/value" not in handle:
        return 1.0
    unit = handle[f"observables/{key}/value"].attrs.get("unit", "eV")
    unit = unit.decode() if isinstance(unit, bytes) else str(unit)
    return EV_TO_KJ_PER_MOL if unit == "kJ mol-1" else 1.0


def atomic_numbers(atomgroup) -> np.ndarray:
    """Atomic numbers of an AtomGroup's elements (guessed from names when the topology lacks them)."""
    try:
        return np.array([ASE_NUMBERS[str(e).strip().capitalize()] for e in atomgroup.elements], dtype=int)
    except KeyError as exc:
        raise TrajectoryError(f"atom element {exc} is not a chemical element; fix the topology's element column") from None


def frame_box(ts) -> Optional[np.ndarray]:
    """The frame's box as MDAnalysis dimensions (Å, degrees), or None for a molecule in vacuum."""
    dims = ts.dimensions
    return dims if dims is not None and np.all(np.asarray(dims[:3]) > 0) else None


def frame_atoms(atomgroup, numbers: np.ndarray) -> Atoms:
    """The current frame of an AtomGroup as ASE Atoms (Å), periodic when the frame has a box."""
    from MDAnalysis.lib.mdamath import triclinic_vectors

    dims = frame_box(atomgroup.universe.trajectory.ts)
    positions = atomgroup.positions.astype(np.float64)
    if dims is None:
        return Atoms(numbers=numbers, positions=positions)
    return Atoms(numbers=numbers, positions=positions, cell=triclinic_vectors(dims).astype(np.float64), pbc=True)


def audit_records(universe) -> Optional[Dict[str, np.ndarray]]:
    """Force-audit records written by ``mlffd md --audit-every``: time (ps) and force RMSE (eV/Å).

    Returns None when the trajectory holds no ``observables/audit_force_rmse``.
    """
    handle = getattr(universe.trajectory, "_file", None)
    if handle is None or "observables/audit_force_rmse/value" not in handle:
        return None
    group = handle["observables/audit_force_rmse"]
    values = np.asarray(group["value"][:], dtype=float)
    if "time" in group and np.ndim(group["time"]) == 1:
        times = np.asarray(group["time"][:], dtype=float)
    else:
        times = np.array([ts.time for ts in universe.trajectory], dtype=float)[: len(values)]
    keep = np.isfinite(values)
    if not keep.any():
        return None
    return {"time_ps": times[keep], "rmse_eV_per_A": values[keep]}
