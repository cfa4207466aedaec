"""The performance targets of the project, evaluated on a :class:`~mlff_distiller.benchmark.suite.BenchmarkResult`.

Every figure is a ratio of two measurements taken in the same run, so that the machine's
speed and load cancel out. Ratios of two contenders also come with their range over the rounds
(each round times every contender once, back to back): how far the machine's drift moved them.
"""

from dataclasses import dataclass

from .suite import BenchmarkResult
from .timing import Measurement


@dataclass
class TargetCheck:
    """One target: its figure, the goal, the measured value (None when not measurable) and the details.

    ``higher_is_better`` tells whether ``value`` must reach ``goal`` from above or stay below it;
    ``unit`` follows the goal in words (default: ``"x"`` for a speed-up, nothing for a bound).
    """

    figure: str
    goal: float
    higher_is_better: bool
    value: float | None
    detail: str
    unit: str | None = None

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "not measured"
        met = self.value >= self.goal if self.higher_is_better else self.value <= self.goal
        return "met" if met else "missed"

    @property
    def goal_text(self) -> str:
        unit = self.unit if self.unit is not None else ("x" if self.higher_is_better else "")
        return f"{'≥' if self.higher_is_better else '≤'} {self.goal:g}{unit}"


def _ratio(numerator: Measurement | None, denominator: Measurement | None) -> float | None:
    if numerator is None or denominator is None or not (numerator.ok and denominator.ok):
        return None
    return numerator.ms_per_step / denominator.ms_per_step


def _rounds(numerator: Measurement | None, denominator: Measurement | None) -> str:
    """The range of the per-round ratios, e.g. ``" (rounds 1.55-1.92)"``; empty for fewer than two rounds."""
    if numerator is None or denominator is None or not (numerator.ok and denominator.ok):
        return ""
    ratios = [a / b for a, b in zip(numerator.seconds_per_step, denominator.seconds_per_step, strict=False)]
    return f" (rounds {min(ratios):.3g}-{max(ratios):.3g})" if len(ratios) > 1 else ""


def _worst(pairs: list[tuple[str, float | None, str]], higher_is_better: bool) -> tuple[float | None, str]:
    """The worst value of (label, value, note) triples, and every value in words (with its note)."""
    measured = [(label, value, note) for label, value, note in pairs if value is not None]
    if not measured:
        return None, "missing measurements"
    label, value, _ = (min if higher_is_better else max)(measured, key=lambda triple: triple[1])
    details = ", ".join(f"{lbl} {val:.3g}{note}" for lbl, val, note in measured)
    return value, f"worst: {label}; all: {details}" if len(measured) > 1 else details


def _compared(
    label: str, numerator: Measurement | None, denominator: Measurement | None
) -> tuple[str, float | None, str]:
    return label, _ratio(numerator, denominator), _rounds(numerator, denominator)


def speedup_over_teacher(result: BenchmarkResult, system: str, size: str, teacher: str = "gfn2-xtb") -> TargetCheck:
    """Teacher's ASE MD step over the student's OpenMM MD step on ``system``."""
    goal = 50.0 if size == "standard" else 10.0
    teacher_md, student_md = result.find(system, "teacher", teacher), result.find(system, "openmm", size)
    value = _ratio(teacher_md, student_md)
    detail = (
        f"{teacher} (ASE) / {size} (OpenMM){_rounds(teacher_md, student_md)}"
        if value is not None
        else "missing measurements"
    )
    return TargetCheck(f"{size} student over {teacher}, {system}, per MD step", goal, True, value, detail)


def openmm_over_bare(result: BenchmarkResult, system: str = "aspirin") -> TargetCheck:
    """OpenMM MD step over the bare energy + forces call of the same module, worst student size."""
    sizes = result.plan["sizes"]
    pairs = [_compared(size, result.find(system, "openmm", size), result.find(system, "bare", size)) for size in sizes]
    value, detail = _worst(pairs, higher_is_better=False)
    return TargetCheck(f"OpenMM step over bare model energy+forces, {system}", 1.10, False, value, detail)


def openmm_over_ase(result: BenchmarkResult, system: str = "aspirin") -> TargetCheck:
    """ASE MD step with the student calculator over the OpenMM MD step, worst student size."""
    pairs = [
        _compared(size, result.find(system, "ase", size), result.find(system, "openmm", size))
        for size in result.plan["sizes"]
    ]
    value, detail = _worst(pairs, higher_is_better=True)
    return TargetCheck(f"OpenMM over ASE driving the same student, {system}", 2.0, True, value, detail)


def thread_speedup(result: BenchmarkResult, system: str, size: str, goal: float, threads: int = 2) -> TargetCheck:
    """Step on 1 thread over ``threads`` threads of the fused kernel (bare and OpenMM; worst of the two),
    with ASE's ratio in the details (its Python integrator does not split over threads)."""
    pairs = [
        _compared(engine, result.find(system, engine, size), result.find(system, engine, size, threads=threads))
        for engine in ("bare", "openmm")
    ]
    value, detail = _worst(pairs, higher_is_better=True)
    ase = _ratio(result.find(system, "ase", size), result.find(system, "ase", size, threads=threads))
    if value is not None and ase is not None:
        detail += f"; ase {ase:.3g} (not counted)"
    return TargetCheck(f"{threads} threads over 1, {size}, {system} (fused kernel)", goal, True, value, detail)


def percent_of_peak(result: BenchmarkResult, system: str, size: str, goal: float) -> TargetCheck:
    """Achieved GFLOP/s of the fused kernel's energy and forces (bare model, 1 thread) as a percentage
    of the float32 matrix-product peak measured on 1 thread in the same run."""
    bare = result.find(system, "bare", size)
    peak = result.machine.get("peak_gflops", {}).get("1")
    achieved = bare.gflops_per_second if bare is not None else None
    figure = f"{size} on {system}: fused kernel's GFLOP/s, % of one core's float32 matrix-product peak"
    if achieved is None or not peak:
        return TargetCheck(figure, goal, True, None, "missing measurements", " %")
    detail = f"{achieved:.3g} of {peak:.3g} GFLOP/s; {bare.flops / 1e6:.3g} MFLOP in {bare.ms_per_step:.3g} ms"
    detail += f"; profile: {bare.bound}" if bare.bound else ""
    return TargetCheck(figure, goal, True, 100.0 * achieved / peak, detail, " %")


def reporting_overhead(result: BenchmarkResult, system: str = "aspirin", size: str = "ultra-tiny") -> TargetCheck:
    """ns/day lost to ``mlffd md``'s reporters at their default intervals, % (1 thread): the median over its
    blocks of the share of the run's wall time spent outside its integrator's steps, measured within each
    block (two contenders' separate blocks differ by the machine's load more than the target allows)."""
    with_reporters = result.find(system, "md", size)
    without = result.find(system, "md-no-reporters", size)
    value = with_reporters.reporting_percent if with_reporters is not None else None
    detail = "missing measurements"
    if value is not None:
        shares = with_reporters.reporting_share
        detail = "share of the run's wall time outside its integrator steps, same blocks"
        detail += f" (rounds {100 * min(shares):.2g} to {100 * max(shares):.2g} %)" if len(shares) > 1 else ""
        detail += f"; {with_reporters.ms_per_step:.3g} ms/step with reporters"
        if without is not None and without.ok:
            detail += f", {without.ms_per_step:.3g} without (separate blocks, subject to load)"
    figure = f"reporting overhead of mlffd md at default intervals, {system} {size}, % of ns/day"
    return TargetCheck(figure, 3.0, False, value, detail, " %")


def linear_scaling(result: BenchmarkResult, engine: str = "openmm", low: int = 1000, high: int = 16000) -> TargetCheck:
    """Largest over smallest µs/atom/step between ``low`` and ``high`` atoms, worst student size."""
    pairs = []
    for size in result.plan["sizes"]:
        values = [
            m.us_per_atom_step
            for m in result.measurements
            if m.engine == engine and m.model == size and m.threads == 1 and m.ok and low <= m.atoms <= high
        ]
        if len(values) >= 2:
            pairs.append((size, max(values) / min(values), ""))
    value, detail = _worst(pairs, higher_is_better=False)
    return TargetCheck(f"µs/atom/step spread, {low:,} to {high:,} atoms ({engine})", 1.5, False, value, detail)


def lammps_rank_speedup(result: BenchmarkResult, min_atoms: int = 4000) -> TargetCheck:
    """LAMMPS step on 1 rank over 2 ranks on systems of at least ``min_atoms`` atoms, worst case."""
    pairs = []
    for m in result.measurements:
        if m.engine == "lammps" and m.ranks == 1 and m.atoms >= min_atoms:
            pairs.append(_compared(f"{m.model} {m.system}", m, result.find(m.system, "lammps", m.model, 2)))
    value, detail = _worst(pairs, higher_is_better=True)
    return TargetCheck(f"LAMMPS 2 ranks over 1 rank, ≥ {min_atoms:,} atoms", 1.7, True, value, detail)


def check_targets(result: BenchmarkResult) -> list[TargetCheck]:
    """All project targets (see the performance issues), in the order the report lists them; all but
    the thread scaling on the 1-thread measurements."""
    return [
        speedup_over_teacher(result, "water-192", "standard"),
        speedup_over_teacher(result, "aspirin", "ultra-tiny"),
        openmm_over_bare(result),
        openmm_over_ase(result),
        linear_scaling(result),
        lammps_rank_speedup(result),
        thread_speedup(result, "water-1536", "standard", 1.7),
        thread_speedup(result, "aspirin", "standard", 1.3),
        percent_of_peak(result, "water-1536", "standard", 50.0),
        percent_of_peak(result, "aspirin", "standard", 35.0),
        reporting_overhead(result),
    ]
