"""Exploration: short Langevin runs of the student in OpenMM (:class:`~mlff_distiller.plugin.openmm.MDRun`),
read back as candidate frames.

A trajectory that explodes stops early and keeps its frames up to the stop: the frames before an
explosion are where the student fails, the ones a round should label.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from ase import Atoms

from ..inputs import MAX_SEED
from ..units import NM_TO_ANGSTROM
from .refine_settings import RefineSettings
from .refine_signals import Interrupted

#: Stop reasons of a run cut short by a signal: such a run is explored again on resume.
SIGNAL_STOPS = {"interrupted": 2, "terminated": 15}


@dataclass
class Explored:
    """The candidate frames of one round (every written frame after the first of each trajectory).

    Attributes
    ----------
    atoms : list of ase.Atoms
        Configurations, positions in Å.
    trajectory : ndarray (F,) int
        Index into ``names`` of each frame's trajectory; frames of a trajectory are in time order.
    step : ndarray (F,) int
        MD step of each frame.
    time_ps : ndarray (F,)
        Simulated time of each frame, ps.
    temperature : ndarray (F,)
        Exploration temperature of each frame's trajectory, K.
    names : list of str
        Trajectory names (``s<structure>-<T>K-<n>``, the run folders).
    stops : dict
        Stop reason of each trajectory (``completed``, ``temperature limit``, ...).
    """

    atoms: list[Atoms] = field(default_factory=list)
    trajectory: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    step: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    time_ps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    temperature: np.ndarray = field(default_factory=lambda: np.zeros(0))
    names: list[str] = field(default_factory=list)
    stops: dict[str, str] = field(default_factory=dict)


def explore(structures: list[Path], model: Path, settings: RefineSettings, round_index: int, folder: Path) -> Explored:
    """Run (or, after an interruption, finish) every exploration of a round and read its frames.

    Parameters
    ----------
    structures : list of Path
        Starting structures (files); structure ``i`` names its trajectories ``s<i>-...``.
    model : Path
        The student that drives the MD (checkpoint).
    settings : RefineSettings
    round_index : int
        Round number, part of each trajectory's seed.
    folder : Path
        The round's MD folder; one run folder per trajectory. A run that ended (not by a signal)
        is read as it is.

    Raises
    ------
    Interrupted
        When SIGINT or SIGTERM stopped a run (its folder is explored again on resume).
    """
    from ..plugin.openmm import MDRun, MDSettings

    found = Explored()
    for i, structure in enumerate(structures):
        for t, temperature in enumerate(settings.temperatures):
            for j in range(settings.trajectories):
                name = f"s{i}-{temperature:g}K-{j}"
                run_dir = folder / name
                summary = _summary(run_dir)
                if summary is None or summary.get("stop_reason") in SIGNAL_STOPS:
                    seed = int(np.random.SeedSequence([settings.seed, round_index, i, t, j]).generate_state(1)[0])
                    md = MDSettings(
                        structure=str(structure),
                        model=str(model),
                        ensemble="nvt",
                        temperature=float(temperature),
                        timestep=settings.timestep_fs,
                        time=settings.time_ps,
                        report_interval=settings.frame_interval,
                        checkpoint_interval=settings.frame_interval * -(-settings.steps // settings.frame_interval),
                        temperature_limit=settings.temperature_limit,
                        seed=seed % MAX_SEED,
                    )
                    result = MDRun(md, run_dir, overwrite=True).run(progress=False)
                    if result.stop_reason in SIGNAL_STOPS:
                        raise Interrupted(SIGNAL_STOPS[result.stop_reason], f"while exploring {name}")
                    summary = _summary(run_dir)
                found.stops[name] = summary.get("stop_reason", "unknown")
                _read(run_dir / "trajectory.h5md", structure, len(found.names), float(temperature), found)
                found.names.append(name)
    return found


def _summary(run_dir: Path) -> dict | None:
    path = run_dir / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _read(path: Path, structure: Path, index: int, temperature: float, found: Explored) -> None:
    """Append the frames after the first of one trajectory to ``found``."""
    from ase.io import read

    template = read(str(structure))
    with h5py.File(path, "r") as handle:
        particles = handle["particles/system"]
        positions = particles["position/value"][1:].astype(np.float64) * NM_TO_ANGSTROM
        steps = particles["position/step"][1:]
        times = particles["position/time"][1:]
        boxes = particles["box/edges/value"][1:] * NM_TO_ANGSTROM if "edges" in particles["box"] else None
    for k in range(len(positions)):
        atoms = Atoms(numbers=template.numbers, positions=positions[k], pbc=template.pbc)
        if boxes is not None:
            atoms.cell = boxes[k]
        found.atoms.append(atoms)
    count = len(positions)
    found.trajectory = np.concatenate([found.trajectory, np.full(count, index, dtype=np.int64)])
    found.step = np.concatenate([found.step, steps.astype(np.int64)])
    found.time_ps = np.concatenate([found.time_ps, times.astype(np.float64)])
    found.temperature = np.concatenate([found.temperature, np.full(count, temperature)])
