"""The cost of ``mlffd md``'s reporting: the same OpenMM run advanced with and without its reporters.

With reporters, :func:`md_advance` steps :class:`~mlff_distiller.plugin.openmm.MDRun` as ``mlffd md``
runs it at its default intervals: an H5MD frame and a CSV row every 100 steps (each frame one
more evaluation of the model, for its energy and forces), a checkpoint every 1,000, its checks
for explosions; no progress bar, audits or committee (off by default). Without, it steps the same
run's integrator from the same state and writes nothing. The ratio of their times is the
reporting overhead, subject to the machine's load between their blocks; the run with reporters also
measures it within each block: the share of its wall time outside its integrator's steps
(:attr:`TimedMDRun.last_reporting_seconds`).
"""

import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ase import Atoms
from ase.io import write

from ..errors import SimulationError
from ..models import Student, save_checkpoint
from .timing import Advance

if TYPE_CHECKING:
    from ..plugin.openmm import MDRun

#: Production time of a timed run, ps: longer than any benchmark advances it (the run stops there).
RUN_TIME_PS = 1e4
#: Files :func:`md_advance` writes in its folder: the student, the structure, the run directory.
STUDENT, STRUCTURE, RUN = "student.ckpt", "structure.xyz", "run"


def md_advance(
    student: Student,
    atoms: Atoms,
    timestep_fs: float,
    folder: Path,
    threads: int | None = None,
    reporters: bool = True,
) -> Advance:
    """NVE MD of ``student`` on ``atoms`` by ``mlffd md``'s machinery, with or without its reporters.

    The run is an :class:`~mlff_distiller.plugin.openmm.MDRun` with ``mlffd md``'s defaults (platform
    ``auto``, kernel ``auto``, report interval 100, checkpoint interval 1,000, 300 K, seed 0) except
    the time step, the threads and the precision (``double`` for a float64 student, else ``mixed``:
    the model runs in the student's dtype). Each call of the returned function continues it.

    Parameters
    ----------
    student : Student
        The model, in the dtype it runs in.
    atoms : ase.Atoms
        The system (positions and cell in Å).
    timestep_fs : float
        Time step, fs.
    folder : Path
        This contender's own folder: the student's checkpoint (``student.ckpt``) and the structure
        (``structure.xyz``) are written there, and with ``reporters`` the run directory ``run/``;
        files of an earlier call are replaced.
    threads : int, optional
        Threads of the fused kernel (default: :func:`~mlff_distiller.models.kernel.default_threads`).
    reporters : bool
        Write the run directory as ``mlffd md`` does; False: step the same dynamics writing nothing.

    Returns
    -------
    Advance
        A :class:`TimedMDRun`: ``advance(steps)`` gives the wall-clock seconds of ``steps`` more
        steps, and raises :class:`~mlff_distiller.errors.SimulationError` when the run with reporters
        stops (explosion, engine error, or :data:`RUN_TIME_PS` reached).
    """
    from ..plugin.openmm import MDRun, MDSettings

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / STRUCTURE, atoms)
    settings = MDSettings(
        structure=str(folder / STRUCTURE),
        model=str(save_checkpoint(student, folder / STUDENT)),
        timestep=timestep_fs,
        time=RUN_TIME_PS,
        precision="double" if student.network.energy_scale.dtype == torch.float64 else "mixed",
        threads=threads,
    )
    return TimedMDRun(MDRun(settings, folder / RUN, overwrite=True), reporters)


class TimedMDRun:
    """An :data:`~mlff_distiller.benchmark.timing.Advance` stepping one MD run, with or without its reporters.

    Parameters
    ----------
    run : MDRun
        A new run (not begun).
    reporters : bool
        Begin it (frame 0, run directory) and advance it with :meth:`MDRun.advance`; False: put its
        initial state in the Context (:meth:`MDRun.set_initial_state`) and step its integrator only.

    Attributes
    ----------
    run : MDRun
        The run; its ``context`` holds the current state.
    step : int
        Steps taken.
    last_reporting_seconds : float or None
        With reporters, the wall-clock seconds, s, of the last call spent outside the integrator's
        steps (its elapsed time less the :attr:`MDRun.integrator_seconds` it added): frames (the
        state query and the model's energy and forces), H5MD and CSV writes, checkpoints, checks.
        None without reporters or before the first call.
    """

    def __init__(self, run: "MDRun", reporters: bool):
        self.run, self.reporters, self.step = run, reporters, 0
        self.last_reporting_seconds: float | None = None
        if reporters:
            run.begin(progress=False)
        else:
            run.set_initial_state()

    def __call__(self, steps: int) -> float:
        """Take ``steps`` more steps; the wall-clock seconds they took."""
        integrator, start = self.run.integrator_seconds, time.perf_counter()
        if not self.reporters:
            self.run.phases.step(self.step, steps)
            self.run.context.getState(getPositions=True)  # waits for asynchronous platforms, as a frame does
        elif not self.run.advance(steps) and self.run.step < self.step + steps:
            raise SimulationError(f"the timed MD run stopped at step {self.run.step}: {self.run.end().message}")
        elapsed = time.perf_counter() - start
        if self.reporters:
            self.last_reporting_seconds = elapsed - (self.run.integrator_seconds - integrator)
        self.step += steps
        return elapsed
