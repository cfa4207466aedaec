"""The demo job: a bundled student, a bundled molecule, a Langevin warm-up then OpenMM NVE, validation, a report."""

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .data import bundled_structure, bundled_student
from .plugin.openmm import MDResult, MDRun, MDSettings
from .reference_md import REFERENCE_BUDGET_S, REFERENCE_TIME_PS
from .safe_write import check_output
from .validation import ValidationReport, validate
from .validation.render import event_lines

#: Where ``mlffd demo`` writes when no output is given: a new time-stamped folder per run.
DEFAULT_ROOT = Path("demo-output")
#: About this many trajectory frames per demo run's production (enough for the drift fit, cheap to write).
FRAMES_PER_RUN = 200
#: Langevin warm-up (ps) before the NVE production of the demo and the study: velocities drawn at the
#: temperature on a minimum lose half their energy to the potential within a picosecond, and the
#: warm-up puts it back, so that the production runs at the stated temperature.
EQUILIBRATE_PS = 2.0


@dataclass
class DemoResult:
    """What the demo produced.

    Attributes
    ----------
    run_dir : Path
        The MD run directory (trajectory.h5md, energies.csv, ...).
    report_dir : Path
        The validation report (report.html, report.md, report.json, PNG plots).
    md : MDResult
        How the MD run ended.
    report : ValidationReport
        The validation, with its verdict.
    settings : MDSettings
        The MD run's settings.
    """

    run_dir: Path
    report_dir: Path
    md: MDResult
    report: ValidationReport
    settings: MDSettings


def default_output() -> Path:
    """A new folder under ``demo-output/`` named after the current local time."""
    return DEFAULT_ROOT / datetime.now().strftime("%Y%m%d-%H%M%S")


def bundled_nve_settings(
    system: str,
    student: str,
    time_ps: float,
    timestep_fs: float,
    temperature_K: float,
    platform: str,
    precision: str,
    equilibrate_ps: float = EQUILIBRATE_PS,
) -> MDSettings:
    """NVE settings for a bundled student on a bundled system, with about :data:`FRAMES_PER_RUN` production frames.

    Production time in ps after a Langevin warm-up of ``equilibrate_ps`` ps (friction 1/ps), time
    step in fs, temperature (of the initial velocities and the warm-up) in K.
    """
    steps = int(round(time_ps * 1000.0 / timestep_fs))
    report_interval = max(1, steps // FRAMES_PER_RUN)
    return MDSettings(
        structure=str(bundled_structure(system)),
        model=str(bundled_student(student)),
        ensemble="nve",
        temperature=temperature_K,
        timestep=timestep_fs,
        time=time_ps,
        equilibrate=equilibrate_ps,
        report_interval=report_interval,
        checkpoint_interval=report_interval * 50,
        platform=platform,
        precision=precision,
    )


def structure_reference(run_dir: Path, budget_s: float, time_ps: float = REFERENCE_TIME_PS) -> dict:
    """Arguments of :func:`validate` that compare a molecule's bonds and angles with a short teacher MD.

    The teacher MD lasts ``time_ps`` ps of steps from a fixed seed, capped at ``budget_s`` s of wall
    time (a reference the cap cuts short reads "not measured"). Boxes get none (a teacher MD of a
    liquid box costs seconds per step; its close contacts are checked instead), nor does a zero budget.
    """
    settings = json.loads((Path(run_dir) / "settings.json").read_text())
    if settings.get("periodic") or budget_s <= 0:
        return {}
    return {"reference": "teacher", "reference_time_ps": time_ps, "reference_budget_s": budget_s}


def run_demo(
    output: str | Path | None = None,
    system: str = "aspirin",
    student: str = "organic-standard",
    time_ps: float = 10.0,
    timestep_fs: float = 0.5,
    temperature_K: float = 300.0,
    equilibrate_ps: float = EQUILIBRATE_PS,
    frames: int = 20,
    platform: str = "auto",
    precision: str = "mixed",
    teacher: str = "gfn2-xtb",
    overwrite: bool = False,
    progress: bool = True,
    reference_budget_s: float = REFERENCE_BUDGET_S,
    reference_time_ps: float = REFERENCE_TIME_PS,
) -> DemoResult:
    """Run the demo: a Langevin warm-up and NVE MD of a bundled system with a bundled student, then validate it.

    Parameters
    ----------
    output : path, optional
        Output folder (``run/`` and ``report/`` inside); default: a new ``demo-output/<time>``.
    system : str
        Bundled structure name (see :func:`mlff_distiller.data.structure_names`).
    student : str
        Bundled student name (see :func:`mlff_distiller.data.student_names`).
    time_ps : float
        NVE production time in ps.
    timestep_fs : float
        Time step in fs.
    temperature_K : float
        Temperature of the initial Maxwell-Boltzmann velocities and of the warm-up in K.
    equilibrate_ps : float
        Langevin warm-up in ps before the production (0: none).
    frames : int
        Trajectory frames on which the teacher is evaluated for force fidelity.
    platform, precision : str
        OpenMM platform and precision (see :class:`mlff_distiller.plugin.MDSettings`).
    teacher : str
        Teacher for the validation.
    overwrite : bool
        Replace an existing output folder's run and report.
    progress : bool
        Show progress bars.
    reference_budget_s : float
        Wall-time safety cap (s) of the teacher MD a molecule's bonds and angles are compared with (0: no
        comparison); a reference it cuts short of ``reference_time_ps`` is not used ("not measured").
    reference_time_ps : float
        Length (ps, fixed steps and seed) of that teacher MD.
    """
    output = Path(output) if output is not None else default_output()
    run_dir, report_dir = output / "run", output / "report"
    check_output(output, overwrite=overwrite, folder=True)  # a file, an unwritable folder, or not empty
    settings = bundled_nve_settings(
        system, student, time_ps, timestep_fs, temperature_K, platform, precision, equilibrate_ps
    )
    md = MDRun(settings, run_dir, overwrite=overwrite).run(progress=progress)
    report = validate(
        run_dir,
        teacher=teacher,
        frames=frames,
        progress=progress,
        **structure_reference(run_dir, reference_budget_s, reference_time_ps),
    )
    report.write(report_dir, overwrite=overwrite)
    return DemoResult(run_dir, report_dir, md, report, settings)


def summary_lines(result: DemoResult) -> list[str]:
    """A short human summary: how the run ended, the verdict per criterion, where the report is."""
    md, s = result.md, result.settings
    warm_up = f"{s.equilibrate:g} ps Langevin warm-up at {s.temperature:g} K, then " if s.equilibrate else ""
    lines = [
        f"MD: {md.stop_reason} - {md.steps_completed}/{md.steps_requested} steps, "
        f"{md.simulated_time_ps:.2f} ps in {md.wall_time_s:.0f} s ({md.ns_per_day:.2f} ns/day, {md.platform})",
        f"    {warm_up}{s.time:g} ps NVE" + ("" if md.completed else f"; stopped during the {md.phase}"),
        "verdict:",
    ]
    for row in result.report.data["verdict"]["criteria"]:
        value = row.get("value")
        unit = "" if row.get("unit") in (None, "", "1") else f" {row['unit']}"
        shown = "-" if value is None else f"{value:.4g}{unit}"  # the status says why: not measured, not applicable
        lines.append(f"  {row['status'].upper():12s} {row['criterion']}: {shown} (pass: {_pass_line(row)})")
    lines += [f"  event: {line}" for line in event_lines(result.report.data)]
    overall = (
        "PASS: production-ready by these criteria"
        if result.report.passed
        else "FAIL: not production-ready by these criteria"
    )
    lines.append(overall)
    lines.append(f"report: {result.report_dir / 'report.html'}")
    return lines


def _pass_line(row: dict) -> str:
    """A verdict row's pass condition in words: ``<= 0.2`` or ``between 0.5 and 2``."""
    if row["comparison"] == "between":
        lower, upper = row["threshold"]
        return f"between {lower:g} and {upper:g}"
    return f"{row['comparison']} {row['threshold']:g}"
