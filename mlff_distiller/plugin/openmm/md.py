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

    Attributes
    ----------
    integrator_seconds : float
        Wall-clock seconds, s, spent in the integrator's steps that :meth:`advance` took (one
        timing per chunk of steps between frames); the rest of :meth:`advance` is reporting. On
        asynchronous platforms (CUDA, OpenCL) steps still queued when they return are counted where
        the next state query waits for them.
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
        self.integrator_seconds = 0.0
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
        stops = StopRequests()
        with stops.catching():
            self.begin(progress, stops)
            try:
                self.advance(self.settings.steps)
            except KeyboardInterrupt:  # a second signal: stop at once, still writing the summary
                self.end(interrupted=True)
                raise
            except Exception:
                self._close()
                raise
        return self.end()

    def begin(self, progress: bool = True, stops: StopRequests | None = None) -> None:
        """Open the run directory and start the run: record frame 0 of a new run, or load a restart's checkpoint.

        Then :meth:`advance` takes its steps and :meth:`end` closes it (:meth:`run` does all three).

        Parameters
        ----------
        progress : bool
            Show a progress bar (tqdm) while advancing.
        stops : StopRequests, optional
            The signals that stop the run cleanly (see :meth:`run`); default: none.

        Raises
        ------
        SimulationError
            As :meth:`run`, for a non-finite model output at step 0 (the run is then ended).
        """
        from tqdm import tqdm

        s = self.settings
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
            self.step = self.context.getState().getStepCount()
            keep = self.step
        else:
            self.step, keep = 0, None
            self._start_new_run()
        self._write_settings(self.step)
        self._start, self._begin = self.step, wallclock.perf_counter()
        self._audits, self._deviations = [], []
        self._stops = stops or StopRequests()
        self._last_frame, self._reason, self._message = None, "completed", f"completed {s.steps} steps"
        self._trajectory = H5MDTrajectory(
            self.run_dir / TRAJECTORY, len(self.numbers), self.structure.periodic, observables, keep
        )
        self._table = EnergyTable(self.run_dir / ENERGIES, observables, keep)
        self._bar = tqdm(
            total=s.steps, initial=self.step, unit="step", disable=not progress, dynamic_ncols=True, mininterval=0.5
        )
        if not self.restarting:
            self._first_frame()

    @property
    def running(self) -> bool:
        """Whether the begun run can take more steps: not at its requested total, not stopped."""
        return self._reason == "completed" and self.step < self.settings.steps and self._stops.signal is None

    def advance(self, steps: int) -> bool:
        """Take up to ``steps`` more steps of the begun run, writing frames, audits and checkpoints at its intervals.

        Stops early at the requested total, on a physical stop or engine error, or on a stop
        signal; successive calls continue the run as one call with their total would.

        Returns
        -------
        bool
            :attr:`running`: False once the run has ended (then :meth:`end` says why).
        """
        s = self.settings
        target = min(self.step + steps, s.steps)
        while self.step < target and self.running:
            chunk = min(s.report_interval - self.step % s.report_interval, target - self.step)
            reports = (self.step + chunk) % s.report_interval == 0 or self.step + chunk == s.steps
            try:
                start = wallclock.perf_counter()
                self.phases.step(self.step, chunk)
                self.integrator_seconds += wallclock.perf_counter() - start
                frame = self._frame(self.step + chunk) if reports else None
            except openmm.OpenMMException as exc:
                self._reason = "engine error"
                self._message = (
                    f"stopped after step {self.step}: OpenMM or the model failed within the next {chunk} steps "
                    f"({_last_line(exc)})"
                )
                break
            self.step += chunk
            self._bar.update(chunk)
            if frame is not None:
                self._report(frame)
        return self.running

    def _report(self, frame: dict) -> None:
        """Record a frame, checkpoint at the checkpoint interval and the end, update the progress bar."""
        s, step = self.settings, frame["step"]
        self._last_frame = frame
        self._reason, self._message = self._record(frame)
        if self._reason == "completed" and (step % s.checkpoint_interval == 0 or step == s.steps):
            self._save_checkpoint()
        if self._bar.disable:
            return
        elapsed = wallclock.perf_counter() - self._begin
        postfix = {
            "phase": self.phases.label(step),
            "ns/day": f"{ns_per_day(step - self._start, s.timestep, elapsed):.2f}",
            "T": f"{frame['temperature']:.0f}K",
            "E": f"{frame['total_energy']:.4f}eV",
        }
        if self._audits:
            postfix["audit"] = f"{self._audits[-1]:.3f}eV/A"
        if self.committee is not None:
            postfix["devi"] = f"{frame['force_deviation_max']:.3f}eV/A"
        self._bar.set_postfix(postfix, refresh=False)

    def end(self, interrupted: bool = False) -> MDResult:
        """End the begun run: checkpoint a signalled stop, close the files, write ``summary.json``.

        ``interrupted``: the run is abandoned mid-step (a second signal), as stop reason ``interrupted``.
        """
        step = self.step
        reason, message = self._reason, self._message
        if interrupted:
            reason, message = "interrupted", f"interrupted after step {step}"
        elif self._stops.signal is not None and reason == "completed" and step < self.settings.steps:
            self._save_checkpoint()  # the frame of this step is written: a restart continues from it
            reason = self._stops.reason
            message = f"{reason} after step {step} ({signal.Signals(self._stops.signal).name}); checkpoint saved"
        self._close()
        return self._finish(reason, message, self._start, step, self._begin, self._last_frame)

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
        for name in (CHECKPOINT, SUMMARY):  # an overwritten run's restart point must not survive
            (self.run_dir / name).unlink(missing_ok=True)
        self.set_initial_state()
        with open(self.run_dir / TOPOLOGY, "w") as handle:
            app.PDBFile.writeFile(
                self.structure.topology, self.structure.positions * NM_TO_ANGSTROM * unit.angstrom, handle
            )

    def set_initial_state(self) -> None:
        """Put a new run's step-0 state in the Context, writing nothing: the structure's positions (energy-minimised
        with ``minimize``) and Maxwell-Boltzmann velocities at the temperature, from the seed.

        :meth:`begin` does this for a new run; stepping :attr:`phases` from here without
        :meth:`begin` gives the same trajectory with no reporting (no frames, checkpoints or stops).
        """
        s = self.settings
        self.context.setPositions(self.structure.positions)
        if s.minimize:
            openmm.LocalEnergyMinimizer.minimize(self.context)
        self.context.setVelocities(maxwell_boltzmann_velocities(self.masses, s.temperature, s.seed, self.dof))

    def _close(self) -> None:
        self._bar.close()
        self._trajectory.close()
        self._table.close()

    def _first_frame(self) -> None:
        """Record frame 0 and checkpoint it (step 0 is on every interval), so that a run killed early restarts.

        A non-finite model output there is a model or input fault: the run ends, and
        :class:`SimulationError` says so.
        """
        try:
            frame = self._frame(0)
        except openmm.OpenMMException as exc:
            frame, reason = None, f"the model failed ({_last_line(exc)})"
        else:
            self._report(frame)
            reason = self._reason
        if reason != "completed" and (frame is None or reason == "non-finite energy"):
            what = reason if frame is None else "the model gives a non-finite energy or forces"
            message = (
                f"{what} at step 0, before any dynamics: a fault of the model ({self.settings.model}) or of the "
                f"input structure ({self.settings.structure}, e.g. atoms on top of each other), not an explosion"
            )
            self._last_frame, self._reason, self._message = None, "model or input fault", message
            self.end()
            raise SimulationError(message)

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
            "positions": _particle_array(state, openmm.State.Positions, len(self.numbers)),
            "velocities": _particle_array(state, openmm.State.Velocities, len(self.numbers)),
            "forces": _particle_array(state, openmm.State.Forces, len(self.numbers)),
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

    def _record(self, frame: dict) -> tuple[str, str]:
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
        self._trajectory.append(
            step, frame["time"], frame["positions"], frame["velocities"], frame["forces"], frame["box"], frame
        )
        self._table.append(step, frame["time"], frame)
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


def _particle_array(state: openmm.State, kind: int, n_atoms: int) -> np.ndarray:
    """Positions (nm), velocities (nm/ps) or forces (kJ/mol/nm) of ``state`` as an (n_atoms, 3) float64 array.

    ``kind`` is ``State.Positions``, ``State.Velocities`` or ``State.Forces``. This is what
    ``State.getPositions(asNumpy=True)`` and its siblings do inside (a State holds OpenMM's units),
    without their ``dir()`` call and unit wrapper: those cost 0.3 ms a frame, 0.6 % of a small
    molecule's run at the default report interval (benchmarks/reporting_overhead.py).
    """
    values = np.empty((n_atoms, 3))
    state._getVectorAsNumpy(kind, values)
    return values


def _last_line(exc: Exception) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__
