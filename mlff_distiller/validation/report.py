"""Validate a run in one call and write its report: JSON, Markdown, self-contained HTML and PNG plots."""

import base64
import html
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np

from ..elements import symbols
from ..errors import MLFFDError, OverwriteError
from .drift import EnergyDrift
from .figures import finite_or_none, section_figures
from .forces import ForceFidelity, audit_only_results
from .plots import draw_all
from .stability import Stability
from .structure import StructureComparison
from .thresholds import CRITERIA, Thresholds, judge
from .trajectory import atomic_numbers, audit_records, open_run

#: Version of report.json's layout (see report.schema.json).
SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
REPORT_FILES = ("report.json", "report.md", "report.html")
NOT_APPLICABLE = "not applicable (NVT)"


@dataclass
class ValidationReport:
    """The outcome of :func:`validate`.

    Attributes
    ----------
    data : dict
        Everything ``report.json`` holds (figures with units and definitions, verdict, inputs).
    analyses : dict
        The ``results`` of each analysis that ran (``energy_drift``, ``force_fidelity``,
        ``stability``, ``structure``), for plots and further work.
    """

    data: Dict
    analyses: Dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether every criterion of the verdict passed."""
        return bool(self.data["verdict"]["passed"])

    @property
    def exit_code(self) -> int:
        """0 when the verdict passes, 1 when it fails (the CLI's convention)."""
        return 0 if self.passed else 1

    def figure(self, section: str, key: str) -> Optional[float]:
        """The value of one figure (None when not measured)."""
        return self.data["figures"].get(section, {}).get(key, {}).get("value")

    def write(self, directory: Union[str, Path], overwrite: bool = False) -> Path:
        """Write report.json, report.md, report.html and the PNG plots into ``directory``.

        Raises
        ------
        OverwriteError
            When the directory already holds a report and ``overwrite`` is False.
        """
        directory = Path(directory)
        if directory.exists() and any(directory.iterdir()):
            if not overwrite:
                raise OverwriteError(f"{directory} exists and is not empty; pass --overwrite to replace its report")
            if directory.is_dir():
                for name in REPORT_FILES:
                    (directory / name).unlink(missing_ok=True)
                for png in directory.glob("*.png"):
                    png.unlink()
        directory.mkdir(parents=True, exist_ok=True)
        self.data["plots"] = draw_all(self.analyses, directory)
        (directory / "report.json").write_text(json.dumps(self.data, indent=2, ensure_ascii=False) + "\n")
        (directory / "report.md").write_text(render_markdown(self.data))
        (directory / "report.html").write_text(render_html(self.data, directory))
        return directory


def validate(
    path: Union[str, Path],
    topology: Union[str, Path, None] = None,
    teacher: Union[str, object, None] = "gfn2-xtb",
    frames: int = 50,
    reference: Union[str, Path, None] = None,
    reference_topology: Union[str, Path, None] = None,
    thresholds: Union[Thresholds, str, Path, None] = None,
    energies: Union[str, Path, None] = None,
    student=None,
    workers: int = 1,
    warmup_fraction: float = 0.2,
    progress: bool = False,
) -> ValidationReport:
    """Validate an MD run: energy drift, force fidelity against the teacher, stability, structure; a verdict.

    Parameters
    ----------
    path : str or Path
        A run directory of ``mlffd md`` or a trajectory file (see :func:`open_run`).
    topology : str or Path, optional
        Topology for trajectories without one.
    teacher : str, Teacher, ASE calculator or None
        Teacher for force fidelity ("gfn2-xtb" by default). None evaluates no teacher: the
        force RMSE then comes from the audits made during MD when the trajectory has them, and
        every other force criterion reads "not measured" (the verdict fails).
    frames : int
        Frames on which the teacher is evaluated, spread over the run.
    reference : str or Path, optional
        A reference trajectory (the teacher's run) for the RDF comparison; a run directory or a file.
    reference_topology : str or Path, optional
        Its topology (default: ``topology``).
    thresholds : Thresholds, TOML path or None
        Pass lines (default: :class:`Thresholds`).
    energies : str or Path, optional
        Energy file for trajectories without energy observables (OpenMM CSV, LAMMPS log).
    student : Student or path, optional
        The student, needed only when the trajectory stores no forces (default: the run's model).
    workers : int
        Processes for the teacher (with a teacher given by name).
    warmup_fraction : float
        Fraction of the run ignored by the drift fit.
    progress : bool
        Show progress bars.
    """
    if frames < 1 or workers < 1 or not 0.0 <= warmup_fraction < 1.0:
        raise MLFFDError("frames and workers must be at least 1, and the warm-up fraction in [0, 1)")
    if thresholds is None:
        thresholds = Thresholds()
    elif not isinstance(thresholds, Thresholds):
        thresholds = Thresholds.from_toml(thresholds)
    run = open_run(path, topology, energies)
    universe = run.universe
    analyses: Dict = {}
    drift = EnergyDrift(universe, energies=run.energies, warmup_fraction=warmup_fraction)
    analyses["energy_drift"] = drift.run(**_progress(progress, "energy drift")).results
    stability = Stability(universe, requested_time_ps=run.requested_time_ps, energies=run.energies)
    analyses["stability"] = stability.run(**_progress(progress, "stability")).results
    if teacher is not None:
        model = student if student is not None else run.model_path
        fidelity = ForceFidelity(universe, teacher, student=model, n_frames=frames, workers=workers)
        analyses["force_fidelity"] = fidelity.run(**_progress(progress, "student forces")).results
    elif audit_records(universe) is not None:  # no teacher now: the audits made during MD give the RMSE
        analyses["force_fidelity"] = audit_only_results(audit_records(universe))
    if reference is not None:
        ref = open_run(reference, reference_topology or topology)
        structure = StructureComparison(universe.atoms, ref.universe.atoms)
        analyses["structure"] = structure.run(**_progress(progress, "structure")).results
    data = {
        "schema_version": SCHEMA_VERSION,
        "generated_by": _generator(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": _describe_input(run, teacher, frames, reference),
        "figures": {name: section_figures(name, results) for name, results in analyses.items()},
        "details": _details(analyses),
        "thresholds": thresholds.to_dict(),
    }
    data["verdict"] = verdict(data["figures"], thresholds, thermostatted=run.settings.get("ensemble") == "nvt")
    return ValidationReport(data, analyses)


def _progress(show: bool, name: str) -> Dict:
    """Arguments of ``AnalysisBase.run`` for a named progress bar."""
    return {"verbose": show, "progressbar_kwargs": {"desc": name}}


def _generator() -> str:
    from .. import __version__

    return f"mlff-distiller {__version__}"


def _describe_input(run, teacher, frames: int, reference) -> Dict:
    universe = run.universe
    times = [float(universe.trajectory[0].time), float(universe.trajectory[-1].time)]
    universe.trajectory[0]
    counts: Dict[str, int] = {}
    for symbol in symbols(atomic_numbers(universe.atoms)):
        counts[symbol] = counts.get(symbol, 0) + 1
    model = run.settings.get("model")
    model_name = model.get("path") if isinstance(model, dict) else model
    run_name = run.trajectory.parent.name if run.trajectory.name == "trajectory.h5md" else run.trajectory.stem
    label = f"{Path(model_name).stem} ({run_name})" if model_name else run_name
    return {
        "label": label,
        "trajectory": str(run.trajectory),
        "topology": str(run.topology) if run.topology else None,
        "energy_source": run.energies.source if run.energies is not None else "H5MD observables (eV)",
        "n_atoms": int(universe.atoms.n_atoms),
        "composition": counts,
        "n_frames": int(len(universe.trajectory)),
        "time_first_ps": times[0],
        "time_last_ps": times[1],
        "periodic": universe.trajectory.ts.dimensions is not None,
        "teacher": None if teacher is None else (teacher if isinstance(teacher, str) else getattr(teacher, "name", type(teacher).__name__)),
        "frames_requested": int(frames),
        "reference": str(reference) if reference else None,
        "settings": run.settings,
        "summary": run.summary,
    }


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return finite_or_none(value)
    return value


def _details(analyses: Dict) -> Dict:
    """Per-element and per-frame breakdowns, failures and gaps (small enough for JSON)."""
    out: Dict = {}
    stability = analyses.get("stability")
    if stability is not None:
        out["stability_events"] = _jsonable({k: stability[k] for k in ("collapse", "hydrogen_loss", "explosion", "first_failure")})
    forces = analyses.get("force_fidelity")
    if forces is not None:
        out["force_per_element"] = _jsonable(forces["per_element"])
        out["force_per_frame"] = _jsonable({"time_ps": forces["time_ps"], "frame": forces["frames"],
                                            "rmse_eV_per_A": forces["per_frame_rmse"],
                                            "energy_error_meV_per_atom": forces.get("energy_error_meV_per_atom")})
        out["teacher_gaps"] = _jsonable(forces["gaps"])
        out["audit"] = _jsonable(forces["audit"])
    return out


def verdict(figures: Dict, thresholds: Thresholds, thermostatted: bool = False) -> Dict:
    """The verdict table: each criterion whose section was analysed, its value, pass line and outcome.

    A criterion whose figure could not be measured reads "not measured" and fails the verdict.
    In a thermostatted (NVT) run the total energy is not conserved by design: the
    energy-conservation rows read "not applicable (NVT)" and do not count.
    """
    rows = []
    for criterion in CRITERIA:
        if criterion.section not in figures:
            if criterion.section == "structure":
                continue  # only judged when a reference trajectory was given
            entry = {"value": None, "unit": ""}
        else:
            entry = figures[criterion.section][criterion.figure]
        threshold = getattr(thresholds, criterion.threshold_key)
        outcome = judge(entry["value"], criterion, threshold)
        status = "not measured" if outcome is None else ("pass" if outcome else "fail")
        if thermostatted and criterion.section == "energy_drift":
            status = NOT_APPLICABLE
        comparison = ("|x| " if criterion.absolute else "") + criterion.comparison
        rows.append({
            "criterion": criterion.name,
            "section": criterion.section,
            "figure": criterion.figure,
            "value": entry["value"],
            "unit": entry.get("unit") or _unit_of(criterion.section, criterion.figure),
            "comparison": comparison,
            "threshold": threshold,
            "source": criterion.source,
            "status": status,
        })
    return {"passed": all(r["status"] in ("pass", NOT_APPLICABLE) for r in rows), "criteria": rows}


def _unit_of(section: str, key: str) -> str:
    from .figures import FIGURES

    return next((unit for s, k, unit, _ in FIGURES if s == section and k == key), "")


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    return f"{text} {unit}".strip() if unit and unit != "1" else text


SECTION_TITLES = {
    "energy_drift": "Energy conservation",
    "force_fidelity": "Force fidelity against the teacher",
    "stability": "Stability",
    "structure": "Structure against the reference",
}

PLOT_CAPTIONS = {
    "energies.png": "Energies per atom against time; the red line is the drift fit after the grey warm-up window.",
    "temperature.png": "Temperature, and the largest deviation of any bond from its reference length (collapse above the dashed line).",
    "force_parity.png": "Student against teacher force components on the sampled frames.",
    "angular_error.png": "Angle between student and teacher force on each atom.",
    "force_rmse_per_frame.png": "Force RMSE on each sampled frame: does the error grow as the run wanders?",
    "per_element.png": "Force errors per element.",
    "rdf.png": "Pair distribution of this run and of the reference.",
}


def _headline(data: Dict) -> str:
    rows = data["verdict"]["criteria"]
    failed = [r["criterion"] for r in rows if r["status"] not in ("pass", NOT_APPLICABLE)]
    if not failed:
        return "PASS: every criterion is met."
    return f"FAIL: {len(failed)} of {len(rows)} criteria not met ({', '.join(failed)})."


def _events(data: Dict) -> List[str]:
    lines = []
    events = data.get("details", {}).get("stability_events", {})
    for kind, label in (("collapse", "Bond collapse"), ("hydrogen_loss", "Hydrogen loss"), ("explosion", "Explosion")):
        event = events.get(kind)
        if event:
            extra = {k: v for k, v in event.items() if k not in ("frame", "time_ps")}
            lines.append(f"{label} at frame {event['frame']} (t = {_fmt(event['time_ps'], 'ps')}): {extra}")
    for gap in data.get("details", {}).get("teacher_gaps", []):
        lines.append(f"Teacher failed on frame {gap['frame']} (t = {_fmt(gap['time_ps'], 'ps')}): {gap['error']}")
    summary = data["input"].get("summary") or {}
    reason = summary.get("stop_reason")
    if reason and reason != "completed":
        lines.append(f"The run stopped early: {reason} ({summary.get('message', '')})")
    return lines


def _row(*cells) -> str:
    """A Markdown table row; pipes inside cells (|x|, |E|) are escaped."""
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def render_markdown(data: Dict) -> str:
    """report.md: verdict, figures with units and definitions, events, plots."""
    inp = data["input"]
    out = [f"# Validation report: {inp['label']}", "", f"**{_headline(data)}**", ""]
    out += [f"- trajectory: `{inp['trajectory']}` ({inp['n_atoms']} atoms, {inp['n_frames']} frames, "
            f"{_fmt(inp['time_first_ps'], 'ps')} to {_fmt(inp['time_last_ps'], 'ps')})",
            f"- energies from: {inp['energy_source']}",
            f"- teacher: {inp['teacher'] or 'none (force fidelity not measured)'}",
            f"- generated by {data['generated_by']} at {data['created_utc']}", "",
            "## Verdict", "", "| criterion | value | pass line | source | outcome |", "|---|---|---|---|---|"]
    for r in data["verdict"]["criteria"]:
        out.append(_row(r["criterion"], _fmt(r["value"], r["unit"]), f"{r['comparison']} {_fmt(r['threshold'], r['unit'])}",
                        r["source"], r["status"]))
    events = _events(data)
    if events:
        out += ["", "## Events", ""] + [f"- {line}" for line in events]
    for section, figures in data["figures"].items():
        out += ["", f"## {SECTION_TITLES[section]}", "", "| figure | value | definition |", "|---|---|---|"]
        for key, entry in figures.items():
            out.append(_row(key, _fmt(entry["value"], entry["unit"]), entry["definition"]))
    per_element = data.get("details", {}).get("force_per_element")
    if per_element:
        out += ["", "### Force error per element", "", "| element | atoms | RMSE (eV/Å) | MAE (eV/Å) | median angle (deg) |",
                "|---|---|---|---|---|"]
        for symbol, e in per_element.items():
            out.append(f"| {symbol} | {e['n_atoms']} | {_fmt(e['rmse'])} | {_fmt(e['mae'])} | {_fmt(e['angle_median_deg'])} |")
    if data.get("plots"):
        out += ["", "## Plots", ""]
        for name in data["plots"]:
            out += [f"![{PLOT_CAPTIONS.get(name, name)}]({name})", "", f"*{PLOT_CAPTIONS.get(name, name)}*", ""]
    return "\n".join(out).rstrip() + "\n"


def render_html(data: Dict, directory: Path) -> str:
    """report.html: the same content as report.md, with the PNGs embedded (one file to share)."""
    esc = html.escape
    inp = data["input"]
    colour = "#1a7f37" if data["verdict"]["passed"] else "#cf222e"
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Validation report: {esc(inp['label'])}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#1f2328}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;"
        "vertical-align:top}th{background:#f6f8fa}.pass{color:#1a7f37;font-weight:600}.fail,.not{color:#cf222e;"
        "font-weight:600}img{max-width:100%}figure{margin:1.5em 0}figcaption{color:#57606a;font-size:90%}</style>",
        "</head><body>",
        f"<h1>Validation report: {esc(inp['label'])}</h1>",
        f"<p style='font-size:120%;color:{colour}'><b>{esc(_headline(data))}</b></p>",
        f"<p>Trajectory <code>{esc(inp['trajectory'])}</code>: {inp['n_atoms']} atoms, {inp['n_frames']} frames, "
        f"{esc(_fmt(inp['time_first_ps'], 'ps'))} to {esc(_fmt(inp['time_last_ps'], 'ps'))}. Energies from "
        f"{esc(inp['energy_source'])}. Teacher: {esc(str(inp['teacher']))}. {esc(data['generated_by'])}, {esc(data['created_utc'])}.</p>",
        "<h2>Verdict</h2><table><tr><th>criterion</th><th>value</th><th>pass line</th><th>source</th><th>outcome</th></tr>",
    ]
    for r in data["verdict"]["criteria"]:
        css = {"pass": "pass", "fail": "fail"}.get(r["status"], "not")
        parts.append(f"<tr><td>{esc(r['criterion'])}</td><td>{esc(_fmt(r['value'], r['unit']))}</td>"
                     f"<td>{esc(r['comparison'])} {esc(_fmt(r['threshold'], r['unit']))}</td><td>{esc(r['source'])}</td>"
                     f"<td class='{css}'>{esc(r['status'])}</td></tr>")
    parts.append("</table>")
    events = _events(data)
    if events:
        parts.append("<h2>Events</h2><ul>" + "".join(f"<li>{esc(e)}</li>" for e in events) + "</ul>")
    for section, figures in data["figures"].items():
        parts.append(f"<h2>{esc(SECTION_TITLES[section])}</h2><table><tr><th>figure</th><th>value</th><th>definition</th></tr>")
        for key, entry in figures.items():
            parts.append(f"<tr><td>{esc(key)}</td><td>{esc(_fmt(entry['value'], entry['unit']))}</td><td>{esc(entry['definition'])}</td></tr>")
        parts.append("</table>")
    for name in data.get("plots", []):
        encoded = base64.b64encode((Path(directory) / name).read_bytes()).decode("ascii")
        caption = esc(PLOT_CAPTIONS.get(name, name))
        parts.append(f"<figure><img alt='{caption}' src='data:image/png;base64,{encoded}'><figcaption>{caption}</figcaption></figure>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
