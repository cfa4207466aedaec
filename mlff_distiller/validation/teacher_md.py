"""A short teacher MD: the reference distribution of a run's bonds, angles and dihedrals.

>>> reference = teacher_md(read_structure("aspirin"), temperature_K=300.0)   # REFERENCE_TIME_PS, REFERENCE_SEED
>>> reference.universe()    # the frames as an MDAnalysis Universe, for InternalCoordinates
>>> reference.budget_reached  # True: the wall-time cap cut it short of the length asked for
"""

import time
from dataclasses import dataclass

import numpy as np
from ase import Atoms, units

from ..errors import TrajectoryError
from ..reference_md import REFERENCE_BUDGET_S, REFERENCE_SEED, REFERENCE_TIME_PS, REFERENCE_TIMESTEP_FS

__all__ = [
    "REFERENCE_BUDGET_S",
    "REFERENCE_SEED",
    "REFERENCE_TIME_PS",
    "REFERENCE_TIMESTEP_FS",
    "ReferenceCut",
    "TeacherRun",
    "teacher_md",
]


class ReferenceCut(TrajectoryError):
    """The wall-time cap stopped the teacher MD before its first stored frame.

    Attributes ``reached_ps`` (simulated time reached, ps), ``time_ps`` (asked for, ps), ``budget_s`` (s).
    """

    def __init__(self, message: str, reached_ps: float, time_ps: float, budget_s: float):
        super().__init__(message)
        self.reached_ps, self.time_ps, self.budget_s = reached_ps, time_ps, budget_s


@dataclass
class TeacherRun:
    """Frames of a short teacher MD.

    Attributes
    ----------
    positions : ndarray, shape (F, N, 3)
        Å, one row per stored frame (the first is the start, after equilibration).
    time_ps : ndarray, shape (F,)
        Time of each frame, ps from the start of the MD (equilibration included).
    numbers : ndarray, shape (N,)
        Atomic numbers.
    cell : ndarray, shape (3, 3)
        Å; zeros in vacuum.
    pbc : bool
        Whether the cell is periodic.
    temperature_K : float
        Thermostat temperature.
    wall_s : float
        Seconds the MD took.
    budget_reached : bool
        Whether the time budget stopped the MD before ``time_ps``.
    requested_time_ps : float
        Simulated time asked for, ps (equilibration included).
    reached_time_ps : float
        Simulated time reached, ps (``requested_time_ps`` unless ``budget_reached``).
    seed : int
        Seed of the velocities and thermostat noise.
    """

    positions: np.ndarray
    time_ps: np.ndarray
    numbers: np.ndarray
    cell: np.ndarray
    pbc: bool
    temperature_K: float
    wall_s: float
    budget_reached: bool
    requested_time_ps: float = float("nan")
    reached_time_ps: float = float("nan")
    seed: int = 0

    def universe(self):
        """The frames as an MDAnalysis Universe in memory (names ``<symbol><index>``, box when periodic)."""
        import MDAnalysis as mda
        from ase.data import atomic_masses, chemical_symbols
        from MDAnalysis.coordinates.memory import MemoryReader

        symbols = [chemical_symbols[z] for z in self.numbers]
        universe = mda.Universe.empty(
            len(self.numbers), n_residues=1, atom_resindex=[0] * len(self.numbers), trajectory=True
        )
        universe.add_TopologyAttr("elements", symbols)
        universe.add_TopologyAttr("names", [f"{s}{i}" for i, s in enumerate(symbols)])
        universe.add_TopologyAttr("masses", [atomic_masses[z] for z in self.numbers])
        dimensions = Atoms(cell=self.cell, pbc=True).cell.cellpar() if self.pbc else None
        interval = float(self.time_ps[1] - self.time_ps[0]) if len(self.time_ps) > 1 else 1.0
        universe.load_new(self.positions.astype(np.float32), format=MemoryReader, dt=interval, dimensions=dimensions)
        for ts, t in zip(universe.trajectory, self.time_ps, strict=False):
            ts.time = float(t)
        universe.trajectory[0]
        return universe


def teacher_md(
    atoms: Atoms,
    teacher: str | object = "gfn2-xtb",
    temperature_K: float = 300.0,
    time_ps: float = REFERENCE_TIME_PS,
    budget_s: float = REFERENCE_BUDGET_S,
    timestep_fs: float = REFERENCE_TIMESTEP_FS,
    stride: int = 10,
    equilibration_ps: float = 0.25,
    friction_per_fs: float = 0.01,
    seed: int = REFERENCE_SEED,
) -> TeacherRun:
    """A short Langevin MD driven by the teacher: the reference distribution of the internal coordinates.

    Velocities are drawn from the Maxwell-Boltzmann distribution at ``temperature_K`` (centre-of-mass
    motion and, in vacuum, rotation removed); ASE's Langevin integrator then holds that temperature.
    Frames are stored every ``stride`` steps after ``equilibration_ps``. The MD runs a fixed number of
    steps, ``time_ps`` / ``timestep_fs``, from a fixed ``seed``: the same start gives the same frames on
    any machine. ``budget_s`` seconds of wall time are only a safety cap; when it stops the MD early,
    ``budget_reached`` says so and the frames are not that reference (aspirin with GFN2-xTB on one
    thread: 10-15 ms per step, so the default 1.5 ps take 30-45 s).

    Parameters
    ----------
    atoms : ase.Atoms
        Start structure (Å); a periodic cell is kept.
    teacher : str, Teacher or ASE calculator
        A name for :func:`mlff_distiller.teachers.load_teacher` (default GFN2-xTB), a Teacher (its
        calculator is used directly, no label cache), or any ASE calculator.
    temperature_K : float
        Thermostat and initial-velocity temperature, K.
    time_ps : float
        Simulation time asked for, ps (equilibration included).
    budget_s : float
        Wall-time safety cap, s.
    timestep_fs : float
        Time step, fs.
    stride : int
        Steps between stored frames.
    equilibration_ps : float
        Time discarded at the start, ps.
    friction_per_fs : float
        Langevin friction, 1/fs.
    seed : int
        Seed of the velocities and of the thermostat noise.

    Raises
    ------
    ReferenceCut
        When the budget ends before the first stored frame.
    """
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta

    calculator = _calculator(teacher)
    system = atoms.copy()
    system.calc = calculator
    rng = np.random.default_rng(seed)
    thermalize_momenta(system, temperature_K, rng=rng)
    Stationary(system)
    if not system.pbc.any():
        ZeroRotation(system)
    dynamics = Langevin(
        system,
        timestep=timestep_fs * units.fs,
        temperature_K=temperature_K,
        friction=friction_per_fs / units.fs,
        rng=rng,
        fixcm=False,
    )
    steps = int(round(time_ps * 1000.0 / timestep_fs))
    first = int(np.ceil(equilibration_ps * 1000.0 / timestep_fs))
    positions, times = [], []
    start = time.perf_counter()
    step = 0
    while True:
        if step >= first and (step - first) % stride == 0:
            positions.append(system.positions.copy())
            times.append(step * timestep_fs / 1000.0)
        if step >= steps or time.perf_counter() - start > budget_s:
            break
        chunk = min(stride if step >= first else min(stride, first - step), steps - step)
        dynamics.run(chunk)
        step += chunk
    wall = time.perf_counter() - start
    reached = step * timestep_fs / 1000.0
    if not positions:
        raise ReferenceCut(
            f"the teacher MD spent its {budget_s:g} s budget at {reached:.3g} ps, before the end of the "
            f"{equilibration_ps:g} ps equilibration; give it more time or a shorter equilibration",
            reached,
            time_ps,
            budget_s,
        )
    return TeacherRun(
        positions=np.array(positions),
        time_ps=np.array(times),
        numbers=system.numbers.copy(),
        cell=np.array(system.cell[:]),
        pbc=bool(system.pbc.all()),
        temperature_K=float(temperature_K),
        wall_s=wall,
        budget_reached=step < steps,
        requested_time_ps=float(time_ps),
        reached_time_ps=reached,
        seed=int(seed),
    )


def _calculator(teacher):
    if isinstance(teacher, str):
        from ..teachers import load_teacher

        return load_teacher(teacher).calculator
    return getattr(teacher, "calculator", teacher)
