"""Production MD with a student in OpenMM: the run directory, restarts, clean stops and teacher audits.

>>> run = MDRun(MDSettings(structure="mol.xyz", model="student.ckpt", equilibrate=2.0, time=10.0), "run1")
>>> result = run.run()
>>> result.stop_reason
'completed'
"""

import json
import math
import os
import signal
import sys
import time as wallclock
from dataclasses import asdict
from pathlib import Path

import torch

import numpy as np
import openmm
from ase import Atoms
from openmm import app, unit

from ...errors import OverwriteError, SimulationError
from ...safe_write import check_output, safe_write
from ...units import BOLTZMANN_EV_PER_K, EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM
from .committee_recorder import DEVIATION_OBSERVABLES, EV_PER_A_PER_KJ_PER_MOL_NM, CommitteeRecorder
from .md_result import MDResult, finite_max, json_number, ns_per_day
from .md_settings import MDSettings, check_restart_models, check_restart_trajectory, model_sha256
from .phases import EQUILIBRATION, PhasedIntegrator
from .platform import select_platform
from .reporter import EnergyTable, H5MDTrajectory
from .stops import StopRequests
from .system import OpenMMStructure, build_system, check_positions, load_force_model, structure_to_openmm
from .velocities import maxwell_boltzmann_velocities

__all__ = ["MDResult", "MDRun", "MDSettings", "maxwell_boltzmann_velocities", "ns_per_day"]

#: Files of a run directory (see docs/trajectory-format.md).
TRAJECTORY, TOPOLOGY, ENERGIES, SETTINGS, CHECKPOINT, SUMMARY = (
    "trajectory.h5md",
    "topology.pdb",
    "energies.csv",
    "settings.json",
    "checkpoint.chk",
    "summary.json",
)
RUN_FILES = (TRAJECTORY, TOPOLOGY, ENERGIES, SETTINGS, CHECKPOINT, SUMMARY)


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

    def __init__(self, settings: MDSettings, run_dir: str | Path, overwrite: bool = False):
        settings.check()
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.restarting = False
        inputs = [settings.structure, settings.model, *(settings.committee or [])]
        check_output(self.run_dir, inputs=inputs, overwrite=True, folder=True)
        held = [name for name in RUN_FILES if (self.run_dir / name).exists()]
        if held and not overwrite:
            raise OverwriteError(
                f"{self.run_dir} already holds run files ({', '.join(held)}); "
                "pass --overwrite to replace them or --restart to continue the run"
            )
        self._prepare(structure_to_openmm(settings.structure, seed=settings.seed))

    @classmethod
    def restart(
        cls, run_dir: str | Path, time: float | None = None, committee=None, threads: int | None = None
    ) -> "MDRun":
        """Continue the run in ``run_dir`` from its last checkpoint, in either phase.

        ``time`` is the new production time in ps (default: as first requested); the warm-up
        keeps its length. ``committee`` (checkpoint paths) must be the run's own, or None.
        ``threads`` replaces the recorded thread count (the physics does not depend on it).
        """
        run_dir = Path(run_dir)
        for name in (SETTINGS, CHECKPOINT, TOPOLOGY, TRAJECTORY):
            if not (run_dir / name).exists():
                raise SimulationError(f"{run_dir}: cannot restart, {name} is missing")
        settings, data = MDSettings.read(run_dir / SETTINGS)
        if time is not None:
            settings.time = time
        if threads is not None:
            settings.threads = threads
        settings.check()
        check_restart_trajectory(run_dir / TRAJECTORY)
        check_restart_models(run_dir, settings, data, committee)
        run = cls.__new__(cls)
        run.settings, run.run_dir, run.restarting = settings, run_dir, True
        run._prepare(structure_to_openmm(run_dir / TOPOLOGY))
        return run

    def _prepare(self, structure: OpenMMStructure) -> None:
        s = self.settings
        self.structure = structure
        check_positions(structure.positions, str(s.structure))
        self.numbers = np.array([atom.element.atomic_number for atom in structure.topology.atoms()])
        self.platform, properties = select_platform(s.platform, s.precision, model_only=True, threads=s.threads)
        dtype = torch.float64 if s.precision == "double" else torch.float32
        self.force_model = load_force_model(s.model, dtype, kernel=s.kernel, threads=s.threads)
        self.system = build_system(
            structure,
            self.force_model,
            remove_cm_motion=s.remove_cm_motion,
            cuda_graphs=s.cuda_graphs and self.platform.getName() == "CUDA",
        )
        self.phases = PhasedIntegrator(s)
        self.context = openmm.Context(self.system, self.phases.integrator, self.platform, properties)
        self.masses = np.array(
            [self.system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(self.system.getNumParticles())]
        )
        self.dof = (
            3 * int(np.count_nonzero(self.masses)) - self.system.getNumConstraints() - (3 if s.remove_cm_motion else 0)
        )
        self.committee = CommitteeRecorder(s.committee, self.numbers) if s.committee else None
        self.teacher = None
        if s.audit_every:
            from ...teachers import load_teacher

            self.teacher = load_teacher(s.teacher)
            self.teacher.check_elements(self.numbers)

    # -- the run -----------------------------------------------------------------------------

    def run(self, progress: bool = True) -> MDResult:
        """Run to the requested time, writing the run directory; returns how the run ended.

        A physical stop (non-finite energy, temperature over the limit, failed audit) is not an
        exception: the result's ``stop_reason`` says why, files stay readable. Nor is SIGINT or
        SIGTERM (:mod:`.stops`): the run stops after the current step with its checkpoint saved.

        Raises
        ------
        SimulationError
            When the model gives a non-finite energy or forces at step 0, before any dynamics: a
            fault of the model or of the input structure (``summary.json`` says so too).
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        observables = self._observables()
        if self.restarting:
            try:
                self.context.loadCheckpoint((self.run_dir / CHECKPOINT).read_bytes())
            except openmm.OpenMMException as exc:
                raise SimulationError(
                    f"{self.run_dir / CHECKPOINT} is not a checkpoint OpenMM can load ({_last_line(exc)}); "
                    "the run cannot be restarted (start a new one with -o)"
                ) from None
            start = self.context.getState().getStepCount()
            keep = start
        else:
            start, keep = 0, None
            self._start_new_run()
        self._write_settings(start)
        trajectory = H5MDTrajectory(
            self.run_dir / TRAJECTORY, len(self.numbers), self.structure.periodic, observables, keep
        )
        table = EnergyTable(self.run_dir / ENERGIES, observables, keep)
        self._audits, self._deviations = [], []
        self._stops = StopRequests()
        try:
            with self._stops.catching():
                return self._loop(start, trajectory, table, progress)
        finally:
            trajectory.close()
            table.close()

    def _observables(self) -> list[str]:
        """Names of the per-frame observables this run writes (see docs/trajectory-format.md)."""
        s = self.settings
        observables = ["potential_energy", "kinetic_energy", "total_energy", "temperature"]
        if s.audit_every:
            observables.append("audit_force_rmse")
        if s.committee:
            observables += DEVIATION_OBSERVABLES
        if s.equilibration_steps:
            observables.append("equilibration")
        return observables

    def _start_new_run(self) -> None:
        s = self.settings
        for name in (CHECKPOINT, SUMMARY):  # an overwritten run's restart point must not survive
            (self.run_dir / name).unlink(missing_ok=True)
        self.context.setPositions(self.structure.positions)
        if s.minimize:
            openmm.LocalEnergyMinimizer.minimize(self.context)
        self.context.setVelocities(maxwell_boltzmann_velocities(self.masses, s.temperature, s.seed, self.dof))
        app.PDBFile.writeFile(
            self.structure.topology,
            self.structure.positions * NM_TO_ANGSTROM * unit.angstrom,
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
            if start == 0 and not self.restarting:
                frame, reason, message = self._first_frame(trajectory, table, begin)
            while step < total and reason == "completed" and self._stops.signal is None:
                chunk = min(s.report_interval - step % s.report_interval, total - step)
                try:
                    self.phases.step(step, chunk)
                    frame = self._frame(step + chunk)
                except openmm.OpenMMException as exc:
                    reason = "engine error"
                    message = (
                        f"stopped after step {step}: OpenMM or the model failed within the next {chunk} steps "
                        f"({_last_line(exc)})"
                    )
                    break
                step += chunk
                reason, message = self._record(frame, trajectory, table)
                if reason == "completed" and (step % s.checkpoint_interval == 0 or step == total):
                    self._save_checkpoint()
                bar.update(chunk)
                elapsed = wallclock.perf_counter() - begin
                postfix = {
                    "phase": self.phases.label(step),
                    "ns/day": f"{ns_per_day(step - start, s.timestep, elapsed):.2f}",
                    "T": f"{frame['temperature']:.0f}K",
                    "E": f"{frame['total_energy']:.4f}eV",
                }
                if self._audits:
                    postfix["audit"] = f"{self._audits[-1]:.3f}eV/A"
                if self.committee is not None:
                    postfix["devi"] = f"{frame['force_deviation_max']:.3f}eV/A"
                bar.set_postfix(postfix, refresh=False)
            if self._stops.signal is not None and reason == "completed" and step < total:
                self._save_checkpoint()  # the frame of this step is written: a restart continues from it
                reason = self._stops.reason
                message = f"{reason} after step {step} ({signal.Signals(self._stops.signal).name}); checkpoint saved"
        except KeyboardInterrupt:
            reason, message = "interrupted", f"interrupted after step {step}"
            self._finish(reason, message, start, step, begin, frame)
            raise
        finally:
            bar.close()
        return self._finish(reason, message, start, step, begin, frame)

    def _first_frame(self, trajectory: H5MDTrajectory, table: EnergyTable, begin: float) -> tuple[dict, str, str]:
        """Record frame 0 and checkpoint it: (frame, stop reason, message) as :meth:`_record`.

        A non-finite model output there is a model or input fault (:class:`SimulationError`).
        """
        try:
            frame = self._frame(0)
            reason, message = self._record(frame, trajectory, table)
        except openmm.OpenMMException as exc:
            frame, reason = None, f"the model failed ({_last_line(exc)})"
        if reason != "completed" and (frame is None or reason == "non-finite energy"):
            what = reason if frame is None else "the model gives a non-finite energy or forces"
            message = (
                f"{what} at step 0, before any dynamics: a fault of the model ({self.settings.model}) or of the "
                f"input structure ({self.settings.structure}, e.g. atoms on top of each other), not an explosion"
            )
            self._finish("model or input fault", message, 0, 0, begin, None)
            raise SimulationError(message)
        if reason == "completed":
            self._save_checkpoint()  # so that a run killed before its first checkpoint interval restarts
        return frame, reason, message

    def _frame(self, step: int) -> dict:
        state = self.context.getState(getPositions=True, getVelocities=True, getForces=True, getEnergy=True)
        potential = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) / EV_TO_KJ_PER_MOL
        kinetic = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole) / EV_TO_KJ_PER_MOL
        box = (
            state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer) if self.structure.periodic else None
        )
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
            "force_deviation_max": math.nan,
            "force_deviation_mean": math.nan,
            "equilibration": int(self.phases.phase(step) == EQUILIBRATION),
        }

    def _record(self, frame: dict, trajectory: H5MDTrajectory, table: EnergyTable):
        """Write a finite frame; return (stop reason, message)."""
        s, step = self.settings, frame["step"]
        finite = [frame["potential_energy"], frame["positions"], frame["forces"]]
        if not all(np.isfinite(value).all() for value in finite):
            return (
                "non-finite energy",
                f"stopped at step {step}: the energy, forces or positions became non-finite (frame not written)",
            )
        if self.teacher is not None and step % s.audit_every == 0:
            frame["audit_force_rmse"] = self._audit(frame)
            self._audits.append(frame["audit_force_rmse"])
        if self.committee is not None:
            deviation = self.committee.deviation(frame["positions"], frame["box"], frame["forces"])
            frame["force_deviation_max"], frame["force_deviation_mean"] = deviation
            self._deviations.append(deviation[0])
        trajectory.append(
            step, frame["time"], frame["positions"], frame["velocities"], frame["forces"], frame["box"], frame
        )
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

    def _audit(self, frame: dict) -> float:
        """Force RMSE (eV/Å) of the student against the teacher on this frame; NaN (a recorded gap) if the teacher fails."""
        from ...teachers import TeacherError

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
        from ... import __version__

        path = self.run_dir / SETTINGS
        previous = json.loads(path.read_text()) if self.restarting else {}
        data = {
            **asdict(self.settings),
            "steps": self.settings.steps,
            "atoms": len(self.numbers),
            "periodic": self.structure.periodic,
            "engine": "openmm",
            "platform_used": self.platform.getName(),
            **model_sha256(self.settings),
            "model_precision": self.force_model.metadata.get("precision"),
            "package_version": __version__,
            "openmm_version": openmm.__version__,
            "production_start_ps": self.settings.production_start_ps,
            "restarts": previous.get("restarts", [])
            + ([{"from_step": start, "time_ps": self.settings.time}] if self.restarting else []),
        }
        safe_write(path, lambda staged: staged.write_text(json.dumps(data, indent=2)), overwrite=True)

    def _finish(self, reason: str, message: str, start: int, step: int, begin: float, frame: dict | None) -> MDResult:
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
            max_audit_force_rmse_eV_per_A=finite_max(self._audits),
            max_force_deviation_eV_per_A=finite_max(self._deviations),
            platform=self.platform.getName(),
            phase=self.phases.phase(step),
        )
        summary = json.dumps(asdict(result), indent=2, default=json_number)
        safe_write(self.run_dir / SUMMARY, lambda staged: staged.write_text(summary), overwrite=True)
        return result


def _last_line(exc: Exception) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__
