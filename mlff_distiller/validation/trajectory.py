"""Open an MD run (our run directory or any trajectory MDAnalysis reads) for validation."""

import contextlib
import gc
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers as ASE_NUMBERS

from ..errors import TrajectoryError, first_line
from ..units import LAMMPS_UNITS, energy_to_eV
from .ase_reader import ASE_SUFFIXES, ase_universe
from .energies import EnergySeries, find_energy_file, read_energies

#: Trajectory formats that carry their own topology.
SELF_CONTAINED = {".pdb", ".gro", ".pqr", ".mol2"} | ASE_SUFFIXES
#: LAMMPS dump suffixes.
LAMMPS_DUMP_SUFFIXES = {".dump", ".lammpstrj"}
#: Units of forces as MDAnalysis returns them from readers that convert (H5MD with unit attributes, TRR).
MDANALYSIS_FORCE_UNIT = "kJ/(mol·Å)"
#: H5MD observables that EnergyDrift reads per frame (eV).
ENERGY_OBSERVABLES = ("potential_energy", "kinetic_energy")


@dataclass
class Run:
    """An MD run opened for validation.

    Attributes
    ----------
    universe : MDAnalysis.Universe
        Topology and trajectory; lengths in Å, forces in ``force_unit``.
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
    force_unit : str or None
        Unit of the forces the universe returns (a key of :data:`mlff_distiller.units.FORCE_UNITS`);
        None when the trajectory stores no forces.
    """

    universe: object
    trajectory: Path
    topology: Path | None
    energies: EnergySeries | None
    settings: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    force_unit: str | None = None

    @property
    def has_forces(self) -> bool:
        """Whether the trajectory stores forces."""
        return bool(self.universe.trajectory.ts.has_forces)

    @property
    def requested_time_ps(self) -> float | None:
        """Simulation time the run was asked for, in ps, from ``settings.json`` (None when unknown)."""
        if self.settings.get("time") is not None:  # mlffd md's settings.json: "time" in ps
            return float(self.settings["time"])
        steps = _first(self.settings, "steps", "requested_steps")
        dt_fs = _first(self.settings, "timestep", "time_step_fs")
        if steps is None or dt_fs is None:
            return None
        return float(steps) * float(dt_fs) * 1e-3

    @property
    def model_path(self) -> Path | None:
        """The student model the run used, from ``settings.json`` (None when unknown or missing)."""
        model = self.settings.get("model")
        path = model.get("path") if isinstance(model, dict) else model
        return Path(path) if path and Path(path).is_file() else None

    @property
    def has_energy_observables(self) -> bool:
        """Whether the trajectory stores energies per frame (H5MD observables)."""
        data = self.universe.trajectory.ts.data
        return all(key in data for key in ENERGY_OBSERVABLES)


def _first(mapping: dict, *keys):
    for key in keys:
        if mapping.get(key) is not None:
            return mapping[key]
    return None


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TrajectoryError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise TrajectoryError(f"{path} holds a JSON {type(data).__name__}, not an object")
    return data


def open_run(
    path: str | Path,
    topology: str | Path | None = None,
    energies: str | Path | None = None,
    units: str | None = None,
    frame_interval_ps: float | None = None,
) -> Run:
    """Open a run directory written by ``mlffd md``, or a trajectory file, for validation.

    The units of every number come from the source: H5MD unit attributes; the LAMMPS log's
    ``units`` line (or ``units``) for a LAMMPS dump; eV and eV/Å for ASE files; kJ/mol for
    OpenMM's CSV. A trajectory whose units cannot be known is refused.

    Parameters
    ----------
    path : str or Path
        A run directory (``topology.pdb`` + ``trajectory.h5md``), an ASE ``.traj`` or extended
        XYZ file, or any trajectory MDAnalysis reads (DCD, XTC, H5MD, LAMMPS dump, ...).
    topology : str or Path, optional
        Topology file; required for trajectories without one (DCD, XTC, H5MD, LAMMPS dump).
    energies : str or Path, optional
        Energy file (mlffd ``energies.csv``, OpenMM StateDataReporter CSV, LAMMPS log, ASE MD
        log). By default the trajectory's own energies (H5MD observables, ASE frames), else a
        file found next to the trajectory.
    units : str, optional
        LAMMPS unit style (``metal`` or ``real``) of a LAMMPS dump whose log does not say.
    frame_interval_ps : float, optional
        Time between the frames of an ASE trajectory, in ps (ASE stores none).

    Raises
    ------
    TrajectoryError
        Missing files, a topology whose atom count differs from the trajectory's, a corrupt
        file, units that cannot be known.
    """
    if units is not None and units not in LAMMPS_UNITS:
        raise TrajectoryError(f"--units must be one of {', '.join(LAMMPS_UNITS)}, not '{units}'")
    if frame_interval_ps is not None and not (np.isfinite(frame_interval_ps) and frame_interval_ps > 0):
        raise TrajectoryError(f"--frame-interval must be a positive number of ps, not {frame_interval_ps}")
    path = Path(path)
    settings, summary = {}, {}
    if path.is_dir():
        trajectory = path / "trajectory.h5md"
        topology = Path(topology) if topology else path / "topology.pdb"
        for name in ("settings.json", "summary.json", "energies.csv"):  # present but emptied: a damaged run
            if (path / name).is_file() and (path / name).stat().st_size == 0:
                raise TrajectoryError(f"{path / name} is empty (0 bytes): the run directory is damaged")
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
            raise TrajectoryError(
                f"{trajectory.name} carries no topology; pass one with --top (PDB, PSF, GRO, data file)"
            )
        if topology is not None and not topology.is_file():
            raise TrajectoryError(f"topology {topology} does not exist")
    series = read_energies(_not_empty(energies), units) if energies is not None else None
    if series is None and not _is_h5md(trajectory):
        found = find_energy_file(trajectory)
        series = read_energies(_not_empty(found), units) if found else None
    if trajectory.suffix.lower() in ASE_SUFFIXES and topology is None:
        universe, own = ase_universe(trajectory, frame_interval_ps, series)
        series, force_unit = own if own is not None else series, "eV/Å"
    else:
        universe = _universe(topology, trajectory, series, frame_interval_ps)
        force_unit = _force_unit(universe, trajectory, series, units)
    if len(universe.trajectory) == 0:
        raise TrajectoryError(f"{trajectory} holds no frames")
    _ensure_elements(universe)
    run = Run(
        universe,
        trajectory,
        topology,
        series,
        settings,
        summary,
        force_unit=force_unit if universe.trajectory.ts.has_forces else None,
    )
    if run.energies is None and run.has_energy_observables:
        _check_observable_units(universe)
    return run


def _not_empty(path: str | Path) -> Path:
    """``path``, refused when it is a file of 0 bytes (read as 'no energies' otherwise)."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise TrajectoryError(f"{path} is empty (0 bytes)")
    return path


def _force_unit(universe, trajectory: Path, series: EnergySeries | None, units: str | None) -> str | None:
    """Unit of the forces an MDAnalysis reader returns, from the file's own statement of it."""
    if not universe.trajectory.ts.has_forces:
        return None
    suffix = trajectory.suffix.lower()
    if suffix in LAMMPS_DUMP_SUFFIXES:
        style = series.lammps_units if series is not None and series.lammps_units else units
        if style is None:
            raise TrajectoryError(
                f"{trajectory.name} is a LAMMPS dump without a log stating its units; pass --units metal or --units real"
            )
        return LAMMPS_UNITS[style]["force"]
    try:
        return reader_force_unit(universe.trajectory)
    except TrajectoryError:
        raise TrajectoryError(f"{trajectory.name}: the file does not state the units of its forces") from None


def reader_force_unit(reader) -> str:
    """Unit of the forces an MDAnalysis trajectory reader returns, where the reader itself states it.

    Readers that convert to MDAnalysis's units (H5MD with unit attributes, TRR) give kJ/(mol·Å).
    Others (a LAMMPS dump, an in-memory trajectory) return forces as stored, in units only the
    source knows: :func:`open_run` finds those; here they are an error.
    """
    name = type(reader).__name__
    if name == "H5MDReader":
        handle = reader._file
        group = handle["particles"][next(iter(handle["particles"]))]
        if "force" in group and group["force/value"].attrs.get("unit") is not None and reader.convert_units:
            return MDANALYSIS_FORCE_UNIT
    elif name == "TRRReader" and reader.convert_units:
        return MDANALYSIS_FORCE_UNIT
    raise TrajectoryError(
        f"the units of the forces stored in this {name} trajectory are not stated by the file; "
        "pass force_unit (eV/Å, kJ/(mol·Å), kJ/(mol·nm) or kcal/(mol·Å))"
    )


def _is_h5md(path: Path) -> bool:
    return path.suffix.lower() in (".h5md", ".h5")


#: LAMMPS data-file atom styles tried in turn (MDAnalysis needs to be told the column layout).
LAMMPS_ATOM_STYLES = (None, "id type x y z", "id resid type q x y z", "id resid type x y z", "id type q x y z")


def _universe(topology: Path | None, trajectory: Path, series: EnergySeries | None, frame_interval_ps: float | None):
    """An MDAnalysis Universe, with the extra arguments LAMMPS data files and dumps need."""
    import MDAnalysis as mda

    for path in (topology, trajectory):
        if path is not None and path.stat().st_size == 0:
            raise TrajectoryError(f"{path} is empty (0 bytes)")
    kwargs: dict = {}
    if trajectory.suffix.lower() in LAMMPS_DUMP_SUFFIXES:
        kwargs = {"format": "LAMMPSDUMP", "dt": _dump_timestep_ps(trajectory, series, frame_interval_ps)}
    styles = LAMMPS_ATOM_STYLES if topology is not None and topology.suffix.lower() in (".data", ".lmp") else (None,)
    message = ""
    for style in styles:
        extra = {**kwargs, "atom_style": style} if style else kwargs
        with half_built_readers_quiet():
            try:
                return (
                    mda.Universe(str(topology), str(trajectory), **extra)
                    if topology
                    else mda.Universe(str(trajectory), **extra)
                )
            except Exception as exc:  # MDAnalysis raises ValueError, OSError, KeyError, EOFError... for bad files
                message = first_line(exc)
    where = f"cannot read {trajectory}" + (f" with topology {topology}" if topology else "")
    raise TrajectoryError(f"{where}: {message}")


@contextlib.contextmanager
def half_built_readers_quiet() -> Iterator[None]:
    """Open MDAnalysis files inside this: a reader that failed half-way is collected here, silently.

    A reader whose ``__init__`` raised (a corrupt DCD, XTC, TRR or H5MD file) is garbage-collected
    later, and its ``__del__`` calls ``close()`` on a file handle it never made; Python then prints
    "Exception ignored in ... AttributeError" with a traceback above the one-line error. Inside
    this block, such unraisable errors from MDAnalysis objects are dropped, and the half-built
    readers are collected before it ends. Anything else unraisable is reported as usual.
    """
    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        owner = getattr(unraisable.object, "__module__", "") or type(unraisable.object).__module__
        if not str(owner).startswith("MDAnalysis"):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        gc.collect()
        sys.unraisablehook = previous


def _dump_timestep_ps(dump: Path, series: EnergySeries | None, frame_interval_ps: float | None) -> float:
    """The MD time step of a LAMMPS dump's frames in ps: from its log, or ``frame_interval_ps`` over the steps between frames."""
    if series is not None and series.timestep_ps is not None:
        return series.timestep_ps
    if frame_interval_ps is None:
        raise TrajectoryError(
            f"{dump.name} is a LAMMPS dump: pass its LAMMPS log with --energies (it gives the time step, "
            "units and energies), or --frame-interval PS and --units"
        )
    steps = []
    with open(dump, errors="replace") as handle:
        for line in handle:
            if line.startswith("ITEM: TIMESTEP"):
                steps.append(int(next(handle).split()[0]))
                if len(steps) == 2:
                    break
    stride = steps[1] - steps[0] if len(steps) == 2 and steps[1] > steps[0] else 1
    return float(frame_interval_ps) / stride


def _ensure_elements(universe) -> None:
    """Give the universe element symbols (guessed from atom names, or from masses: LAMMPS types are numbers) and names."""

    def complete():
        return hasattr(universe.atoms, "elements") and all(
            str(e).strip().capitalize() in ASE_NUMBERS for e in universe.atoms.elements
        )

    if not complete():
        try:
            universe.guess_TopologyAttrs(to_guess=["elements"], force_guess=["elements"])
        except Exception:  # the guesser gives up on names such as LAMMPS's numeric types
            pass
    if not complete() and hasattr(universe.atoms, "masses") and np.all(universe.atoms.masses > 0):
        from ase.data import atomic_masses, chemical_symbols

        nearest = np.abs(universe.atoms.masses[:, None] - atomic_masses[None, 1:]).argmin(axis=1) + 1
        universe.add_TopologyAttr("elements", [chemical_symbols[z] for z in nearest])
    if not hasattr(universe.atoms, "names") and complete():  # LAMMPS data files: name atoms for the report, O1, H2, ...
        universe.add_TopologyAttr(
            "names", [f"{str(e).strip().capitalize()}{i + 1}" for i, e in enumerate(universe.atoms.elements)]
        )


def _check_observable_units(universe) -> None:
    """Energies in H5MD observables must be in eV (the unit attribute says so) or kJ/mol (converted on read)."""
    handle = getattr(universe.trajectory, "_file", None)
    if handle is None:
        return
    for key in ENERGY_OBSERVABLES:
        unit = handle[f"observables/{key}/value"].attrs.get("unit", "eV")
        unit = unit.decode() if isinstance(unit, bytes) else str(unit)
        if unit not in H5MD_ENERGY_UNITS:
            raise TrajectoryError(f"observables/{key} is in '{unit}'; expected one of {', '.join(H5MD_ENERGY_UNITS)}")


#: H5MD unit strings of energy observables, with the names of :data:`mlff_distiller.units.ENERGY_UNITS`.
H5MD_ENERGY_UNITS = {"eV": "eV", "kJ mol-1": "kJ/mol", "kcal mol-1": "kcal/mol"}


def observable_scale(universe, key: str) -> float:
    """Multiply an H5MD energy observable by this to get eV (from its unit attribute; eV when it has none)."""
    handle = getattr(universe.trajectory, "_file", None)
    if handle is None or f"observables/{key}/value" not in handle:
        return 1.0
    unit = handle[f"observables/{key}/value"].attrs.get("unit", "eV")
    unit = unit.decode() if isinstance(unit, bytes) else str(unit)
    return energy_to_eV(H5MD_ENERGY_UNITS[unit])


def atomic_numbers(atomgroup) -> np.ndarray:
    """Atomic numbers of an AtomGroup's elements (guessed from names when the topology lacks them)."""
    try:
        return np.array([ASE_NUMBERS[str(e).strip().capitalize()] for e in atomgroup.elements], dtype=int)
    except KeyError as exc:
        raise TrajectoryError(
            f"atom element {exc} is not a chemical element; fix the topology's element column"
        ) from None


def frame_box(ts) -> np.ndarray | None:
    """The frame's box as MDAnalysis dimensions (Å, degrees), or None for a molecule in vacuum."""
    dims = ts.dimensions
    return dims if dims is not None and np.all(np.asarray(dims[:3]) > 0) else None


def frame_atoms(atomgroup, numbers: np.ndarray, whole: bool = False) -> Atoms:
    """The current frame of an AtomGroup as ASE Atoms (Å), periodic when the frame has a box.

    With ``whole=True`` (a selection cut out of a larger system) the atoms are returned in vacuum,
    each placed at its minimum image from the first atom, which keeps a molecule smaller than half
    the box whole.
    """
    from MDAnalysis.lib.distances import minimize_vectors
    from MDAnalysis.lib.mdamath import triclinic_vectors

    dims = frame_box(atomgroup.universe.trajectory.ts)
    positions = atomgroup.positions.astype(np.float64)
    if whole:
        if dims is not None:
            offsets = minimize_vectors((positions - positions[0]).astype(np.float32), dims).astype(np.float64)
            positions = positions[0] + offsets
        return Atoms(numbers=numbers, positions=positions)
    if dims is None:
        return Atoms(numbers=numbers, positions=positions)
    return Atoms(numbers=numbers, positions=positions, cell=triclinic_vectors(dims).astype(np.float64), pbc=True)


def audit_records(universe) -> dict[str, np.ndarray] | None:
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
