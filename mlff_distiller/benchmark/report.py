"""The benchmark report: a Markdown page with the machine, the targets, all measurements and two plots."""

import json
import os
from pathlib import Path

from ..safe_write import safe_write_text, staged_file
from .suite import BenchmarkResult
from .targets import check_targets

#: File names of the plots, inside the image folder.
SPEEDUP_PLOT = "bench_speedup.png"
SCALING_PLOT = "bench_scaling.png"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def measurement_table(result: BenchmarkResult) -> str:
    """Markdown table: system, atoms, contender, ms/step, ns/day, µs/atom/step, speed-up over each teacher, status.

    Contenders the plan did not ask for on a system (e.g. LAMMPS outside ``--lammps-systems``) are left out.
    """
    teachers = [t for t in result.plan["teachers"] if "teacher" in result.plan["engines"]]
    header = (
        ["system", "atoms", "contender", "ms/step", "ns/day", "µs/atom/step"]
        + [f"× {t}" for t in teachers]
        + ["status"]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m in result.measurements:
        if "not planned" in m.status:
            continue
        speedups = []
        for teacher in teachers:
            reference = result.find(m.system, "teacher", teacher)
            ok = m.ok and reference is not None and reference.ok and m.engine != "teacher"
            speedups.append(_number(reference.ms_per_step / m.ms_per_step) if ok else "-")
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
    rows = [
        ("CPU", f"{machine['cpu']}, {machine['cores']} logical cores"),
        ("GPU", machine["gpu"] or "none"),
        (
            "threads",
            f"torch {machine['torch_threads']}, OMP_NUM_THREADS={machine['omp_num_threads']}, "
            f"teacher {plan['threads']}, LAMMPS 1 per rank",
        ),
        ("load average (1 min, at the end)", str(machine["load_average_1min"])),
        ("student precision / time step", f"{plan['precision']} / {plan['timestep_fs']} fs"),
        ("student kernel on CPU (OpenMM, bare, ASE)", plan.get("kernel", "portable")),
        (
            "OpenMM platform",
            plan["platform"] + (" (Reference here)" if plan["platform"] == "auto" and not machine["gpu"] else ""),
        ),
        ("timed blocks per contender", f"{plan['rounds']} of ~{plan['block_seconds']} s, interleaved; median reported"),
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
    """Bar chart of every student contender's speed-up over the first measured teacher, per system (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    teacher_steps = {m.system: m for m in result.measurements if m.engine == "teacher" and m.ok}
    systems = [s for s in dict.fromkeys(m.system for m in result.measurements) if s in teacher_steps]
    contenders = list(dict.fromkeys(m.contender for m in result.measurements if m.engine not in ("teacher", "bare")))
    if not systems or not contenders:
        return None
    figure, axes = plt.subplots(figsize=(max(6.0, 1.2 * len(systems) * len(contenders) / 3), 4.5))
    width = 0.8 / len(contenders)
    for index, contender in enumerate(contenders):
        heights = []
        for system in systems:
            m = next((x for x in result.measurements if x.system == system and x.contender == contender and x.ok), None)
            heights.append(teacher_steps[system].ms_per_step / m.ms_per_step if m else 0.0)
        axes.bar([k + index * width for k in range(len(systems))], heights, width, label=contender)
    axes.set_xticks([k + 0.4 - width / 2 for k in range(len(systems))])
    axes.set_xticklabels([f"{s}\n({teacher_steps[s].model}: {teacher_steps[s].ms_per_step:.3g} ms)" for s in systems])
    axes.set_yscale("log")
    axes.axhline(1.0, color="black", linewidth=0.8)
    axes.set_ylabel("speed-up over the teacher per MD step")
    axes.legend(fontsize=7, ncol=2)
    axes.set_title("Students over the teacher (ASE MD), same machine, same run")
    figure.tight_layout()
    return _save(figure, path)


def plot_scaling(result: BenchmarkResult, path: Path) -> Path | None:
    """µs/atom/step against atoms, log-log, one line per contender."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: dict[str, list] = {}
    for m in result.measurements:
        if m.ok:
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
        "How fast the students run MD, in every engine, against their teacher. Every figure below was "
        "measured in one run on one machine; compare ratios, not absolute times, across machines and runs. "
        "On water boxes the students have random weights (a step costs the same whatever the weights, and "
        "the box fixes the number of neighbours); on molecules they are the bundled organic students, "
        "since random weights let a molecule fly apart during MD. "
        "*ms/step*: median over interleaved timed blocks of the wall time per MD step (LAMMPS: its loop time); "
        "*ns/day* at the stated time step; *µs/atom/step* = ms/step / atoms × 1000; "
        "*bare*: energy and forces from the exported OpenMM module alone, no MD engine; "
        "*× teacher*: the teacher's ASE MD step time over the contender's.",
        "## Regenerate\n\n```\n" + command + "\n```\n\n`mlffd bench --help` lists the options "
        "(systems, sizes, engines, time and memory budgets, `--quick`).",
        "## Machine\n\n" + machine_table(result.machine, result.plan),
        "## Targets\n\n" + target_table(result),
        "## Plots\n\n" + (links or "(nothing to plot)"),
        "## All measurements\n\n" + measurement_table(result),
    ]
    safe_write_text(markdown, "\n\n".join(sections) + "\n", overwrite=True)
    return [markdown] + written
