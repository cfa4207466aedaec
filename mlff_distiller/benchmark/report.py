"""The benchmark report: a Markdown page with the machine, the targets, the speed-up over each teacher, the
thread scaling, the fused kernel's GFLOP/s against the machine's peak, the reporting cost of ``mlffd md``,
all measurements and two plots."""

import itertools
import json
import os
from pathlib import Path

from ..safe_write import safe_write_text, staged_file
from .suite import ENGINES, BenchmarkResult
from .targets import check_targets
from .timing import Measurement

#: Student engines in the speed-up plot (``bare`` is no MD; ``mlffd md`` is OpenMM with reporters).
ENGINES_PLOTTED = ("openmm", "ase", "lammps")
#: File names of the plots, inside the image folder.
SPEEDUP_PLOT = "bench_speedup.png"
SCALING_PLOT = "bench_scaling.png"

#: What each teacher is, in the report's words.
TEACHER_NOTES = {
    "gfn2-xtb": "GFN2-xTB (tblite): semi-empirical tight binding, the students' teacher; its OpenMP threads.",
    "sevenn-0": "SevenNet-0 (`sevenn` extra, weights in its wheel, 842,623 parameters): a foundation MLIP, what a "
    "user would otherwise run; on torch's threads, without a tensor-product accelerator (those are GPU libraries).",
}
#: How the thread table is read.
THREADS_TEXT = (
    "A contender's step time at the fewest threads over its step time at more, in the same run (rounds "
    "interleaved). The fused kernel (bare, OpenMM, ASE) splits its per-atom and per-edge work over the threads; "
    "ASE's integrator and OpenMM's Reference platform stay serial; LAMMPS scales by MPI ranks (see the targets). "
    "On a small molecule a step is a few dozen joins of microseconds of work each, and the serial parts (the "
    "call into the model, the pair search, the engine's own step) are a larger share: threads pay off on boxes "
    "of a thousand atoms and more."
)

#: How the GFLOP/s table is read.
FLOPS_TEXT = (
    "Floating-point operations of one energy-and-forces evaluation by the fused kernel, counted from the "
    "architecture and the system's edge count (`mlff_distiller.benchmark.flops.step_flops`: forward and reverse, "
    "a multiply and an add 2), over the bare model's median time per step: achieved GFLOP/s, and in brackets "
    "its percentage of a large float32 matrix product (`torch.mm`) on as many threads, measured in the same run."
)
#: How the reporting table is read.
REPORTING_TEXT = (
    "`mlffd md`'s run at its default intervals (an H5MD frame and a CSV row every 100 steps, each frame one "
    "more evaluation of the model; a checkpoint every 1,000). **Reporting share**: the share of that run's wall "
    "time spent outside its integrator's steps (frames, writes, checkpoints, checks), measured within each of "
    "its timed blocks: the median and the range over the blocks; the target uses it. For reference only, the "
    "ns/day of that run and of the same run writing nothing: they are timed in separate blocks, so their "
    "difference is subject to the machine's load between the blocks, not only to the reporters. A frame needs "
    "the energy and forces of its own positions, which OpenMM does not keep from the step before, so each "
    "frame evaluates the model once more: at one frame per 100 steps that alone is about 1 % of the run, "
    "more where a step is cheap; the rest is the H5MD and CSV rows, the file flush after every frame, the "
    "checkpoints and the checks for an exploding run."
)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _teachers(result: BenchmarkResult) -> list[str]:
    """The teachers the plan ran."""
    return [t for t in result.plan["teachers"] if "teacher" in result.plan["engines"]]


def _speedup(result: BenchmarkResult, m: Measurement, teacher: str) -> float | None:
    """The teacher's step over the student contender ``m``'s, on the same system at the same thread count."""
    reference = result.find(m.system, "teacher", teacher, threads=m.threads)
    if m.engine == "teacher" or not m.ok or reference is None or not reference.ok:
        return None
    return reference.ms_per_step / m.ms_per_step


def measurement_table(result: BenchmarkResult) -> str:
    """Markdown table: system, atoms, contender, ms/step, ns/day, µs/atom/step, speed-up over each teacher
    (at the contender's thread count), status.

    Contenders the plan did not ask for on a system (e.g. LAMMPS outside ``--lammps-systems``) are left out.
    """
    teachers = _teachers(result)
    header = (
        ["system", "atoms", "contender", "ms/step", "ns/day", "µs/atom/step"]
        + [f"× {t}" for t in teachers]
        + ["status"]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m in result.measurements:
        if "not planned" in m.status:
            continue
        speedups = [_number(_speedup(result, m, teacher)) for teacher in teachers]
        cells = [
            m.system,
            str(m.atoms),
            m.contender,
            _number(m.ms_per_step),
            _number(m.ns_per_day),
            _number(m.us_per_atom_step),
        ]
        lines.append("| " + " | ".join(cells + speedups + [m.status]) + " |")
    return "\n".join(lines)


def _grid(labels: list[str], systems: list[str], rows: list[tuple[list[str], list[str]]]) -> str | None:
    """Markdown table of ``rows`` (label cells, one cell per system), without the rows and the system
    columns that hold nothing (``"-"``); None when nothing is left."""
    rows = [(left, cells) for left, cells in rows if any(cell != "-" for cell in cells)]
    keep = [k for k in range(len(systems)) if any(cells[k] != "-" for _, cells in rows)]
    if not rows or not keep:
        return None
    header = labels + [systems[k] for k in keep]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(left + [cells[k] for k in keep]) + " |" for left, cells in rows]
    return "\n".join(lines)


def _systems(result: BenchmarkResult) -> list[str]:
    """The systems of the measurements, in their order."""
    return list(dict.fromkeys(m.system for m in result.measurements))


def teacher_table(result: BenchmarkResult, teacher: str) -> str | None:
    """Markdown table of the speed-up over ``teacher`` of each student size, engine and thread count
    (rows) on each system where the teacher was measured (columns), the teacher's own ms/step first;
    None when the teacher was measured nowhere."""
    systems = _systems(result)
    rows = []
    for threads in result.thread_counts:
        steps = [result.find(s, "teacher", teacher, threads=threads) for s in systems]
        rows.append(([f"({teacher}, ms/step)", "ase", str(threads)], [_number(m and m.ms_per_step) for m in steps]))
    contenders = dict.fromkeys((m.model, m.engine, m.ranks, m.threads) for m in result.measurements)
    for size in result.plan["sizes"]:
        for model, engine, ranks, threads in contenders:
            if model == size:
                steps = [result.find(s, engine, model, ranks, threads) for s in systems]
                label = f"{engine} ({ranks} ranks)" if ranks > 1 else engine
                rows.append(([size, label, str(threads)], [_number(m and _speedup(result, m, teacher)) for m in steps]))
    if not any(cell != "-" for cell in rows[0][1]):
        return None
    return _grid(["student", "engine", "threads"], systems, rows)


def thread_table(result: BenchmarkResult) -> str | None:
    """Markdown table of the thread scaling: a contender's step at the plan's fewest threads over its step
    at each other count, per model and engine (rows) and system (columns); None for one thread count."""
    base, *others = result.thread_counts
    systems, rows = _systems(result), []
    present = {(m.model, m.engine) for m in result.measurements}
    for model, engine in itertools.product(result.plan["sizes"] + _teachers(result), ENGINES):
        if (model, engine) not in present or engine == "lammps":
            continue
        for threads in others:
            cells = []
            for system in systems:
                one = result.find(system, engine, model, threads=base)
                many = result.find(system, engine, model, threads=threads)
                ok = one is not None and many is not None and one.ok and many.ok
                cells.append(_number(one.ms_per_step / many.ms_per_step) if ok else "-")
            rows.append(([model, engine, f"{threads} over {base}"], cells))
    return _grid(["model", "engine", "threads"], systems, rows)


def teacher_sections(result: BenchmarkResult) -> list[str]:
    """A report section per measured teacher: :func:`teacher_table` and what the teacher is."""
    sections = []
    for teacher in _teachers(result):
        table = teacher_table(result, teacher)
        if table:
            note = TEACHER_NOTES.get(teacher, "")
            sections.append(
                f"## × {teacher}\n\nThe teacher's ASE MD step time over the student's, on the same system at "
                f"the same thread count. {note}\n\n{table}"
            )
    return sections


def _peaks_text(peaks: dict, unit: str) -> str:
    return (
        ", ".join(
            f"{value:.3g} {unit} on {threads} thread{'s' if threads != '1' else ''}" for threads, value in peaks.items()
        )
        or "-"
    )


def flops_table(result: BenchmarkResult) -> str | None:
    """Markdown table of the fused kernel's achieved GFLOP/s and, in brackets, its percentage of the
    matrix-product peak on as many threads, per student size and thread count (rows) and system
    (columns), after a row of MFLOP per step per size; None where nothing was counted."""
    peaks = result.machine.get("peak_gflops", {})
    systems, rows = _systems(result), []
    for size in result.plan["sizes"]:
        bare = {t: [result.find(s, "bare", size, threads=t) for s in systems] for t in result.thread_counts}
        counts = [
            next((m.flops for ms in bare.values() if (m := ms[k]) and m.flops), None) for k in range(len(systems))
        ]
        rows.append(([size, "MFLOP/step"], [_number(f and f / 1e6) for f in counts]))
        for threads, steps in bare.items():
            cells = []
            for m in steps:
                rate, peak = m and m.gflops_per_second, peaks.get(str(threads))
                cells.append(_number(rate) + (f" ({100 * rate / peak:.0f} %)" if rate and peak else ""))
            rows.append(([size, str(threads)], cells))
    if not any(m.flops for m in result.measurements):
        return None
    return _grid(["student", "threads"], systems, rows)


def bound_list(result: BenchmarkResult) -> str:
    """A Markdown list of what bounds each profiled step (student, system, threads: the profile), after a
    blank line and a sentence; empty when nothing was profiled."""
    lines = [f"- {m.model}, {m.system}, {m.threads} thread(s): {m.bound}" for m in result.measurements if m.bound]
    if not lines:
        return ""
    return (
        "\n\nWhat bounds each step: the same call profiled after the timed rounds (its own best time; the "
        "kernel's phases, bytes touched against the measured copy bandwidth, the per-edge working set "
        "against the L2 cache; `mlff_distiller.benchmark.flops.bound_summary`).\n\n" + "\n".join(lines)
    )


def reporting_table(result: BenchmarkResult) -> str | None:
    """Markdown table of ``mlffd md``'s reporting cost, one row per student size, thread count and system:
    the median in-run reporting share (%) and its range over the blocks, and the ns/day with and without
    reporters (separate blocks); None where ``mlffd md`` was not measured."""
    lines = []
    for size in result.plan["sizes"]:
        for threads in result.thread_counts:
            for system in _systems(result):
                loud = result.find(system, "md", size, threads=threads)
                quiet = result.find(system, "md-no-reporters", size, threads=threads)
                if not any(m is not None and m.ok for m in (loud, quiet)):
                    continue
                share = loud.reporting_percent if loud is not None else None
                spread = (
                    f"{100 * min(loud.reporting_share):.2g}-{100 * max(loud.reporting_share):.2g} %"
                    if share is not None
                    else "-"
                )
                cells = [
                    "-" if share is None else f"{share:.2g} %",
                    spread,
                    *(_number(m.ns_per_day if m is not None else None) for m in (loud, quiet)),
                ]
                lines.append(f"| {size} | {threads} | {system} | " + " | ".join(cells) + " |")
    if not lines:
        return None
    header = (
        "| student | threads | system | reporting share (median) | over the blocks "
        "| ns/day with reporters | ns/day without (separate blocks, subject to load) |"
    )
    return "\n".join([header, "|" + "---|" * 7, *lines])


def target_table(result: BenchmarkResult) -> str:
    """Markdown table of :func:`~mlff_distiller.benchmark.targets.check_targets`."""
    lines = ["| figure | target | measured | verdict | details |", "|---|---|---|---|---|"]
    for check in check_targets(result):
        lines.append(
            f"| {check.figure} | {check.goal_text} | {_number(check.value)} | {check.verdict} | {check.detail} |"
        )
    return "\n".join(lines)


def machine_table(machine: dict, plan: dict) -> str:
    """Markdown table of the machine, threads, settings and versions."""
    threads = plan["threads"] if isinstance(plan["threads"], list) else [plan["threads"]]
    usable = f", {machine['usable_cores']} usable by this process" if "usable_cores" in machine else ""
    rows = [
        ("CPU", f"{machine['cpu']}, {machine['cores']} logical cores{usable}"),
        ("GPU", machine["gpu"] or "none"),
        (
            "threads",
            f"each contender at {' and '.join(map(str, sorted(threads)))} (torch, fused kernel, OpenMM CPU "
            f"platform, teachers); LAMMPS 1 per rank; OMP_NUM_THREADS={machine['omp_num_threads']}",
        ),
        *(
            [
                ("float32 matrix-product peak (measured at the start)", _peaks_text(machine["peak_gflops"], "GFLOP/s")),
                ("copy bandwidth (measured at the start)", _peaks_text(machine.get("copy_gb_per_s", {}), "GB/s")),
            ]
            if machine.get("peak_gflops")
            else []
        ),
        ("load average (1 min, at the end)", str(machine["load_average_1min"])),
        ("student precision / time step", f"{plan['precision']} / {plan['timestep_fs']} fs"),
        ("student kernel on CPU (OpenMM, bare, ASE)", plan.get("kernel", "portable")),
        (
            "OpenMM platform",
            plan["platform"] + (" (Reference here)" if plan["platform"] == "auto" and not machine["gpu"] else ""),
        ),
        (
            "timed blocks per contender",
            f"{plan['rounds']} of ~{plan['block_seconds']} s, interleaved; median reported"
            + (f"; teachers: the first {plan['teacher_rounds']}" if plan.get("teacher_rounds") else ""),
        ),
        ("date", machine["date_utc"]),
        ("versions", ", ".join(f"{name} {version}" for name, version in machine["versions"].items())),
    ]
    return "\n".join(["| | |", "|---|---|"] + [f"| {key} | {value} |" for key, value in rows])


def print_result(result: BenchmarkResult, json_path: Path | None = None) -> None:
    """Print the machine, target and measurement tables; also write the raw measurements to ``json_path``."""
    print(machine_table(result.machine, result.plan), target_table(result), measurement_table(result), sep="\n\n")
    if json_path is not None:
        safe_write_text(json_path, json.dumps(result.to_dict(), indent=2), overwrite=True)


def plot_speedups(result: BenchmarkResult, path: Path) -> Path | None:
    """Bar charts of the speed-up of every student MD engine (OpenMM, ASE, LAMMPS) over each measured teacher
    (one panel per teacher), per system, at the contender's thread count (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    for teacher in _teachers(result):
        systems = list(
            dict.fromkeys(
                m.system for m in result.measurements if m.engine == "teacher" and m.model == teacher and m.ok
            )
        )
        contenders = [m for m in result.measurements if m.system in systems and m.engine in ENGINES_PLOTTED and m.ok]
        if contenders:
            panels.append((teacher, systems, list(dict.fromkeys(m.contender for m in contenders))))
    if not panels:
        return None
    names = list(dict.fromkeys(name for _, _, contenders in panels for name in contenders))
    colours = {name: plt.get_cmap("tab20")(index % 20) for index, name in enumerate(names)}
    bars = max(len(systems) * len(contenders) for _, systems, contenders in panels)
    figure, axes = plt.subplots(len(panels), 1, figsize=(max(7.0, bars / 4) + 2.5, 4.5 * len(panels)), squeeze=False)
    for axis, (teacher, systems, contenders) in zip(axes[:, 0], panels, strict=True):
        width = 0.8 / len(contenders)
        for index, contender in enumerate(contenders):
            heights = []
            for system in systems:
                m = next((x for x in result.measurements if x.system == system and x.contender == contender), None)
                heights.append((_speedup(result, m, teacher) or 0.0) if m else 0.0)
            x = [k + index * width for k in range(len(systems))]
            axis.bar(x, heights, width, label=contender, color=colours[contender])
        one_thread = [result.find(system, "teacher", teacher) for system in systems]
        axis.set_xticks([k + 0.4 - width / 2 for k in range(len(systems))])
        axis.set_xticklabels(
            [
                f"{s}\n({m.ms_per_step:.3g} ms, 1 thread)" if m and m.ok else s
                for s, m in zip(systems, one_thread, strict=True)
            ]
        )
        axis.set_yscale("log")
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_ylabel(f"speed-up over {teacher} per MD step")
        axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        axis.set_title(f"Students over {teacher} (ASE MD), same threads, same run", fontsize=10)
    figure.tight_layout()
    return _save(figure, path)


def plot_scaling(result: BenchmarkResult, path: Path) -> Path | None:
    """µs/atom/step against atoms, log-log, one line per contender at the plan's fewest threads (``mlffd md``,
    timed for its reporting cost, left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: dict[str, list] = {}
    for m in result.measurements:
        if m.ok and m.threads == result.thread_counts[0] and not m.engine.startswith("md"):
            lines.setdefault(m.contender, []).append((m.atoms, m.us_per_atom_step))
    if not lines:
        return None
    figure, axes = plt.subplots(figsize=(7.0, 4.8))
    for contender, points in lines.items():
        points.sort()
        style = "s--" if contender.startswith("teacher") else "o-"
        axes.plot([p[0] for p in points], [p[1] for p in points], style, label=contender, markersize=4)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("atoms")
    axes.set_ylabel("µs per atom per MD step")
    axes.set_title("Cost per atom (flat = linear scaling)")
    axes.legend(fontsize=7, ncol=2)
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)


def _save(figure, path: Path) -> Path:
    """Save and close ``figure`` as the PNG ``path`` (written beside it, then renamed into place)."""
    import matplotlib.pyplot as plt

    try:
        with staged_file(path, overwrite=True) as staged:
            figure.savefig(staged, dpi=120)
    finally:
        plt.close(figure)
    return path


def write_report(result: BenchmarkResult, markdown: Path, images: Path, command: str) -> list[Path]:
    """Write the Markdown report and its plots; returns the written files.

    Parameters
    ----------
    result : BenchmarkResult
        What was measured.
    markdown : Path
        The Markdown file to write.
    images : Path
        Folder for :data:`SPEEDUP_PLOT` and :data:`SCALING_PLOT` (linked relative to ``markdown``).
    command : str
        The command that regenerates the report (quoted in it).
    """
    markdown, images = Path(markdown), Path(images)
    written = [
        p for p in (plot_speedups(result, images / SPEEDUP_PLOT), plot_scaling(result, images / SCALING_PLOT)) if p
    ]
    links = "\n\n".join(f"![{p.stem}]({Path(os.path.relpath(p, markdown.parent)).as_posix()})" for p in written)
    sections = [
        "# Benchmarks",
        "How fast the students run MD, in every engine, against their teacher (GFN2-xTB) and against a "
        "foundation MLIP a user would otherwise run (SevenNet-0), on one and more threads. Every figure below was "
        "measured in one run on one machine; compare ratios, not absolute times, across machines and runs. "
        "On water boxes the students have random weights (a step costs the same whatever the weights, and "
        "the box fixes the number of neighbours); on molecules they are the bundled organic students, "
        "since random weights let a molecule fly apart during MD. "
        "*ms/step*: median over interleaved timed blocks of the wall time per MD step (LAMMPS: its loop time); "
        "*ns/day* at the stated time step; *µs/atom/step* = ms/step / atoms × 1000; "
        "*bare*: energy and forces from the exported OpenMM module alone, no MD engine; "
        "*mlffd md*: OpenMM MD as `mlffd md` runs it, with its reporters at their default intervals or none; "
        "*× teacher*: the teacher's ASE MD step time over the contender's, at the same thread count; "
        "*(2 threads)*: torch, the fused kernel, OpenMM's CPU platform and the teachers on 2 threads.",
        "## Regenerate\n\n```\n" + command + "\n```\n\n`mlffd bench --help` lists the options "
        "(systems, sizes, engines, thread counts, time and memory budgets, `--quick`). SevenNet-0 needs the "
        "`sevenn` extra (`make install` installs it; without it its columns read skipped).",
        "## Machine\n\n" + machine_table(result.machine, result.plan),
        "## Targets\n\n" + target_table(result),
        *teacher_sections(result),
        *([f"## Threads\n\n{THREADS_TEXT}\n\n{threads}"] if (threads := thread_table(result)) else []),
        *(
            [f"## How close to the machine\n\n{FLOPS_TEXT}\n\n{flops}{bound_list(result)}"]
            if (flops := flops_table(result))
            else []
        ),
        *([f"## Reporting cost\n\n{REPORTING_TEXT}\n\n{cost}"] if (cost := reporting_table(result)) else []),
        "## Plots\n\n" + (links or "(nothing to plot)"),
        "## All measurements\n\n" + measurement_table(result),
    ]
    safe_write_text(markdown, "\n\n".join(sections) + "\n", overwrite=True)
    return [markdown] + written
