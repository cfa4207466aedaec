"""Production MD with a student in OpenMM: the run directory, restarts, clean stops and teacher audits.

>>> run = MDRun(MDSettings(structure="mol.xyz", model="student.ckpt", time=10.0), "run1")
>>> result = run.run()
>>> result.stop_reason
'completed'
"""

import json
import math
import os
import sys
import time as wallclock
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np
import openmm
import torch
from ase import Atoms
from openmm import app, unit

from ..errors import OverwriteError, SimulationError
from ..models.checkpoint import file_sha256
from ..units import BOLTZMANN_EV_PER_K, EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM
from .platform import select_platform
from .reporter import EnergyTable, H5MDTrajectory
from .system import OpenMMStructure, build_system, check_positions, load_force_model, structure_to_openmm

#: Files of a run directory (see docs/trajectory-format.md).
TRAJECTORY, TOPOLOGY, ENERGIES, SETTINGS, CHECKPOINT, SUMMARY = (
    "trajectory.h5md",
    "topology.pdb",
    "energies.csv",
    "settings.json",
    "checkpoint.chk",
    "summary.json",
)
#: Multiplies forces in kJ/mol/nm to give eV/Å.
EV_PER_A_PER_KJ_PER_MOL_NM = 1.0 / (EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM)


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
        Initial (Maxwell-Boltzmann) and, for NVT, bath temperature in K.
    timestep : float
        Time step in fs.
    time : float
        Total simulated time of the run in ps (a restart continues up to it).
    report_interval : int
        Steps between frames written to the trajectory and CSV.
    checkpoint_interval : int
        Steps between OpenMM checkpoints (a multiple of ``report_interval``).
    friction : float
        Langevin friction in 1/ps (NVT).
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
    teacher: Optional[str] = None
    audit_max_rmse: Optional[float] = None

    @property
    def steps(self) -> int:
        """Total number of steps of the run."""
        return int(round(self.time * 1000.0 / self.timestep))

    def check(self) -> None:
        """Raise :class:`SimulationError` for inconsistent settings."""
        problems = []
        if self.ensemble not in ("nve", "nvt"):
            problems.append(f"ensemble must be nve or nvt, not '{self.ensemble}'")
        for name in ("timestep", "time", "temperature_limit"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be positive")
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


@dataclass
class MDResult:
    """How a run ended (also written to ``summary.json``)."""

    stop_reason: str
    message: str
    steps_completed: int
    steps_requested: int
    simulated_time_ps: float
    wall_time_s: float
    ns_per_day: float
    final_temperature_K: float
    final_total_energy_eV: float
    max_audit_force_rmse_eV_per_A: Optional[float] = None
    platform: str = ""

    @property
    def completed(self) -> bool:
        return self.stop_reason == "completed"


class MDRun:
    """One MD run of a student in OpenMM, writing a run directory (docs/trajectory-format.md).

    Parameters
    ----------
    settings : MDSettings
        The run's settings.
    run_dir : str or Path
        Output directory.
    overwrite : bool
        Replace the files of an existing run directory.
    """

    def __init__(self, settings: MDSettings, run_dir: Union[str, Path], overwrite: bool = False):
        settings.check()
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.restarting = False
        if (self.run_dir / SETTINGS).exists() and not overwrite:
            raise OverwriteError(f"{self.run_dir} already holds a run; pass --overwrite to replace it or --restart to continue it")
        self._prepare(structure_to_openmm(settings.structure, seed=settings.seed))

    @classmethod
    def restart(cls, run_dir: Union[str, Path], time: Optional[float] = None) -> "MDRun":
        """Continue the run in ``run_dir`` from its last checkpoint, up to ``time`` ps (default: as first requested)."""
        run_dir = Path(run_dir)
        for name in (SETTINGS, CHECKPOINT, TOPOLOGY, TRAJECTORY):
            if not (run_dir / name).exists():
                raise SimulationError(f"{run_dir}: cannot restart, {name} is missing")
        data = json.loads((run_dir / SETTINGS).read_text())
        settings = MDSettings(**{k: v for k, v in data.items() if k in MDSettings.__dataclass_fields__})
        if time is not None:
            settings.time = time
        settings.check()
        run = cls.__new__(cls)
        run.settings, run.run_dir, run.restarting = settings, run_dir, True
        run._prepare(structure_to_openmm(run_dir / TOPOLOGY))
        return run

    def _prepare(self, structure: OpenMMStructure) -> None:
        s = self.settings
        self.structure = structure
        check_positions(structure.positions, str(s.structure))
        self.numbers = np.array([atom.element.atomic_number for atom in structure.topology.atoms()])
        self.platform, properties = select_platform(s.platform, s.precision, model_only=True)
        dtype = torch.float64 if s.precision == "double" else torch.float32
        self.force_model = load_force_model(s.model, dtype, kernel=s.kernel)
        self.system = build_system(
            structure, self.force_model, remove_cm_motion=s.remove_cm_motion,
            cuda_graphs=s.cuda_graphs and self.platform.getName() == "CUDA",
        )
        if s.ensemble == "nve":
            self.integrator = openmm.VerletIntegrator(s.timestep * unit.femtoseconds)
        else:
            self.integrator = openmm.LangevinMiddleIntegrator(
                s.temperature * unit.kelvin, s.friction / unit.picosecond, s.timestep * unit.femtoseconds
            )
            self.integrator.setRandomNumberSeed(s.seed + 1)  # OpenMM reads 0 as 'a new random seed per Context'
        self.context = openmm.Context(self.system, self.integrator, self.platform, properties)
        self.masses = np.array([self.system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(self.system.getNumParticles())])
        self.dof = 3 * int(np.count_nonzero(self.masses)) - self.system.getNumConstraints() - (3 if s.remove_cm_motion else 0)
        self.teacher = None
        if s.audit_every:
            from ..teachers import load_teacher

            self.teacher = load_teacher(s.teacher)
            self.teacher.check_elements(self.numbers)

    # -- the run -----------------------------------------------------------------------------

    def run(self, progress: bool = True) -> MDResult:
        """Run to the requested time, writing the run directory; returns how the run ended.

        A physical stop (non-finite energy, temperature over the limit, failed audit) is not an
        exception: the result's ``stop_reason`` says why, files stay readable.
        """
        s = self.settings
        self.run_dir.mkdir(parents=True, exist_ok=True)
        observables = ["potential_energy", "kinetic_energy", "total_energy", "temperature"]
        if s.audit_every:
            observables.append("audit_force_rmse")
        if self.restarting:
            self.context.loadCheckpoint((self.run_dir / CHECKPOINT).read_bytes())
            start = self.context.getState().getStepCount()
            keep = start
        else:
            start, keep = 0, None
            self._start_new_run()
        self._write_settings(start)
        trajectory = H5MDTrajectory(self.run_dir / TRAJECTORY, len(self.numbers), self.structure.periodic, observables, keep)
        table = EnergyTable(self.run_dir / ENERGIES, observables, keep)
        self._audits = []
        try:
            return self._loop(start, trajectory, table, progress)
        finally:
            trajectory.close()
            table.close()

    def _start_new_run(self) -> None:
        s = self.settings
        for name in (CHECKPOINT, SUMMARY):  # an overwritten run's restart point must not survive
            (self.run_dir / name).unlink(missing_ok=True)
        self.context.setPositions(self.structure.positions)
        if s.minimize:
            openmm.LocalEnergyMinimizer.minimize(self.context)
        self.context.setVelocities(maxwell_boltzmann_velocities(self.masses, s.temperature, s.seed, self.dof))
        app.PDBFile.writeFile(
            self.structure.topology, self.structure.positions * NM_TO_ANGSTROM * unit.angstrom,
            open(self.run_dir / TOPOLOGY, "w"),
        )

    def _loop(self, start: int, trajectory: H5MDTrajectory, table: EnergyTable, progress: bool) -> MDResult:
        from tqdm import tqdm

        s = self.settings
        total = s.steps
        step = start
        begin = wallclock.perf_counter()
        reason, message = "completed", f"completed {total} steps"
        frame = None
        bar = tqdm(total=total, initial=start, unit="step", disable=not progress, dynamic_ncols=True, mininterval=0.5)
        try:
            if start == 0:
                frame = self._frame(0)
                reason, message = self._record(frame, trajectory, table)
            while step < total and reason == "completed":
                chunk = min(s.report_interval - step % s.report_interval, total - step)
                try:
                    self.integrator.step(chunk)
                    frame = self._frame(step + chunk)
                except openmm.OpenMMException as exc:
                    reason = "engine error"
                    message = (f"stopped after step {step}: OpenMM or the model failed within the next {chunk} steps "
                               f"({_last_line(exc)})")
                    break
                step += chunk
                reason, message = self._record(frame, trajectory, table)
                if reason == "completed" and (step % s.checkpoint_interval == 0 or step == total):
                    self._save_checkpoint()
                bar.update(chunk)
                elapsed = wallclock.perf_counter() - begin
                postfix = {"ns/day": f"{ns_per_day(step - start, s.timestep, elapsed):.2f}",
                           "T": f"{frame['temperature']:.0f}K", "E": f"{frame['total_energy']:.4f}eV"}
                if self._audits:
                    postfix["audit"] = f"{self._audits[-1]:.3f}eV/A"
                bar.set_postfix(postfix, refresh=False)
        except KeyboardInterrupt:
            reason, message = "interrupted", f"interrupted after step {step}"
            self._finish(reason, message, start, step, begin, frame)
            raise
        finally:
            bar.close()
        return self._finish(reason, message, start, step, begin, frame)

    def _frame(self, step: int) -> Dict:
        state = self.context.getState(getPositions=True, getVelocities=True, getForces=True, getEnergy=True)
        potential = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) / EV_TO_KJ_PER_MOL
        kinetic = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole) / EV_TO_KJ_PER_MOL
        box = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer) if self.structure.periodic else None
        return {
            "step": step,
            "time": state.getTime().value_in_unit(unit.picosecond),
            "positions": state.getPositions(asNumpy=True).value_in_unit(unit.nanometer),
            "velocities": state.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond),
            "forces": state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer),
            "box": box,
            "potential_energy": potential,
            "kinetic_energy": kinetic,
            "total_energy": potential + kinetic,
            "temperature": 2.0 * kinetic / (max(self.dof, 1) * BOLTZMANN_EV_PER_K),
            "audit_force_rmse": math.nan,
        }

    def _record(self, frame: Dict, trajectory: H5MDTrajectory, table: EnergyTable):
        """Write a finite frame; return (stop reason, message)."""
        s, step = self.settings, frame["step"]
        if not (math.isfinite(frame["potential_energy"]) and np.isfinite(frame["positions"]).all()):
            return "non-finite energy", f"stopped at step {step}: the energy or positions became non-finite (frame not written)"
        if self.teacher is not None and step % s.audit_every == 0:
            frame["audit_force_rmse"] = self._audit(frame)
            self._audits.append(frame["audit_force_rmse"])
        trajectory.append(step, frame["time"], frame["positions"], frame["velocities"], frame["forces"], frame["box"], frame)
        table.append(step, frame["time"], frame)
        if frame["temperature"] > s.temperature_limit:
            return "temperature limit", (
                f"stopped at step {step}: temperature {frame['temperature']:.0f} K exceeds the limit {s.temperature_limit:.0f} K"
            )
        if s.audit_max_rmse is not None and frame["audit_force_rmse"] > s.audit_max_rmse:
            return "audit", (
                f"stopped at step {step}: force RMSE against the teacher {frame['audit_force_rmse']:.4f} eV/Å "
                f"exceeds {s.audit_max_rmse} eV/Å"
            )
        return "completed", f"completed {s.steps} steps"

    def _audit(self, frame: Dict) -> float:
        """Force RMSE (eV/Å) of the student against the teacher on this frame; NaN (a recorded gap) if the teacher fails."""
        from ..teachers import TeacherError

        atoms = Atoms(numbers=self.numbers, positions=frame["positions"] * NM_TO_ANGSTROM)
        if frame["box"] is not None:
            atoms.set_cell(frame["box"] * NM_TO_ANGSTROM)
            atoms.set_pbc(True)
        try:
            teacher_forces = np.asarray(self.teacher.compute(atoms)["forces"])
        except TeacherError as exc:
            print(f"mlffd: warning: audit at step {frame['step']} skipped: {exc}", file=sys.stderr)
            return math.nan
        student_forces = frame["forces"] * EV_PER_A_PER_KJ_PER_MOL_NM
        return float(np.sqrt(np.mean((student_forces - teacher_forces) ** 2)))

    def _save_checkpoint(self) -> None:
        temporary = self.run_dir / (CHECKPOINT + ".tmp")
        temporary.write_bytes(self.context.createCheckpoint())
        os.replace(temporary, self.run_dir / CHECKPOINT)

    def _write_settings(self, start: int) -> None:
        from .. import __version__
        path = self.run_dir / SETTINGS
        previous = json.loads(path.read_text()) if self.restarting else {}
        model = Path(self.settings.model)
        data = {
            **asdict(self.settings),
            "steps": self.settings.steps,
            "atoms": len(self.numbers),
            "periodic": self.structure.periodic,
            "engine": "openmm",
            "platform_used": self.platform.getName(),
            "model_sha256": file_sha256(model) if model.is_file() else None,
            "model_precision": self.force_model.metadata.get("precision"),
            "package_version": __version__,
            "openmm_version": openmm.__version__,
            "restarts": previous.get("restarts", []) + ([{"from_step": start, "time_ps": self.settings.time}] if self.restarting else []),
        }
        path.write_text(json.dumps(data, indent=2))

    def _finish(self, reason: str, message: str, start: int, step: int, begin: float, frame: Optional[Dict]) -> MDResult:
        s = self.settings
        wall = wallclock.perf_counter() - begin
        result = MDResult(
            stop_reason=reason,
            message=message,
            steps_completed=step,
            steps_requested=s.steps,
            simulated_time_ps=step * s.timestep / 1000.0,
            wall_time_s=wall,
            ns_per_day=ns_per_day(step - start, s.timestep, wall),
            final_temperature_K=frame["temperature"] if frame else math.nan,
            final_total_energy_eV=frame["total_energy"] if frame else math.nan,
            max_audit_force_rmse_eV_per_A=_finite_max(self._audits),
            platform=self.platform.getName(),
        )
        (self.run_dir / SUMMARY).write_text(json.dumps(asdict(result), indent=2, default=_json_number))
        return result


def _last_line(exc: Exception) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def _json_number(value):
    return float(value)


def _finite_max(values) -> Optional[float]:
    """Largest finite value, or None when there is none."""
    finite = [v for v in values if math.isfinite(v)]
    return max(finite) if finite else None


def ns_per_day(steps: int, timestep_fs: float, wall_s: float) -> float:
    """Simulated ns per day of wall time for ``steps`` steps of ``timestep_fs`` fs done in ``wall_s`` s."""
    return steps * timestep_fs * 1e-6 / wall_s * 86400.0 if wall_s > 0 else 0.0


def maxwell_boltzmann_velocities(masses_amu: np.ndarray, temperature_K: float, seed: int, dof: int) -> np.ndarray:
    """Velocities (nm/ps) drawn from Maxwell-Boltzmann at ``temperature_K``, zero centre-of-mass momentum.

    They are rescaled so that the kinetic temperature over ``dof`` degrees of freedom is exactly
    ``temperature_K``; massless particles get zero velocity.
    """
    rng = np.random.default_rng(seed)
    kt = temperature_K * unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin)  # kJ/mol
    moving = masses_amu > 0
    velocities = np.zeros((len(masses_amu), 3))
    velocities[moving] = rng.normal(size=(int(moving.sum()), 3)) * np.sqrt(kt / masses_amu[moving])[:, None]
    momentum = (masses_amu[:, None] * velocities).sum(0)
    velocities[moving] -= momentum / masses_amu.sum()
    kinetic = 0.5 * (masses_amu[:, None] * velocities**2).sum()
    if kinetic > 0 and dof > 0:
        velocities *= np.sqrt(0.5 * dof * kt / kinetic)
    return velocities
