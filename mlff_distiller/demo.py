"""The demo job: a bundled student, a bundled molecule, OpenMM NVE, validation against the teacher, a report."""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import List, Union

from .data import bundled_structure, bundled_student
from .errors import OverwriteError
from .plugin import MDResult, MDRun, MDSettings
from .validation import ValidationReport, validate

#: Where ``mlffd demo`` writes when no output is given: a new time-stamped folder per run.
DEFAULT_ROOT = Path("demo-output")
#: About this many trajectory frames per demo run (enough for the drift fit, cheap to write).
FRAMES_PER_RUN = 200


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
    """

    run_dir: Path
    report_dir: Path
    md: MDResult
    report: ValidationReport


def default_output() -> Path:
    """A new folder under ``demo-output/`` named after the current local time."""
    return DEFAULT_ROOT / datetime.now().strftime("%Y%m%d-%H%M%S")


def bundled_nve_settings(
    system: str, student: str, time_ps: float, timestep_fs: float, temperature_K: float, platform: str, precision: str
) -> MDSettings:
    """NVE settings for a bundled student on a bundled system, with about :data:`FRAMES_PER_RUN` frames.

    Time in ps, time step in fs, temperature (of the initial velocities) in K.
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
        report_interval=report_interval,
        checkpoint_interval=report_interval * 50,
        platform=platform,
        precision=precision,
    )


def run_demo(
    output: Union[str, Path, None] = None,
    system: str = "aspirin",
    student: str = "organic-standard",
    time_ps: float = 10.0,
    timestep_fs: float = 0.5,
    temperature_K: float = 300.0,
    frames: int = 20,
    platform: str = "auto",
    precision: str = "mixed",
    teacher: str = "gfn2-xtb",
    overwrite: bool = False,
    progress: bool = True,
) -> DemoResult:
    """Run the demo: NVE MD of a bundled system with a bundled student, then validate it.

    Parameters
    ----------
    output : path, optional
        Output folder (``run/`` and ``report/`` inside); default: a new ``demo-output/<time>``.
    system : str
        Bundled structure name (see :func:`mlff_distiller.data.structure_names`).
    student : str
        Bundled student name (see :func:`mlff_distiller.data.student_names`).
    time_ps : float
        Simulated time in ps.
    timestep_fs : float
        Time step in fs.
    temperature_K : float
        Temperature of the initial Maxwell-Boltzmann velocities in K.
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
    """
    output = Path(output) if output is not None else default_output()
    run_dir, report_dir = output / "run", output / "report"
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise OverwriteError(f"{output} exists and is not empty; pass --overwrite to replace it")
    settings = bundled_nve_settings(system, student, time_ps, timestep_fs, temperature_K, platform, precision)
    md = MDRun(settings, run_dir, overwrite=overwrite).run(progress=progress)
    report = validate(run_dir, teacher=teacher, frames=frames, progress=progress)
    report.write(report_dir, overwrite=overwrite)
    return DemoResult(run_dir, report_dir, md, report)


def summary_lines(result: DemoResult) -> List[str]:
    """A short human summary: how the run ended, the verdict per criterion, where the report is."""
    md = result.md
    lines = [
        f"MD: {md.stop_reason} - {md.steps_completed}/{md.steps_requested} steps, "
        f"{md.simulated_time_ps:.2f} ps in {md.wall_time_s:.0f} s ({md.ns_per_day:.2f} ns/day, {md.platform})",
        "verdict:",
    ]
    for row in result.report.data["verdict"]["criteria"]:
        value = row.get("value")
        unit = "" if row.get("unit") in (None, "", "1") else f" {row['unit']}"
        shown = "not measured" if value is None else f"{value:.4g}{unit}"
        lines.append(f"  {row['status'].upper():12s} {row['criterion']}: {shown} (pass: {row['comparison']} {row['threshold']:g})")
    overall = "PASS: production-ready by these criteria" if result.report.passed else "FAIL: not production-ready by these criteria"
    lines.append(overall)
    lines.append(f"report: {result.report_dir / 'report.html'}")
    return lines
