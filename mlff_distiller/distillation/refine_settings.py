"""The settings of an active-distillation run (:class:`RefineSettings`, written to the run's ``state.json``)."""

import os
from dataclasses import dataclass, field

from .. import inputs
from ..errors import InvalidValueError
from ..inputs import (
    COUNT,
    FORCE_EV_PER_A,
    FRACTION,
    INTERVAL_STEPS,
    LEARNING_RATE,
    MINUTES,
    POSITIVE_TEMPERATURE_K,
    SEED,
    STEPS,
    TIME_PS,
    TIMESTEP_FS,
)
from ..models import PRESETS

#: How candidate frames are scored: the committee's force deviation, or the teacher's force error.
SELECTIONS = ("committee", "teacher")
#: Settings that may change when a run is resumed (budgets and stopping targets); the others may not.
RESUMABLE_CHANGES = ("rounds", "time_limit_minutes", "target_uncertain", "target_force_rmse", "workers")


def available_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class RefineSettings:
    """How :func:`~mlff_distiller.distillation.refine.refine` explores, selects, labels and retrains.

    Attributes
    ----------
    teacher : str
        Teacher name (see :func:`~mlff_distiller.teachers.load_teacher`); ``gfn2-xtb`` runs one thread per worker.
    rounds : int
        Largest number of explore-select-label-retrain rounds.
    temperatures : list of float
        Exploration temperatures in K (Langevin NVT).
    trajectories : int
        Trajectories per structure and temperature, each from its own seed.
    time_ps : float
        Length of each exploration trajectory in ps.
    timestep_fs : float
        Exploration time step in fs.
    frame_interval : int
        Steps between the candidate frames written by each trajectory.
    temperature_limit : float
        An exploration stops (keeping its frames) above this temperature, in K.
    select : str
        ``"committee"`` (force deviation of the committee) or ``"teacher"`` (the teacher's force
        error on every explored frame: for a cheap teacher).
    committee_size : int
        Students in the committee (K >= 2 for ``select="committee"``; 1 is enough for ``"teacher"``).
    trust_low, trust_high : float
        The trust window in eV/Å: a frame whose score (largest per-atom force deviation or error)
        lies in [trust_low, trust_high) is a candidate; below, the model knows it; above, it is
        taken as unphysical (an exploded configuration) and never labelled.
    per_trajectory : int
        Most frames selected from one trajectory in one round.
    spacing : int
        Selected frames of one trajectory lie at least this many written frames apart.
    frames_per_round : int
        Most frames labelled for training per round.
    heldout_per_round : int
        Explored frames (score below ``trust_high``) labelled each round and never trained on: the
        error of the model on fresh MD frames.
    workers : int
        Teacher processes labelling in parallel (one thread each).
    size : str
        Student size when the committee is trained from the data alone (no ``model``).
    train_minutes : float, optional
        Wall-clock budget of each member's training per round, in minutes. None (the default):
        ``epochs`` alone decide, so that a run, resumed or not, gives the same students on any machine.
    epochs : int
        Most epochs of each member's training per round.
    lr : float
        Initial learning rate of the fine-tuning (AdamW).
    batch_size : int
        Frames per optimisation step.
    target_uncertain : float
        Stop when the share of explored frames with a score at or above ``trust_low`` is at most this ...
    target_force_rmse : float
        ... and the held-out force RMSE (eV/Å) is at most this.
    time_limit_minutes : float, optional
        Wall-clock budget of the whole run in minutes; checked between stages.
    seed : int
        Seed of the exploration, the committee and the held-out draw.
    """

    teacher: str = "gfn2-xtb"
    rounds: int = 5
    temperatures: list[float] = field(default_factory=lambda: [300.0, 450.0, 600.0])
    trajectories: int = 2
    time_ps: float = 2.0
    timestep_fs: float = 0.5
    frame_interval: int = 20
    temperature_limit: float = 5000.0
    select: str = "committee"
    committee_size: int = 4
    trust_low: float = 0.05
    trust_high: float = 0.5
    per_trajectory: int = 5
    spacing: int = 5
    frames_per_round: int = 50
    heldout_per_round: int = 10
    workers: int = field(default_factory=available_cores)
    size: str = "tiny"
    train_minutes: float | None = None
    epochs: int = 200
    lr: float = 5e-4
    batch_size: int = 16
    target_uncertain: float = 0.05
    target_force_rmse: float = 0.05
    time_limit_minutes: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        self.check()

    @property
    def members(self) -> int:
        """Students trained each round: the committee, or the driving student alone for teacher selection."""
        return self.committee_size if self.select == "committee" else 1

    @property
    def steps(self) -> int:
        """MD steps of each exploration trajectory."""
        return int(round(self.time_ps * 1000.0 / self.timestep_fs))

    def check(self) -> None:
        """Raise :class:`~mlff_distiller.errors.InvalidValueError` naming every value out of range.

        Numbers follow their quantity's rule of :mod:`mlff_distiller.inputs`; the trust window must
        be increasing, a committee needs two members, and a trajectory must write a frame after its first.
        """
        temperatures = self.temperatures if isinstance(self.temperatures, (list, tuple)) else []
        checks = [
            (COUNT, self.rounds, "rounds"),
            (COUNT, self.trajectories, "trajectories"),
            (TIME_PS, self.time_ps, "time_ps"),
            (TIMESTEP_FS, self.timestep_fs, "timestep_fs"),
            (INTERVAL_STEPS, self.frame_interval, "frame_interval"),
            (POSITIVE_TEMPERATURE_K, self.temperature_limit, "temperature_limit"),
            (COUNT, self.committee_size, "committee_size"),
            (FORCE_EV_PER_A, self.trust_low, "trust_low"),
            (FORCE_EV_PER_A, self.trust_high, "trust_high"),
            (COUNT, self.per_trajectory, "per_trajectory"),
            (COUNT, self.spacing, "spacing"),
            (COUNT, self.frames_per_round, "frames_per_round"),
            (STEPS, self.heldout_per_round, "heldout_per_round"),
            (COUNT, self.workers, "workers"),
            (COUNT, self.epochs, "epochs"),
            (LEARNING_RATE, self.lr, "lr"),
            (COUNT, self.batch_size, "batch_size"),
            (FRACTION, self.target_uncertain, "target_uncertain"),
            (FORCE_EV_PER_A, self.target_force_rmse, "target_force_rmse"),
            (SEED, self.seed, "seed"),
        ] + [(POSITIVE_TEMPERATURE_K, t, f"temperatures[{i}]") for i, t in enumerate(temperatures)]
        for name in ("train_minutes", "time_limit_minutes"):
            if getattr(self, name) is not None:
                checks.append((MINUTES, getattr(self, name), name))
        found = inputs.problems(checks)
        if not temperatures:
            found.append(f"temperatures must be a non-empty list of temperatures in K, not {self.temperatures!r}")
        if self.select not in SELECTIONS:
            found.append(f"select must be one of {', '.join(SELECTIONS)}, not {self.select!r}")
        if self.size not in PRESETS:
            found.append(f"size must be one of {', '.join(PRESETS)}, not {self.size!r}")
        if not found:
            if self.trust_low >= self.trust_high:
                found.append(f"the trust window [{self.trust_low:g}, {self.trust_high:g}) eV/Å is empty; give LO < HI")
            if self.select == "committee" and self.committee_size < 2:
                found.append("a committee needs at least two students (committee_size >= 2), or select 'teacher'")
            if self.frame_interval > self.steps:
                found.append(
                    f"frame_interval = {self.frame_interval} steps is longer than an exploration "
                    f"({self.steps} steps of {self.timestep_fs:g} fs): no frame would be explored"
                )
            if any(t >= self.temperature_limit for t in temperatures):
                found.append(f"temperature_limit = {self.temperature_limit:g} K must be above every temperature")
        if found:
            raise InvalidValueError("; ".join(found))
