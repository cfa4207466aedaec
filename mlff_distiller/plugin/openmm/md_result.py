"""How an MD run ended: :class:`MDResult` (also ``summary.json``) and the speed in ns/day."""

import math
from dataclasses import dataclass

from .stops import STOPS


@dataclass
class MDResult:
    """How a run ended (also written to ``summary.json``).

    ``phase``: that of the last step, equilibration or production; ``max_force_deviation_eV_per_A``:
    the largest committee force deviation recorded this session (``--committee``; None without one).
    """

    stop_reason: str
    message: str
    steps_completed: int
    steps_requested: int
    simulated_time_ps: float
    wall_time_s: float
    ns_per_day: float
    final_temperature_K: float
    final_total_energy_eV: float
    max_audit_force_rmse_eV_per_A: float | None = None
    max_force_deviation_eV_per_A: float | None = None
    platform: str = ""
    phase: str = ""

    @property
    def completed(self) -> bool:
        return self.stop_reason == "completed"

    @property
    def exit_code(self) -> int:
        """``mlffd md``'s exit code: 0 completed, 130 interrupted (SIGINT), 143 terminated (SIGTERM), 1 otherwise."""
        codes = {reason: code for reason, code in STOPS.values()}
        return 0 if self.completed else codes.get(self.stop_reason, 1)


def json_number(value) -> float:
    """``json.dumps``'s ``default``: numpy scalars as float."""
    return float(value)


def finite_max(values) -> float | None:
    """Largest finite value, or None when there is none."""
    finite = [v for v in values if math.isfinite(v)]
    return max(finite) if finite else None


def ns_per_day(steps: int, timestep_fs: float, wall_s: float) -> float:
    """Simulated ns per day of wall time for ``steps`` steps of ``timestep_fs`` fs done in ``wall_s`` s."""
    return steps * timestep_fs * 1e-6 / wall_s * 86400.0 if wall_s > 0 else 0.0
