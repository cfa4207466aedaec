"""The production study: every bundled student on its systems, long NVE, validation, speed, one comparison.

Each case is one student on one system: an OpenMM run (a Langevin warm-up, then NVE), its
validation against the teacher, and the teacher's cost per force call on the same system.
Finished runs and reports are kept and skipped, so an interrupted study resumes where it stopped.
"""

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .data import bundled_structure, structure_names, student_names
from .demo import EQUILIBRATE_PS, bundled_nve_settings, structure_reference
from .plugin.openmm import MDRun, MDSettings
from .reference_md import REFERENCE_BUDGET_S, REFERENCE_SEED, REFERENCE_TIME_PS
from .safe_write import check_output, safe_write_text, staged_file
from .structures import read_structure
from .teachers import load_teacher
from .validation import compare_reports, validate

#: Student sizes, largest first.
SIZES = ("standard", "tiny", "ultra-tiny")
#: Comparison figures shown per case, in table order (keys of ``compare_reports`` rows, units in the names).
FIGURE_KEYS = (
    "temperature_mean_K",
    "drift_meV_per_atom_per_ps",
    "drift_to_fluctuation",
    "relative_drift_percent",
    "force_rmse_eV_per_A",
    "force_r2",
    "median_angle_deg",
    "min_nonbonded_distance_A",
    "internal_outside_fraction",
    "stable_time_ps",
)
#: Bundled student families; water boxes (names starting with "water") belong to the water family.
FAMILIES = ("organic", "water")


@dataclass
class StudyCase:
    """One student on one system.

    Attributes
    ----------
    student : str
        Bundled student name, e.g. ``"organic-tiny"``.
    system : str
        Bundled structure name, e.g. ``"aspirin"``.
    """

    student: str
    system: str

    @property
    def name(self) -> str:
        return f"{self.system}--{self.student}"


def default_cases(systems: Sequence[str] | None = None) -> list[StudyCase]:
    """Every bundled student on its family's systems (default: every bundled structure).

    Water boxes (names starting with ``water``) go to the water students, everything else (the
    bundled organic molecules, including those held out of training) to the organic ones.
    """
    cases = []
    for family in FAMILIES:
        candidates = structure_names() if systems is None else systems
        chosen = [s for s in candidates if s.startswith("water") == (family == "water")]
        for size in SIZES:
            student = f"{family}-{size}"
            if student in student_names():
                cases.extend(StudyCase(student, system) for system in chosen)
    return cases


def teacher_seconds_per_call(teacher_name: str, system: str, calls: int = 3, seed: int = 0) -> float:
    """Wall time (s) of one teacher energy+forces evaluation on a bundled system, cache bypassed."""
    teacher = load_teacher(teacher_name)
    atoms = read_structure(bundled_structure(system))
    rng = np.random.default_rng(seed)
    atoms.calc = teacher.calculator
    times = []
    for _ in range(calls + 1):
        atoms.positions = atoms.positions + rng.normal(scale=0.01, size=atoms.positions.shape)
        begin = time.perf_counter()
        atoms.get_forces()
        times.append(time.perf_counter() - begin)
    return float(np.median(times[1:]))


def run_study(
    output: str | Path,
    cases: Sequence[StudyCase] | None = None,
    time_ps: float = 10.0,
    timestep_fs: float = 0.5,
    temperature_K: float = 300.0,
    frames: int = 20,
    teacher: str = "gfn2-xtb",
    equilibrate_ps: float = EQUILIBRATE_PS,
    precision: str = "double",
    platform: str = "auto",
    progress: bool = True,
    reference_budget_s: float = REFERENCE_BUDGET_S,
    reference_time_ps: float = REFERENCE_TIME_PS,
) -> dict:
    """Run (or resume) the study and write ``study.md``, ``study.json`` and the comparison into ``output``.

    Parameters
    ----------
    output : path
        Study folder: ``runs/<case>``, ``reports/<case>``, ``comparison/``, ``study.md``, ``study.json``.
    cases : sequence of StudyCase, optional
        Default: :func:`default_cases`.
    time_ps, timestep_fs, temperature_K : float
        NVE production length (ps), time step (fs) and initial and warm-up temperature (K) of every run.
    frames : int
        Frames per run evaluated by the teacher.
    teacher : str
        Teacher for validation and for the speed comparison.
    equilibrate_ps : float
        Langevin warm-up (ps) of every run before its production (0: none).
    precision, platform : str
        OpenMM precision and platform.
    progress : bool
        Show progress.
    reference_budget_s : float
        Wall-time safety cap (s) of the teacher MD each molecule's bonds and angles are compared with (0: none);
        a reference it cuts short of ``reference_time_ps`` is not used ("not measured").
    reference_time_ps : float
        Length (ps, fixed steps and seed) of that teacher MD.

    Returns
    -------
    dict
        The content of ``study.json``: one row per case with the comparison's figures, the
        recommendation and the speed against the teacher.
    """
    output = check_output(output, overwrite=True, folder=True)  # resumed when it exists; refuses a file
    cases = list(cases) if cases is not None else default_cases()
    report_dirs, speed = [], {}
    teacher_cost: dict[str, float] = {}
    for number, case in enumerate(cases, 1):
        run_dir, report_dir = output / "runs" / case.name, output / "reports" / case.name
        if progress:
            print(f"[{number}/{len(cases)}] {case.student} on {case.system}", flush=True)
        settings = bundled_nve_settings(
            case.system, case.student, time_ps, timestep_fs, temperature_K, platform, precision, equilibrate_ps
        )
        if _needs_run(run_dir, settings):
            MDRun(settings, run_dir, overwrite=True).run(progress=progress)
            if (report_dir / "report.json").exists():
                (report_dir / "report.json").unlink()
        summary = _read_json(run_dir / "summary.json")
        reference = structure_reference(run_dir, reference_budget_s, reference_time_ps)
        if not _report_matches(report_dir, reference):
            validate(run_dir, teacher=teacher, frames=frames, progress=progress, **reference).write(
                report_dir, overwrite=True
            )
        report_dirs.append(report_dir)
        if case.system not in teacher_cost:
            teacher_cost[case.system] = teacher_seconds_per_call(teacher, case.system)
        student_ms = 1000.0 * summary["wall_time_s"] / max(summary["steps_completed"], 1)
        speed[case.name] = {
            "student_ms_per_step": student_ms,
            "teacher_ms_per_call": 1000.0 * teacher_cost[case.system],
            "speedup_over_teacher": 1000.0 * teacher_cost[case.system] / student_ms,
            "ns_per_day": summary["ns_per_day"],
        }
    comparison = compare_reports(report_dirs, output / "comparison", overwrite=True)
    rows = _study_rows(cases, comparison, speed)
    settings = {
        "time_ps": time_ps,
        "equilibrate_ps": equilibrate_ps,
        "timestep_fs": timestep_fs,
        "temperature_K": temperature_K,
        "frames": frames,
        "teacher": teacher,
        "precision": precision,
        "platform": platform,
        "reference_time_ps": reference_time_ps,
        "reference_seed": REFERENCE_SEED,
        "reference_budget_s": reference_budget_s,
    }
    study = {"settings": settings, "cases": [asdict(c) for c in cases], "rows": rows}
    safe_write_text(output / "study.json", json.dumps(study, indent=2) + "\n", overwrite=True)
    safe_write_text(output / "study.md", render_study(study), overwrite=True)
    plot_study(study, output / "study.png")
    return study


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _report_matches(report_dir: Path, reference: dict) -> bool:
    """Whether a case's existing report can be kept: it exists and its teacher reference (length, seed) is the one asked.

    A report whose reference the budget cut short is made again, as one with another length or seed.
    """
    report = _read_json(report_dir / "report.json")
    if report is None:
        return False
    made = report.get("details", {}).get("internal_reference")
    if not reference:
        return made is None
    return (
        made is not None
        and made.get("reference_requested_time_ps") == reference["reference_time_ps"]
        and made.get("reference_seed") == REFERENCE_SEED
        and "internal_coordinates" not in report["details"].get("not_measured", {})
    )


def _needs_run(run_dir: Path, settings: MDSettings) -> bool:
    """Whether a case's run must be (re)done: none finished, a completed one shorter than asked, or another warm-up.

    A run that stopped early (unstable) is kept: running it again would stop again.
    """
    summary = _read_json(run_dir / "summary.json")
    if summary is None:
        return True
    saved = _read_json(run_dir / "settings.json") or {}
    shorter = summary.get("stop_reason") == "completed" and summary.get("steps_completed", 0) < settings.steps
    return shorter or saved.get("equilibrate", 0.0) != settings.equilibrate


def _reference_length(settings: dict) -> str:
    """The study's teacher reference MD in words: its fixed length and seed, and its wall-time cap."""
    if "reference_time_ps" not in settings:  # a study.json written before the reference had a fixed length
        return f"at most {settings.get('reference_budget_s', 0):g} s of it"
    return (
        f"{settings['reference_time_ps']:g} ps, seed {settings.get('reference_seed', REFERENCE_SEED)}, the same on "
        f"any machine; a reference cut short by its {settings['reference_budget_s']:g} s wall-time cap reads "
        "not measured"
    )


def _study_rows(cases: Sequence[StudyCase], comparison: dict, speed: dict) -> list[dict]:
    rows = []
    for case, model in zip(cases, comparison["models"], strict=False):
        rows.append({"case": case.name, "student": case.student, "system": case.system, **model, **speed[case.name]})
    return rows


def render_study(study: dict) -> str:
    """The study as Markdown: settings, one row per case, the recommendation and the speed-up."""
    s = study["settings"]
    lines = [
        "# Production study of the bundled students",
        "",
        f"NVE, {s['time_ps']:g} ps at {s['timestep_fs']:g} fs {_start(s)}, OpenMM "
        f"{s['platform']} platform, {s['precision']} precision; force fidelity on {s['frames']} frames "
        f"against {s['teacher']}. Speed: the student's wall time per MD step (OpenMM, reporting included) "
        f"over one {s['teacher']} energy+forces call on the same system, measured in the same study run. "
        f"Structure: the closest pair of atoms neither bonded nor 1-3 (a close contact fails the run: O…O < 2.2 Å); "
        f"for molecules, the largest share of frames on which a bond or angle leaves the range of a short "
        f"{s['teacher']} MD from the same start ({_reference_length(s)}; 0.1 passes).",
        "",
        "| student | system | production T (K) | drift (meV/atom/ps) | drift/fluct. | rel. drift (%) | force RMSE (eV/Å) | R² "
        "| median angle (°) | closest non-bonded (Å) | bonds/angles outside teacher | stable (ps) | ms/step | teacher ms/call "
        "| speed-up | recommendation |",
        "|" + "---|" * 16,
    ]
    for row in study["rows"]:
        cells = [row["student"], row["system"]] + [_fmt(row.get(key)) for key in FIGURE_KEYS]
        cells += [
            f"{row['student_ms_per_step']:.2f}",
            f"{row['teacher_ms_per_call']:.2f}",
            f"{row['speedup_over_teacher']:.1f}x",
            f"{row['recommendation']}: {row['reason']}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Regenerate with `mlffd study -o study-output` (resumable; see `mlffd study --help`).", ""]
    return "\n".join(lines)


#: Recommendation shown in each cell of :func:`plot_study`.
_SHORT = {"production": "P", "limited use": "L", "not recommended": "N"}


def plot_study(study: dict, path: str | Path) -> Path:
    """Students x systems heat map of the force RMSE (eV/Å) on each run, with its recommendation.

    Colour is the RMSE on a log scale; each cell reads the RMSE and a letter: P production,
    L limited use, N not recommended. Empty cells: the student was not run on that system.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    rows = study["rows"]
    students = list(dict.fromkeys(row["student"] for row in rows))
    systems = list(dict.fromkeys(row["system"] for row in rows))
    rmse = np.full((len(students), len(systems)), np.nan)
    labels = {}
    for row in rows:
        i, j = students.index(row["student"]), systems.index(row["system"])
        rmse[i, j] = row["force_rmse_eV_per_A"]
        labels[i, j] = f"{row['force_rmse_eV_per_A']:.2g}\n{_SHORT.get(row['recommendation'], '?')}"
    figure, axes = plt.subplots(figsize=(1.0 * len(systems) + 2.5, 0.8 * len(students) + 1.8))
    image = axes.imshow(np.ma.masked_invalid(rmse), cmap="RdYlGn_r", norm=LogNorm(vmin=0.02, vmax=2.0))
    for (i, j), text in labels.items():
        axes.text(j, i, text, ha="center", va="center", fontsize=8)
    axes.set_xticks(range(len(systems)), systems, rotation=45, ha="right")
    axes.set_yticks(range(len(students)), students)
    axes.set_title(
        f"Force RMSE against {study['settings']['teacher']} on each {study['settings']['time_ps']:g} ps run "
        "(P production, L limited use, N not recommended)",
        fontsize=9,
    )
    figure.colorbar(image, ax=axes, label="force RMSE (eV/Å)", shrink=0.8)
    figure.tight_layout()
    path = Path(path)
    try:
        with staged_file(path, overwrite=True) as staged:
            figure.savefig(staged, dpi=110)
    finally:
        plt.close(figure)
    return path


def _start(settings: dict) -> str:
    """How the study's runs start: after a Langevin warm-up at the temperature, or from velocities drawn at it."""
    if settings.get("equilibrate_ps"):
        return f"after {settings['equilibrate_ps']:g} ps of Langevin warm-up at {settings['temperature_K']:g} K"
    return f"from {settings['temperature_K']:g} K velocities"


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
