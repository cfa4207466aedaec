"""Timed MD steps and the figures derived from them (ms/step, ns/day, µs/atom/step)."""

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

#: Advance an MD run by ``steps`` steps and return the seconds that took (wall clock, or the
#: engine's own loop time where the engine has start-up costs of its own).
Advance = Callable[[int], float]


@dataclass
class Measurement:
    """Speed of one contender on one system, or why it was not measured.

    Attributes
    ----------
    system : str
        Benchmark system name (see :mod:`mlff_distiller.benchmark.systems`).
    atoms : int
        Number of atoms.
    engine : str
        ``"bare"``, ``"openmm"``, ``"ase"``, ``"md"`` (``mlffd md`` with its reporters),
        ``"md-no-reporters"``, ``"lammps"`` or ``"teacher"``.
    model : str
        Student size (``"standard"``, ...) or teacher name (``"gfn2-xtb"``, ...).
    ranks : int
        MPI ranks (LAMMPS; 1 otherwise).
    timestep_fs : float
        MD time step the ns/day figure assumes, fs.
    seconds_per_step : list of float
        Per timed block, seconds per step (empty when not measured).
    steps : int
        MD steps timed in all blocks together.
    status : str
        ``"ok"``, ``"skipped: <reason>"`` or ``"failed: <reason>"``.
    threads : int
        Threads of torch, the fused kernel, OpenMM's CPU platform and the teacher (LAMMPS: 1 per
        rank). Results saved before threads were recorded load with 1.
    flops : float, optional
        Floating-point operations of one step, where counted (the fused kernel's energy and forces:
        :func:`~mlff_distiller.benchmark.flops.step_flops`).
    bound : str, optional
        What bounds the step, where profiled (the fused kernel at the plan's fewest threads:
        :func:`~mlff_distiller.benchmark.flops.bound_summary`).
    reporting_share : list of float
        ``md`` only: per timed block, the share (0 to 1) of its wall time spent outside the
        integrator's steps, i.e. on reporting
        (:attr:`~mlff_distiller.benchmark.reporting.TimedMDRun.last_reporting_seconds` over the
        block's seconds). Empty elsewhere and in results saved before it was recorded.
    """

    system: str
    atoms: int
    engine: str
    model: str
    ranks: int = 1
    timestep_fs: float = 0.5
    seconds_per_step: list[float] = field(default_factory=list)
    steps: int = 0
    status: str = "ok"
    threads: int = 1
    flops: float | None = None
    bound: str | None = None
    reporting_share: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.seconds_per_step)

    @property
    def contender(self) -> str:
        """Engine and model in words, e.g. ``"openmm standard"``, ``"lammps tiny (2 ranks)"`` or
        ``"ase tiny (2 threads)"``; ``md`` and ``md-no-reporters`` read ``"mlffd md tiny"`` and
        ``"mlffd md tiny (no reporters)"``."""
        engine = "mlffd md" if self.engine.startswith("md") else self.engine
        label = f"{engine} {self.model}" + (" (no reporters)" if self.engine == "md-no-reporters" else "")
        label += f" ({self.ranks} ranks)" if self.ranks > 1 else ""
        return label + (f" ({self.threads} threads)" if self.threads > 1 else "")

    @property
    def ms_per_step(self) -> float | None:
        """Median over blocks of the time per step, ms."""
        return 1e3 * statistics.median(self.seconds_per_step) if self.ok else None

    @property
    def ns_per_day(self) -> float | None:
        """Simulated ns per day at :attr:`timestep_fs`."""
        return self.timestep_fs * 1e-6 * 86400.0 / (self.ms_per_step * 1e-3) if self.ok else None

    @property
    def us_per_atom_step(self) -> float | None:
        """Time per step per atom, µs."""
        return 1e3 * self.ms_per_step / self.atoms if self.ok else None

    @property
    def gflops_per_second(self) -> float | None:
        """Achieved GFLOP/s: :attr:`flops` over the median time per step (None where not counted)."""
        return self.flops / (self.ms_per_step * 1e-3) / 1e9 if self.ok and self.flops else None

    @property
    def reporting_percent(self) -> float | None:
        """Median over blocks of :attr:`reporting_share`, % (None where not recorded)."""
        return 100.0 * statistics.median(self.reporting_share) if self.ok and self.reporting_share else None

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(
            ms_per_step=self.ms_per_step,
            ns_per_day=self.ns_per_day,
            us_per_atom_step=self.us_per_atom_step,
            gflops_per_second=self.gflops_per_second,
        )
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Measurement":
        names = cls.__dataclass_fields__
        return cls(**{key: value for key, value in data.items() if key in names})


def steps_for(seconds_per_step: float, block_seconds: float, max_steps: int) -> int:
    """Steps that fill a timed block of ``block_seconds`` (at least 1, at most ``max_steps``)."""
    return max(1, min(max_steps, int(block_seconds / max(seconds_per_step, 1e-9))))
