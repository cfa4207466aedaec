"""Run a benchmark plan: every contender on every system, interleaved, within time and memory budgets."""

import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..errors import MLFFDError
from ..inputs import THREADS
from .contenders import (
    ContenderUnavailable,
    LammpsMD,
    bare_model,
    benchmark_student,
    estimated_memory_gb,
    openmm_md,
    openmm_platform_name,
    student_ase_md,
    teacher_ase_md,
)
from .flops import bound_summary, measure_copy_bandwidth, measure_peak_gflops, profile_kernel, step_flops
from .machine import machine_info
from .reporting import md_advance
from .systems import SYSTEM_NAMES, benchmark_system, estimated_edges
from .timing import Advance, Measurement, steps_for

#: Engines a plan can name, in the order they are run and reported: ``md`` is ``mlffd md``'s OpenMM
#: run with its reporters at their default intervals, ``md-no-reporters`` the same run writing nothing.
ENGINES = ("bare", "openmm", "ase", "md", "md-no-reporters", "lammps", "teacher")
#: Engines that run ``mlffd md`` (only on the plan's ``md_systems``).
MD_ENGINES = ("md", "md-no-reporters")
#: Their timed blocks are whole multiples of this many steps, ``mlffd md``'s default checkpoint interval
#: (``MDSettings.checkpoint_interval``, itself a multiple of the report interval): every block then
#: holds the same share of frames and checkpoints, whatever step it starts at.
MD_BLOCK_STEPS = 1000

#: How each teacher's cost grows with the number of atoms (for skipping what would be too slow):
#: GFN2-xTB builds and diagonalises N x N matrices (between N**2 and N**3 at these sizes); SevenNet-0
#: went from 1.29 s on 96 water atoms to 22.8 s on 768 (one thread). Students scale linearly with a
#: cell list, as does any teacher not named here.
SCALING_EXPONENTS = {"gfn2-xtb": 2.0, "sevenn-0": 1.4}


@dataclass
class BenchmarkPlan:
    """What to measure and how long to spend on it.

    Attributes
    ----------
    systems : list of str
        Names from :data:`~mlff_distiller.benchmark.systems.SYSTEM_NAMES`.
    sizes : list of str
        Student sizes (``"standard"``, ``"tiny"``, ``"ultra-tiny"``).
    engines : list of str
        Contenders from :data:`ENGINES`.
    teachers : list of str
        Teachers run with ASE when ``"teacher"`` is among the engines.
    lammps_ranks : list of int
        MPI rank counts of the LAMMPS runs.
    lammps_systems : list of str, optional
        Systems LAMMPS runs on (default: every periodic system of the plan). Each LAMMPS block
        starts a process, so limiting it to large boxes saves most of a full run's time.
    md_systems : list of str, optional
        Systems the ``md`` and ``md-no-reporters`` engines run on (default: every system of the plan).
    timestep_fs : float
        MD time step, fs (ns/day is quoted at this step).
    precision : str
        Student dtype: ``"float32"`` or ``"float64"``.
    platform : str
        OpenMM platform: ``"auto"`` (CUDA when a GPU is present, else Reference), ``"CPU"``, ``"CUDA"``,
        ``"Reference"``.
    kernel : str
        How the students compute on CPU in OpenMM, bare and ASE: ``"auto"`` (the fused C++ kernel
        where it compiles), ``"fused"`` or ``"portable"`` (TorchScript operations).
    threads : list of int
        Thread counts: every contender but LAMMPS (one thread per rank) is measured at each, in the
        same interleaved rounds. Threads of torch, of the fused kernel (bare, OpenMM and ASE), of
        OpenMM's CPU platform and of the teachers (GFN2-xTB's OpenMP, SevenNet-0's torch).
    rounds : int
        Timed blocks per contender, interleaved across contenders; the median is reported.
    teacher_rounds : int, optional
        Timed blocks per teacher (default: ``rounds``): teachers are timed in the first
        ``teacher_rounds`` rounds only, still interleaved with the students. Saves most of a run's
        time when a teacher step takes tens of seconds.
    block_seconds : float
        Target duration of one timed block, s.
    budget_seconds : float
        Time a student contender may spend on one system; when its cost predicted from a smaller
        system exceeds this, it is skipped as too slow.
    teacher_budget_seconds : float
        The same for teachers (larger: the speed-up over the teacher is the point of the exercise).
    memory_limit_gb : float
        Students whose estimated peak memory on a system exceeds this are skipped there.
    max_steps : int
        Upper bound on the MD steps of one block (not for ``mlffd md``, whose blocks are whole multiples
        of :data:`MD_BLOCK_STEPS`).
    seed : int
        Seed of the students' random weights.
    """

    systems: list[str] = field(default_factory=lambda: list(SYSTEM_NAMES))
    sizes: list[str] = field(default_factory=lambda: ["standard", "tiny", "ultra-tiny"])
    engines: list[str] = field(default_factory=lambda: list(ENGINES))
    teachers: list[str] = field(default_factory=lambda: ["gfn2-xtb", "sevenn-0"])
    lammps_ranks: list[int] = field(default_factory=lambda: [1, 2])
    lammps_systems: list[str] | None = None
    md_systems: list[str] | None = None
    timestep_fs: float = 0.5
    precision: str = "float32"
    platform: str = "auto"
    kernel: str = "auto"
    threads: list[int] = field(default_factory=lambda: [1])
    rounds: int = 3
    teacher_rounds: int | None = None
    block_seconds: float = 2.0
    budget_seconds: float = 120.0
    teacher_budget_seconds: float = 600.0
    memory_limit_gb: float = 10.0
    max_steps: int = 2000
    seed: int = 0

    def check(self) -> None:
        """Raise :class:`MLFFDError` for unknown systems, sizes or engines, or non-positive settings."""
        from ..models import PRESETS

        for what, values, known in (
            ("system", self.systems, SYSTEM_NAMES),
            ("size", self.sizes, PRESETS),
            ("engine", self.engines, ENGINES),
            ("system", self.lammps_systems or [], SYSTEM_NAMES),
            ("system", self.md_systems or [], SYSTEM_NAMES),
        ):
            unknown = [v for v in values if v not in known]
            if unknown:
                raise MLFFDError(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(known)}")
        if self.kernel not in ("auto", "fused", "portable"):
            raise MLFFDError(f"unknown kernel '{self.kernel}'; choose auto, fused or portable")
        if self.precision not in ("float32", "float64"):
            raise MLFFDError(f"unknown precision '{self.precision}'; choose float32 or float64")
        if min(self.timestep_fs, self.block_seconds, self.budget_seconds, self.rounds, self.teacher_rounds or 1) <= 0:
            raise MLFFDError("time step, block, budget and rounds must be positive")
        for count in self.threads:
            THREADS.check(count, "threads")
        if not self.threads or len(set(self.threads)) < len(self.threads):
            raise MLFFDError(f"threads must be distinct thread counts, not {self.threads}")

    def rounds_of(self, engine: str) -> int:
        """Timed blocks of a contender of ``engine``."""
        return min(self.rounds, self.teacher_rounds or self.rounds) if engine == "teacher" else self.rounds


#: A plan that runs in seconds: the smallest student, aspirin and the 96-atom box, no LAMMPS.
QUICK_PLAN = BenchmarkPlan(
    systems=["aspirin", "water-96"],
    sizes=["ultra-tiny"],
    engines=["bare", "openmm", "ase", "teacher"],
    teachers=["gfn2-xtb"],
    rounds=2,
    block_seconds=0.15,
    budget_seconds=1.5,
    teacher_budget_seconds=1.5,
    max_steps=50,
)


@dataclass
class BenchmarkResult:
    """Measurements of a plan and the machine they were taken on (``machine["peak_gflops"]`` and
    ``machine["copy_gb_per_s"]``: the measured float32 matrix-product peak, GFLOP/s, and copy bandwidth,
    GB/s, by thread count as a string, when the plan timed the fused kernel)."""

    machine: dict
    plan: dict
    measurements: list[Measurement]

    def to_dict(self) -> dict:
        return {"machine": self.machine, "plan": self.plan, "measurements": [m.to_dict() for m in self.measurements]}

    @classmethod
    def from_dict(cls, data: dict) -> "BenchmarkResult":
        return cls(data["machine"], data["plan"], [Measurement.from_dict(m) for m in data["measurements"]])

    @property
    def thread_counts(self) -> list[int]:
        """The plan's thread counts, in increasing order (``[1]`` for results saved before they were recorded)."""
        threads = self.plan.get("threads", 1)
        return sorted(threads) if isinstance(threads, list) else [threads]

    def find(self, system: str, engine: str, model: str, ranks: int = 1, threads: int = 1) -> Measurement | None:
        """The measurement of one contender on one system, if it was attempted."""
        for m in self.measurements:
            if (m.system, m.engine, m.model, m.ranks, m.threads) == (system, engine, model, ranks, threads):
                return m
        return None


def _contenders(plan: BenchmarkPlan) -> list[tuple[str, str, int, int]]:
    """``(engine, model, ranks, threads)`` of every contender of the plan, in report order (LAMMPS: one
    thread per rank, measured once)."""
    threads = sorted(plan.threads)
    found = []
    for engine in ENGINES:
        if engine not in plan.engines:
            continue
        if engine == "teacher":
            found += [(engine, name, 1, t) for name in plan.teachers for t in threads]
        elif engine == "lammps":
            found += [(engine, size, ranks, 1) for size in plan.sizes for ranks in plan.lammps_ranks]
        else:
            found += [(engine, size, 1, t) for size in plan.sizes for t in threads]
    return found


def run_plan(plan: BenchmarkPlan, progress: Callable[[str], None] | None = None) -> BenchmarkResult:
    """Measure every contender of ``plan`` on every system, smallest system first.

    When the plan times the fused kernel (``bare``), the float32 matrix-product peak and the copy
    bandwidth are measured first at each thread count, the floating-point operations of each bare
    step are counted, and at the fewest threads each bare step is profiled after the timed rounds
    (what bounds it: :func:`~mlff_distiller.benchmark.flops.bound_summary`). On each system the
    contenders (each at each of ``plan.threads``) are set up and warmed up, then timed in
    ``plan.rounds`` interleaved blocks, so that a change in the machine's load hits all of them
    alike; torch's thread count is set to the contender's before each of its blocks. Each ``md``
    block also records the share of its time outside the integrator's steps
    (:attr:`~mlff_distiller.benchmark.timing.Measurement.reporting_share`). A contender whose cost,
    extrapolated from the previous system, would exceed the budget, whose estimated memory exceeds
    the limit, or which cannot run here, is recorded as skipped with the reason; one that raises is
    recorded as failed.

    Parameters
    ----------
    plan : BenchmarkPlan
        What to run.
    progress : callable, optional
        Receives one line per event (default: printed to stderr).
    """
    plan.check()
    progress = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    dtype = torch.float32 if plan.precision == "float32" else torch.float64
    systems = sorted(plan.systems, key=lambda name: len(benchmark_system(name)))
    counted = "bare" in plan.engines and _fused_on_cpu(plan)  # FLOPs of the fused kernel's steps
    peaks, copies = _machine_peaks(plan, progress) if counted else ({}, {})
    last: dict[tuple, tuple[int, float]] = {}  # contender -> (atoms, seconds per step)
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="mlffd-bench-") as scratch:
        for name in systems:
            atoms = benchmark_system(name)
            molecule = not atoms.pbc.any()
            students = {size: benchmark_student(size, dtype, plan.seed, molecule) for size in plan.sizes}
            flops = {size: step_flops(student, atoms).total for size, student in students.items()} if counted else {}
            progress(f"{name}: {len(atoms)} atoms")
            timed: list[tuple[Measurement, Advance, int]] = []
            estimates: dict[tuple, float] = {}  # this system's warm-up estimates, s/step
            for engine, model, ranks, threads in _contenders(plan):
                measurement = Measurement(name, len(atoms), engine, model, ranks, plan.timestep_fs, threads=threads)
                measurement.flops = flops.get(model) if engine == "bare" else None
                measurements.append(measurement)
                key = (engine, model, ranks, threads)
                reason = _skip_reason(plan, key, name, atoms, students, last, estimates)
                if reason:
                    measurement.status = f"skipped: {reason}"
                    progress(f"  {measurement.contender}: {measurement.status}")
                    continue
                try:
                    torch.set_num_threads(threads)
                    folder = Path(scratch) / name / f"{engine}-{model}-{threads}"  # LAMMPS: one export for all ranks
                    advance = _prepare(plan, engine, model, ranks, threads, atoms, students, folder)
                    seconds = _warm_up(advance, engine, plan.block_seconds)
                    estimates[key] = seconds
                except ContenderUnavailable as exc:
                    measurement.status = f"skipped: {exc}"
                    progress(f"  {measurement.contender}: {measurement.status}")
                    continue
                except Exception as exc:  # a contender that breaks must not stop the others
                    measurement.status = f"failed: {_first_line(exc)}"
                    progress(f"  {measurement.contender}: {measurement.status}")
                    continue
                steps = _block_steps(plan, engine, seconds)
                timed.append((measurement, advance, steps))
                progress(
                    f"  {measurement.contender}: ready, ~{seconds * 1e3:.1f} ms/step, "
                    f"{plan.rounds_of(engine)} blocks of {steps} steps"
                )
            for round_index in range(plan.rounds):
                for measurement, advance, steps in timed:
                    if round_index >= plan.rounds_of(measurement.engine) or measurement.status != "ok":
                        continue
                    try:
                        torch.set_num_threads(measurement.threads)
                        seconds = advance(steps)
                        measurement.seconds_per_step.append(seconds / steps)
                        measurement.steps += steps
                        if measurement.engine == "md":  # the same block's share outside the integrator
                            measurement.reporting_share.append(advance.last_reporting_seconds / seconds)
                    except Exception as exc:
                        measurement.status = f"failed: {_first_line(exc)}"
            for measurement, _, _ in timed:
                if measurement.ok and measurement.flops and measurement.threads == min(plan.threads):
                    measurement.bound = _bound(
                        plan, students[measurement.model], atoms, measurement.threads, peaks, copies
                    )
                if measurement.ok:
                    key = (measurement.engine, measurement.model, measurement.ranks, measurement.threads)
                    last[key] = (measurement.atoms, min(measurement.seconds_per_step))
                    progress(
                        f"  {measurement.contender}: {measurement.ms_per_step:.3f} ms/step, "
                        f"{measurement.us_per_atom_step:.2f} us/atom/step, {measurement.ns_per_day:.3f} ns/day"
                        + (f", {share:.2f} % reporting" if (share := measurement.reporting_percent) is not None else "")
                    )
                else:
                    progress(f"  {measurement.contender}: {measurement.status}")
            del timed
    machine = machine_info()
    if peaks:
        machine.update(peak_gflops=peaks, copy_gb_per_s=copies)
    return BenchmarkResult(machine, asdict(plan), measurements)


def _machine_peaks(plan: BenchmarkPlan, progress: Callable[[str], None]) -> tuple[dict, dict]:
    """The float32 matrix-product peak (GFLOP/s, best over a block) and the copy bandwidth (GB/s, over
    half a block) on each of the plan's thread counts, keyed by the count as a string."""
    peaks, copies = {}, {}
    for threads in sorted(plan.threads):
        peaks[str(threads)] = measure_peak_gflops(threads, plan.block_seconds)
        copies[str(threads)] = measure_copy_bandwidth(threads, plan.block_seconds / 2)
        progress(
            f"{threads} thread(s): float32 matrix-product peak {peaks[str(threads)]:.1f} GFLOP/s, "
            f"copy {copies[str(threads)]:.1f} GB/s"
        )
    return peaks, copies


def _block_steps(plan: BenchmarkPlan, engine: str, seconds: float) -> int:
    """MD steps of one timed block of a contender of ``engine`` whose step takes about ``seconds``: a block's
    worth (LAMMPS: at least 2 s, as each block starts a process), at most ``plan.max_steps``; for
    ``mlffd md``, the nearest whole number of :data:`MD_BLOCK_STEPS` (at least one)."""
    block = plan.block_seconds if engine != "lammps" else max(plan.block_seconds, 2.0)
    if engine in MD_ENGINES:
        return MD_BLOCK_STEPS * max(1, round(block / max(seconds, 1e-9) / MD_BLOCK_STEPS))
    return steps_for(seconds, block, plan.max_steps)


def _bound(plan: BenchmarkPlan, student, atoms, threads: int, peaks: dict, copies: dict) -> str:
    """What bounds the fused kernel's step of ``student`` on ``atoms``: :func:`bound_summary` of a profile
    over about half a block (after the timed rounds), or why it could not be profiled."""
    try:
        profile = profile_kernel(
            student, atoms, threads, plan.block_seconds / 2, peaks[str(threads)], copies[str(threads)]
        )
    except Exception as exc:  # the measurement stands without its profile
        return f"not profiled: {_first_line(exc)}"
    return bound_summary(profile)


def _fused_on_cpu(plan: BenchmarkPlan) -> bool:
    """Whether the plan's bare model is the fused kernel on the CPU."""
    from ..models.kernel import resolve_kernel

    return openmm_platform_name(plan.platform) != "CUDA" and resolve_kernel(plan.kernel) == "fused"


def _first_line(exc: Exception) -> str:
    """``"TypeName: first line of the message"``."""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _skip_reason(plan, key, name, atoms, students, last, estimates) -> str | None:
    """Why the contender ``key`` = ``(engine, model, ranks, threads)`` should not run on system ``name``
    (not planned, too big or too slow), or None.

    The cost is extrapolated from the contender's last system (:data:`SCALING_EXPONENTS`) or,
    for a contender new at this size, taken from the bare model's warm-up on this system at the
    same thread count.
    """
    engine, model, _, threads = key
    if engine == "lammps" and plan.lammps_systems is not None and name not in plan.lammps_systems:
        return "LAMMPS not planned on this system (--lammps-systems)"
    if engine in MD_ENGINES and plan.md_systems is not None and name not in plan.md_systems:
        return "mlffd md not planned on this system (--md-systems)"
    if engine != "teacher":
        student = students[model]
        memory = estimated_memory_gb(student, estimated_edges(atoms, student.cutoff))
        if memory > plan.memory_limit_gb:
            return f"needs ~{memory:.0f} GB (limit {plan.memory_limit_gb:g} GB)"
    previous = last.get(key)
    predicted = estimates.get(("bare", model, 1, threads))
    if previous is not None:
        previous_atoms, seconds = previous
        exponent = SCALING_EXPONENTS.get(model, 1.0) if engine == "teacher" else 1.0
        predicted = seconds * (len(atoms) / previous_atoms) ** exponent
    budget = plan.teacher_budget_seconds if engine == "teacher" else plan.budget_seconds
    steps = MD_BLOCK_STEPS * plan.rounds if engine in MD_ENGINES else plan.rounds_of(engine) + 1
    if predicted is not None and predicted * steps > budget:
        return f"too slow (~{predicted:.3g} s/step predicted; budget {budget:g} s)"
    return None


def _prepare(plan, engine, model, ranks, threads, atoms, students, folder: Path) -> Advance:
    """The :data:`Advance` of one contender on ``atoms``."""
    if engine == "bare":
        device = "cuda" if openmm_platform_name(plan.platform) == "CUDA" else "cpu"
        return bare_model(students[model], atoms, device, plan.kernel, threads)
    if engine == "openmm":
        return openmm_md(students[model], atoms, plan.timestep_fs, plan.platform, plan.kernel, threads)
    if engine == "ase":
        return student_ase_md(students[model], atoms, plan.timestep_fs, plan.kernel, threads)
    if engine in MD_ENGINES:
        return md_advance(students[model], atoms, plan.timestep_fs, folder, threads, reporters=engine == "md")
    if engine == "lammps":
        return LammpsMD(students[model], atoms, plan.timestep_fs, ranks, folder)
    return teacher_ase_md(model, atoms, plan.timestep_fs, threads)


def _warm_up(advance: Advance, engine: str, block_seconds: float) -> float:
    """Run the first steps (TorchScript profiling runs, first SCF) and return an estimate of s/step.

    One step only when it already takes longer than a block (large systems: the set-up costs
    are then negligible; never for ``mlffd md``, whose first step writes the run's first frame)
    and for LAMMPS (which sets up in a ``run 0`` before every timed run).
    """
    first = advance(1)
    if engine in ("lammps", "teacher") or (first > block_seconds and engine not in MD_ENGINES):
        return first
    advance(2)
    return advance(2) / 2
