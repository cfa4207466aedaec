"""The settings of an MD run (:class:`MDSettings`, written to the run directory's ``settings.json``)."""

import json
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

from ... import inputs
from ...errors import CheckpointError, SimulationError, first_line
from ...inputs import (
    FORCE_EV_PER_A,
    FRICTION_PER_PS,
    INTERVAL_STEPS,
    POSITIVE_TEMPERATURE_K,
    SEED,
    STEPS,
    TEMPERATURE_K,
    THREADS,
    TIME_PS,
    TIMESTEP_FS,
    WARMUP_PS,
)
from ...models.checkpoint import file_sha256


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
    committee : list of str, optional
        Extra student checkpoints that, with ``model``, form a committee whose per-frame maximum
        and mean force deviation (eV/Å) the run records (:mod:`.committee_recorder`).
    threads : int, optional
        CPU threads of the fused kernel and of OpenMM's CPU platform; default
        (:func:`~mlff_distiller.models.kernel.default_threads`): ``OMP_NUM_THREADS`` when set, else
        the cores this process may use. Results equal one thread's up to summation order.
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
    committee: list[str] | None = None
    threads: int | None = None

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
        """Raise :class:`SimulationError` naming every value out of range and every inconsistency.

        Each number follows its quantity's rule of :mod:`mlff_distiller.inputs` (the same rules
        ``mlffd md`` applies to its options); the production must be at least one time step, and a
        warm-up none or at least one.
        """
        checks = [
            (TIMESTEP_FS, self.timestep, "timestep"),
            (TIME_PS, self.time, "time"),
            (WARMUP_PS, self.equilibrate, "equilibrate"),
            (TEMPERATURE_K, self.temperature, "temperature"),
            (FRICTION_PER_PS, self.friction, "friction"),
            (POSITIVE_TEMPERATURE_K, self.temperature_limit, "temperature_limit"),
            (SEED, self.seed, "seed"),
            (INTERVAL_STEPS, self.report_interval, "report_interval"),
            (INTERVAL_STEPS, self.checkpoint_interval, "checkpoint_interval"),
            (STEPS, self.audit_every, "audit_every"),
        ]
        if self.audit_max_rmse is not None:
            checks.append((FORCE_EV_PER_A, self.audit_max_rmse, "audit_max_rmse"))
        if self.threads is not None:
            checks.append((THREADS, self.threads, "threads"))
        problems = inputs.problems(checks)
        if not problems:  # relations between accepted numbers
            problems = self._relations()
        if self.ensemble not in ("nve", "nvt"):
            problems.append(f"ensemble must be nve or nvt, not {self.ensemble!r}")
        if self.kernel not in ("auto", "fused", "portable"):
            problems.append(f"kernel must be auto, fused or portable, not {self.kernel!r}")
        for name in ("structure", "model"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                problems.append(f"{name} must be a path or name, not {getattr(self, name)!r}")
        if self.committee is not None and (
            not isinstance(self.committee, list)
            or not self.committee
            or not all(isinstance(m, str) and m for m in self.committee)
        ):
            problems.append(f"committee must be a list of one or more checkpoint paths, not {self.committee!r}")
        if problems:
            raise SimulationError("; ".join(problems))

    def _relations(self) -> list[str]:
        problems = []
        if self.steps - self.equilibration_steps < 1:
            problems.append(
                f"time = {self.time:g} ps is shorter than one time step ({self.timestep:g} fs): "
                f"the production would make no step"
            )
        if self.equilibrate > 0 and self.equilibration_steps < 1:
            problems.append(
                f"equilibrate = {self.equilibrate:g} ps is shorter than one time step ({self.timestep:g} fs); give 0 for none"
            )
        if self.checkpoint_interval % self.report_interval:
            problems.append("the checkpoint interval must be a multiple of the report interval")
        if self.report_interval > self.steps:
            problems.append(
                f"report_interval = {self.report_interval} steps is longer than the run ({self.steps} steps): "
                "no frame but the first would be written"
            )
        if self.audit_every:
            if not self.teacher:
                problems.append("auditing needs a teacher (--teacher)")
            if self.audit_every % self.report_interval:
                problems.append("the audit interval must be a multiple of the report interval")
            if self.audit_every > self.steps:
                problems.append(
                    f"audit_every = {self.audit_every} steps is longer than the run ({self.steps} steps): no audit would run"
                )
        else:
            for name in ("teacher", "audit_max_rmse"):
                if getattr(self, name) is not None:
                    problems.append(
                        f"{name} is given for audits, but audit_every is 0 (no audits); give both or neither"
                    )
        if self.temperature_limit <= self.temperature:
            problems.append(
                f"temperature_limit = {self.temperature_limit:g} K must be above the temperature ({self.temperature:g} K)"
            )
        return problems

    @classmethod
    def read(cls, path: str | Path) -> tuple["MDSettings", dict]:
        """The settings in a run directory's ``settings.json``, and the file's whole content (a restart's input).

        Not checked (:meth:`check` does that, after a restart sets its new time).

        Raises
        ------
        SimulationError
            In one line, for a file that cannot be read, is not JSON, or is not a run's settings
            (not an object, ``structure`` or ``model`` missing).
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise SimulationError(f"{path} cannot be read as a run's settings ({first_line(exc)})") from None
        if not isinstance(data, dict):
            raise SimulationError(f"{path} holds a JSON {type(data).__name__}, not a run's settings (an object)")
        names = {f.name for f in fields(cls)}
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in data]
        if missing:
            raise SimulationError(f"{path} is not a run's settings: {', '.join(missing)} missing")
        return cls(**{k: v for k, v in data.items() if k in names}), data


def check_restart_trajectory(path: str | Path) -> None:
    """Raise :class:`SimulationError` unless ``path`` is an H5MD trajectory a restart can append to.

    A restart truncates the trajectory to the checkpoint's frame and appends: a file that is
    empty, not HDF5, or holds no ``particles`` group would be lost or half-written.
    """
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as handle:
            if "particles" not in handle or not len(handle["particles"]):
                raise SimulationError(f"{path} holds no H5MD particles group; the run cannot be restarted")
    except (OSError, ValueError) as exc:
        size = path.stat().st_size if path.is_file() else 0
        raise SimulationError(
            f"{path} is not a readable H5MD trajectory ({'0 bytes' if size == 0 else first_line(exc)}); "
            "the run cannot be restarted (start a new one with -o)"
        ) from None


def model_sha256(settings: MDSettings) -> dict:
    """``model_sha256`` and ``committee_sha256`` of settings.json: SHA-256 of the model's and each member's file (None where absent)."""
    return {
        "model_sha256": _sha256(settings.model),
        "committee_sha256": [_sha256(m) for m in settings.committee] if settings.committee else None,
    }


def _sha256(path: str | Path) -> str | None:
    return file_sha256(path) if Path(path).is_file() else None


def check_restart_models(run_dir: Path, settings: MDSettings, data: dict, committee=None) -> None:
    """Refuse a restart with another model or committee than the run recorded in settings.json (``data``).

    Parameters
    ----------
    run_dir : Path
        The run directory (for the messages).
    settings : MDSettings
        The run's settings, as read back.
    data : dict
        settings.json's whole content (``model_sha256``, ``committee_sha256``).
    committee : sequence of str or Path, optional
        The committee asked for on restart (compared by the files' SHA-256, in any order); None
        continues with the recorded one.

    Raises
    ------
    CheckpointError
        When the model's or a recorded member's file changed since the run started.
    SimulationError
        When ``committee`` is not the run's committee (other files, or a run without one).
    """
    recorded = data.get("committee_sha256") or []
    files = [("model", settings.model, data.get("model_sha256"))]
    files += [("committee member", m, sha) for m, sha in zip(settings.committee or [], recorded, strict=False)]
    for what, path, sha in files:
        if sha and Path(path).is_file() and file_sha256(path) != sha:
            raise CheckpointError(
                f"{path} is not the {what} {run_dir} was run with (its SHA-256 differs from the one in "
                f"settings.json); put that {what} back, or start a new run with -o"
            )
    if committee is not None and sorted(str(_sha256(m) or m) for m in committee) != sorted(map(str, recorded)):
        was = f"the committee {', '.join(settings.committee)}" if settings.committee else "no committee"
        raise SimulationError(
            f"{run_dir} was run with {was}; a restart continues with the same committee: "
            "omit --committee, or start a new run with -o"
        )
