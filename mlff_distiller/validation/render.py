"""The report's renderings: Markdown and a self-contained HTML page with the plots embedded."""

import base64
import html
from pathlib import Path

from .verdict import passes


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return " to ".join(_fmt(v) for v in value) + (f" {unit}" if unit and unit != "1" else "")
    if isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    return f"{text} {unit}".strip() if unit and unit != "1" else text


SECTION_TITLES: dict[str, str] = {
    "energy_drift": "Energy conservation",
    "force_fidelity": "Force fidelity against the teacher",
    "stability": "Stability",
    "structure": "Structure against the reference",
    "temperature": "Temperature of the production",
    "internal_coordinates": "Internal coordinates against the teacher's MD",
    "model_deviation": "Model deviation (committee force spread; teacher-free, not judged)",
}

PLOT_CAPTIONS = {
    "energies.png": "Energies per atom against time; the red line is the drift fit after the grey warm-up window.",
    "temperature.png": "Temperature, and the largest deviation of any bond from its reference length (collapse above the dashed line).",
    "force_parity.png": "Student against teacher force components on the sampled frames.",
    "angular_error.png": "Angle between student and teacher force on each atom.",
    "force_rmse_per_frame.png": "Force RMSE on each sampled frame: does the error grow as the run wanders?",
    "per_element.png": "Force errors per element.",
    "rdf.png": "Pair distribution of this run and of the reference.",
    "close_contacts.png": "Closest non-bonded pair against its contact distance (below 1 is a close contact), and pairs in contact per frame.",
    "internal_coordinates.png": "The bonds and angles that leave the teacher's distribution most: this run against the teacher's MD.",
    "model_deviation.png": "The committee's largest per-atom force deviation per frame with DP-GEN's trust levels, next to the "
    "teacher's force error on the compared frames; right: one against the other.",
}


def _headline(data: dict) -> str:
    rows = data["verdict"]["criteria"]
    failed = [r["criterion"] for r in rows if not passes(r["status"])]
    if not failed:
        return "PASS: every criterion is met."
    return f"FAIL: {len(failed)} of {len(rows)} criteria not met ({', '.join(failed)})."


def event_lines(data: dict) -> list[str]:
    """The report's events in words: stability failures, teacher gaps, an early stop."""
    lines = []
    events = data.get("details", {}).get("stability_events", {})
    for kind, label in (
        ("collapse", "Bond collapse"),
        ("hydrogen_loss", "Hydrogen loss"),
        ("explosion", "Explosion"),
        ("close_contact", "Non-bonded close contact"),
    ):
        event = events.get(kind)
        if event:
            start = (data["input"].get("ensemble") or {}).get("production_start_ps") or 0.0
            phase = ", during the equilibration" if event["time_ps"] is not None and event["time_ps"] < start else ""
            lines.append(
                f"{label} at frame {event['frame']} (t = {_fmt(event['time_ps'], 'ps')}{phase}): {_event_text(kind, event)}"
            )
    for gap in data.get("details", {}).get("teacher_gaps", []):
        lines.append(f"Teacher failed on frame {gap['frame']} (t = {_fmt(gap['time_ps'], 'ps')}): {gap['error']}")
    summary = data["input"].get("summary") or {}
    reason = summary.get("stop_reason")
    if reason and reason != "completed":
        lines.append(f"The run stopped early: {reason} ({summary.get('message', '')})")
    return lines


def _event_text(kind: str, event: dict) -> str:
    """What happened, in words: the atoms by name and the distances with their limits."""
    names = event.get("names") or [str(a) for a in event.get("atoms", [])]
    if kind == "close_contact":
        return (
            f"{'…'.join(names)} at {_fmt(event['distance_A'], 'Å')} (contact distance {_fmt(event['contact_distance_A'], 'Å')}); "
            f"{event['n_contacts']} pair(s) in contact on that frame"
        )
    if kind == "collapse":
        return (
            f"bond {'-'.join(names)} at {_fmt(event['length_A'], 'Å')} against its reference "
            f"{_fmt(event['reference_length_A'], 'Å')}; {event['n_bonds_broken']} bond(s) off by more than the tolerance"
        )
    if kind == "hydrogen_loss":
        return f"{', '.join(names)} farther than the hydrogen distance from every heavy atom"
    return str(event.get("reason", ""))


def _row(*cells) -> str:
    """A Markdown table row; pipes inside cells (|x|, |E|) are escaped."""
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def render_markdown(data: dict) -> str:
    """report.md: verdict, figures with units and definitions, events, plots."""
    inp = data["input"]
    out = [f"# Validation report: {inp['label']}", "", f"**{_headline(data)}**", ""]
    out += [
        f"- trajectory: `{inp['trajectory']}` ({inp['n_atoms']} atoms, {inp['n_frames']} frames, "
        f"{_fmt(inp['time_first_ps'], 'ps')} to {_fmt(inp['time_last_ps'], 'ps')})",
        f"- energies from: {inp['energy_source']}",
        f"- ensemble: {_ensemble_line(inp)}",
        f"- atoms judged: {_selection_line(inp)}",
        f"- teacher: {inp['teacher'] or 'none (force fidelity not measured)'}",
        f"- generated by {data['generated_by']} at {data['created_utc']}",
        "",
        "## Verdict",
        "",
        "| criterion | value | pass line | source | outcome |",
        "|---|---|---|---|---|",
    ]
    for r in data["verdict"]["criteria"]:
        out.append(
            _row(
                r["criterion"],
                _fmt(r["value"], r["unit"]),
                f"{r['comparison']} {_fmt(r['threshold'], r['unit'])}",
                r["source"],
                r["status"],
            )
        )
    if data.get("notes"):
        out += ["", "## Notes", ""] + [f"- {line}" for line in data["notes"]]
    events = event_lines(data)
    if events:
        out += ["", "## Events", ""] + [f"- {line}" for line in events]
    for section, figures in data["figures"].items():
        out += [
            "",
            f"## {SECTION_TITLES.get(section, section)}",
            "",
            "| figure | value | definition |",
            "|---|---|---|",
        ]
        for key, entry in figures.items():
            out.append(_row(key, _fmt(entry["value"], entry["unit"]), entry["definition"]))
    for title, header, rows in _tables(data):
        out += ["", f"### {title}", "", _row(*header), "|" + "---|" * len(header)]
        out += [_row(*row) for row in rows]
    if data.get("plots"):
        out += ["", "## Plots", ""]
        for name in data["plots"]:
            out += [f"![{PLOT_CAPTIONS.get(name, name)}]({name})", "", f"*{PLOT_CAPTIONS.get(name, name)}*", ""]
    return "\n".join(out).rstrip() + "\n"


def render_html(data: dict, directory: Path) -> str:
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
        f"{esc(inp['energy_source'])}. Ensemble: {esc(_ensemble_line(inp))}. Atoms judged: {esc(_selection_line(inp))}. "
        f"Teacher: {esc(str(inp['teacher']))}. {esc(data['generated_by'])}, {esc(data['created_utc'])}.</p>",
        "<h2>Verdict</h2><table><tr><th>criterion</th><th>value</th><th>pass line</th><th>source</th><th>outcome</th></tr>",
    ]
    for r in data["verdict"]["criteria"]:
        css = {"pass": "pass", "fail": "fail"}.get(r["status"], "not")
        parts.append(
            f"<tr><td>{esc(r['criterion'])}</td><td>{esc(_fmt(r['value'], r['unit']))}</td>"
            f"<td>{esc(r['comparison'])} {esc(_fmt(r['threshold'], r['unit']))}</td><td>{esc(r['source'])}</td>"
            f"<td class='{css}'>{esc(r['status'])}</td></tr>"
        )
    parts.append("</table>")
    if data.get("notes"):
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in data["notes"]) + "</ul>")
    events = event_lines(data)
    if events:
        parts.append("<h2>Events</h2><ul>" + "".join(f"<li>{esc(e)}</li>" for e in events) + "</ul>")
    for section, figures in data["figures"].items():
        parts.append(
            f"<h2>{esc(SECTION_TITLES.get(section, section))}</h2><table><tr><th>figure</th><th>value</th><th>definition</th></tr>"
        )
        for key, entry in figures.items():
            parts.append(
                f"<tr><td>{esc(key)}</td><td>{esc(_fmt(entry['value'], entry['unit']))}</td><td>{esc(entry['definition'])}</td></tr>"
            )
        parts.append("</table>")
    for title, header, rows in _tables(data):
        parts.append(f"<h3>{esc(title)}</h3><table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</table>")
    for name in data.get("plots", []):
        encoded = base64.b64encode((Path(directory) / name).read_bytes()).decode("ascii")
        caption = esc(PLOT_CAPTIONS.get(name, name))
        parts.append(
            f"<figure><img alt='{caption}' src='data:image/png;base64,{encoded}'><figcaption>{caption}</figcaption></figure>"
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _ensemble_line(inp: dict) -> str:
    ensemble = inp.get("ensemble") or {}
    if not ensemble:
        return "NVE (assumed)"
    line = f"{ensemble['name'].upper()} ({ensemble['source']})"
    if ensemble.get("target_temperature_K"):
        line += f", target {ensemble['target_temperature_K']:g} K"
    if ensemble.get("production_start_ps"):
        line += f", production from {ensemble['production_start_ps']:g} ps (equilibration before it)"
    return line


def _selection_line(inp: dict) -> str:
    selection = inp.get("selection") or {}
    if not selection.get("expression"):
        return f"all {inp['n_atoms']} atoms"
    return (
        f"{selection['n_atoms']} of {inp['n_atoms']} atoms, selected by '{selection['expression']}' "
        f"({selection['forces']})"
    )


def _tables(data: dict) -> list[tuple]:
    """The report's breakdowns as (title, header, rows): errors per element, worst atoms, worst internal coordinates."""
    details = data.get("details", {})
    tables = []
    if details.get("force_per_element"):
        tables.append(
            (
                "Force error per element",
                ("element", "atoms", "RMSE (eV/Å)", "MAE (eV/Å)", "median angle (deg)"),
                [
                    (symbol, e["n_atoms"], _fmt(e["rmse"]), _fmt(e["mae"]), _fmt(e["angle_median_deg"]))
                    for symbol, e in details["force_per_element"].items()
                ],
            )
        )
    if details.get("force_worst_atoms"):
        tables.append(
            (
                "Atoms with the largest force error",
                ("atom (index)", "element", "RMSE (eV/Å)"),
                [(w["index"], w["element"], _fmt(w["rmse"])) for w in details["force_worst_atoms"]],
            )
        )
    if details.get("internal_worst"):
        tables.append(
            (
                "Bonds and angles furthest from the teacher's MD",
                ("coordinate", "frames outside the teacher's range (%)", "JS divergence (bits)", "shift"),
                [
                    (w["label"], _fmt(100 * w["outside_fraction"]), _fmt(w["divergence"]), _fmt(w["shift"], w["unit"]))
                    for w in details["internal_worst"]
                ],
            )
        )
    return tables
