"""The settings of an MD run (:class:`MDSettings`, written to the run directory's ``settings.json``)."""

import math
from dataclasses import dataclass

from ...errors import SimulationError


@dataclass
class MDSettings:
    """Everything that defines a run (written to ``settings.json``).

    Attributes
    ----------
    structure : str
        Structure file (PDB, XYZ, SDF, ...) or SMILES.
    model : str
        Student checkpoint or OpenMM export.
    ensemble : str
        ``"nve"`` (VerletIntegrator) or ``"nvt"`` (LangevinMiddleIntegrator).
    temperature : float
        Initial (Maxwell-Boltzmann) and bath temperature (NVT and the warm-up) in K.
    timestep : float
        Time step in fs.
    time : float
        Production time in ps, after the warm-up (a restart continues up to it).
    equilibrate : float
        Langevin (NVT) warm-up in ps at ``temperature`` with ``friction``, before the production;
        the trajectory's time axis runs from 0 to ``equilibrate + time``.
    report_interval : int
        Steps between frames written to the trajectory and CSV.
    checkpoint_interval : int
        Steps between OpenMM checkpoints (a multiple of ``report_interval``).
    friction : float
        Langevin friction in 1/ps (NVT and the warm-up).
    platform : str
        ``"auto"``, ``"CUDA"``, ``"OpenCL"``, ``"CPU"`` or ``"Reference"``.
    precision : str
        ``"single"``, ``"mixed"`` or ``"double"``; a checkpoint-built student computes in float64
        for ``"double"`` and float32 otherwise (an export keeps its own precision).
    cuda_graphs : bool
        Capture the model in CUDA graphs (CUDA platform).
    kernel : str
        How a checkpoint-built student computes on CPU: ``"auto"`` (the fused C++ kernel where it
        compiles), ``"fused"`` or ``"portable"`` (an export keeps the kernel it was written with).
    minimize : bool
        Minimise the energy before the first step.
    seed : int
        Seed of the initial velocities and of the Langevin noise.
    temperature_limit : float
        Stop when the temperature exceeds this, in K.
    remove_cm_motion : bool
        Remove centre-of-mass motion every step (CMMotionRemover).
    audit_every : int
        Steps between teacher audits (0: no audit; a multiple of ``report_interval``).
    teacher : str, optional
        Teacher name for audits (see :func:`mlff_distiller.teachers.load_teacher`).
    audit_max_rmse : float, optional
        Stop when the audited force RMSE exceeds this, in eV/Å.
    """

    structure: str
    model: str
    ensemble: str = "nve"
    temperature: float = 300.0
    timestep: float = 0.5
    time: float = 10.0
    equilibrate: float = 0.0
    report_interval: int = 100
    checkpoint_interval: int = 1000
    friction: float = 1.0
    platform: str = "auto"
    precision: str = "mixed"
    cuda_graphs: bool = False
    kernel: str = "auto"
    minimize: bool = False
    seed: int = 0
    temperature_limit: float = 10000.0
    remove_cm_motion: bool = True
    audit_every: int = 0
    teacher: str | None = None
    audit_max_rmse: float | None = None

    @property
    def steps(self) -> int:
        """Total number of steps of the run, warm-up and production."""
        return int(round((self.equilibrate + self.time) * 1000.0 / self.timestep))

    @property
    def equilibration_steps(self) -> int:
        """Number of warm-up steps: the step at which the production starts."""
        return int(round(self.equilibrate * 1000.0 / self.timestep))

    @property
    def production_start_ps(self) -> float:
        """Time at which the production starts, in ps (``equilibrate``)."""
        return float(self.equilibrate)

    def check(self) -> None:
        """Raise :class:`SimulationError` for inconsistent settings."""
        problems = []
        if self.ensemble not in ("nve", "nvt"):
            problems.append(f"ensemble must be nve or nvt, not '{self.ensemble}'")
        for name in ("timestep", "time", "temperature_limit"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be positive")
        if not (math.isfinite(self.equilibrate) and self.equilibrate >= 0):
            problems.append("equilibrate must be a finite time, zero or more ps")
        if self.temperature < 0:
            problems.append("temperature must not be negative")
        if self.seed < 0:
            problems.append("the seed must not be negative")
        if self.kernel not in ("auto", "fused", "portable"):
            problems.append(f"kernel must be auto, fused or portable, not '{self.kernel}'")
        if self.report_interval < 1 or self.checkpoint_interval < 1:
            problems.append("report and checkpoint intervals must be at least 1 step")
        elif self.checkpoint_interval % self.report_interval:
            problems.append("the checkpoint interval must be a multiple of the report interval")
        if self.audit_every:
            if not self.teacher:
                problems.append("auditing needs a teacher (--teacher)")
            if self.audit_every % self.report_interval:
                problems.append("the audit interval must be a multiple of the report interval")
        if problems:
            raise SimulationError("; ".join(problems))
