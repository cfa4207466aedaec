"""ASE trajectories (``.traj``, extended XYZ) as MDAnalysis Universes, with their energies and forces.

ASE writes lengths in Å, energies in eV and forces in eV/Å (as MACE, NequIP and ASE's own MD
do); a frame stores no time, so the time between frames comes from an ASE MD log beside the
trajectory or from the caller.
"""

from pathlib import Path

import numpy as np

from ..errors import TrajectoryError, first_line
from ..structures import unknown_symbol
from .energies import EnergySeries

#: Suffixes read with ASE.
ASE_SUFFIXES = {".traj", ".extxyz", ".xyz"}


def read_frames(path: Path) -> list:
    """Every frame of an ASE-readable trajectory, as ase.Atoms (one-line error for a corrupt file)."""
    import ase.io

    if path.is_file() and path.stat().st_size == 0:
        raise TrajectoryError(f"{path} is empty (0 bytes)")
    try:
        frames = ase.io.read(str(path), index=":")
    except Exception as exc:  # ASE raises many kinds of errors for truncated or foreign files
        text = first_line(exc)
        if unknown_symbol(exc) is not None:
            text = f"{unknown_symbol(exc)!r} is not a chemical element"
        raise TrajectoryError(f"cannot read {path} with ASE: {text}") from None
    if not frames:
        raise TrajectoryError(f"{path} holds no frames")
    if len(frames[0]) == 0:
        raise TrajectoryError(f"{path}: its frames hold no atoms")
    if (frames[0].numbers == 0).any():  # ASE's placeholder symbol X
        raise TrajectoryError(f"{path}: atom(s) of element X, ASE's placeholder, which is no chemical element")
    if any(len(atoms) != len(frames[0]) or (atoms.numbers != frames[0].numbers).any() for atoms in frames):
        raise TrajectoryError(f"{path}: the frames do not all hold the same atoms")
    return frames


def _stored(atoms, key: str) -> np.ndarray | None:
    """The energy or forces stored with a frame (its calculator's results), or None."""
    results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
    value = results.get(key)
    if value is None and key == "energy":
        value = atoms.info.get("energy")
    if value is None and key == "forces" and "forces" in atoms.arrays:
        value = atoms.arrays["forces"]
    return None if value is None else np.asarray(value, dtype=np.float64)


def ase_universe(
    path: Path, frame_interval_ps: float | None, log: EnergySeries | None
) -> tuple[object, EnergySeries | None]:
    """An MDAnalysis Universe (in memory) of an ASE trajectory, and its energies when the frames carry them.

    Parameters
    ----------
    path : Path
        ``.traj``, ``.extxyz`` or ``.xyz`` file.
    frame_interval_ps : float, optional
        Time between frames in ps.
    log : EnergySeries, optional
        An ASE MD log of the same run; with one row per frame it gives the frames' times.

    Returns
    -------
    universe, EnergySeries or None
        Positions in Å, forces in eV/Å (when every frame has them); energies in eV when every
        frame stores its potential energy and momenta (otherwise None).

    Raises
    ------
    TrajectoryError
        When the time between frames cannot be known (pass ``--frame-interval``).
    """
    import MDAnalysis as mda
    from MDAnalysis.coordinates.memory import MemoryReader

    frames = read_frames(path)
    times = _frame_times(path, len(frames), frame_interval_ps, log)
    atoms0 = frames[0]
    universe = mda.Universe.empty(len(atoms0), trajectory=False)
    universe.add_TopologyAttr("names", atoms0.get_chemical_symbols())
    universe.add_TopologyAttr("elements", atoms0.get_chemical_symbols())
    universe.add_TopologyAttr("masses", atoms0.get_masses())
    positions = np.array([atoms.positions for atoms in frames], dtype=np.float32)
    forces = [_stored(atoms, "forces") for atoms in frames]
    periodic = bool(atoms0.pbc.all()) and atoms0.cell.rank == 3
    kwargs = {}
    if all(f is not None for f in forces):
        kwargs["forces"] = np.array(forces, dtype=np.float32)
    if periodic:
        kwargs["dimensions"] = np.array([atoms.cell.cellpar() for atoms in frames], dtype=np.float32)
    universe.load_new(positions, format=MemoryReader, dt=_interval(times), **kwargs)
    for ts, time in zip(
        universe.trajectory, times, strict=False
    ):  # MemoryReader times from dt; uneven logs keep theirs
        ts.time = time
    universe.trajectory[0]
    return universe, _frame_energies(path, frames, times)


def _frame_times(path: Path, n_frames: int, frame_interval_ps: float | None, log: EnergySeries | None) -> np.ndarray:
    if frame_interval_ps is not None:
        return np.arange(n_frames) * float(frame_interval_ps)
    if log is not None and len(log) == n_frames:
        return np.asarray(log.time_ps, dtype=float)
    if n_frames == 1:
        return np.zeros(1)
    detail = f" (its log {log.source} has {len(log)} rows for {n_frames} frames)" if log is not None else ""
    raise TrajectoryError(f"{path.name} does not store the time between its frames{detail}; pass --frame-interval PS")


def _interval(times: np.ndarray) -> float:
    return float(times[1] - times[0]) if len(times) > 1 and times[1] > times[0] else 1.0


def _frame_energies(path: Path, frames: list, times: np.ndarray) -> EnergySeries | None:
    """Potential, kinetic and total energy (eV) of each frame, when every frame stores energy and momenta."""
    potential = [_stored(atoms, "energy") for atoms in frames]
    if any(p is None for p in potential) or not all(atoms.has("momenta") for atoms in frames):
        return None
    potential = np.array([float(p) for p in potential])
    kinetic = np.array([atoms.get_kinetic_energy() for atoms in frames])
    return EnergySeries(
        time_ps=np.asarray(times, dtype=float),
        potential_eV=potential,
        kinetic_eV=kinetic,
        total_eV=potential + kinetic,
        temperature_K=None,
        source=f"{path} (ASE frames, eV)",
    )
