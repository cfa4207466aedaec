"""Compare validation reports of several models: one table, one figure, a recommendation each."""

import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import MLFFDError
from ..safe_write import check_output, safe_write_text
from .plots import plot_comparison
from .thresholds import RELATIVE_TOLERANCE
from .verdict import passes

COMPARISON_FILES = ("comparison.md", "comparison.json", "comparison.png")
#: Force errors beyond this multiple of their pass line (or R² below NOT_RECOMMENDED_R2) rule a model out.
FORCE_RULE_OUT_FACTOR = 2.0
NOT_RECOMMENDED_R2 = 0.5
#: A run that fails before this many ps is not recommended for anything.
MIN_USEFUL_TIME_PS = 1.0


def read_report(directory: str | Path) -> dict:
    """The ``report.json`` of a report directory (or the file itself)."""
    path = Path(directory)
    path = path / "report.json" if path.is_dir() else path
    if not path.is_file():
        raise MLFFDError(f"{directory} holds no report.json; create one with mlffd validate")
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise MLFFDError(f"{path} is not valid JSON: {exc}") from None


def _criteria(data: dict) -> dict[str, dict]:
    return {row["figure"]: row for row in data["verdict"]["criteria"]}


def recommend(data: dict) -> tuple[str, str]:
    """A recommendation from a report's measured numbers.

    Returns
    -------
    (category, reason)
        category is "production", "limited use" or "not recommended"; reason says why, and
        for limited use, for what (short runs under a stated time, thermostatted sampling
        rather than NVE dynamics, ...).
    """
    rows = _criteria(data)
    thresholds = data["thresholds"]
    stability = data["figures"].get("stability", {})
    stable = stability.get("stable_time_ps", {}).get("value") or 0.0
    completed = stability.get("completed_time_ps", {}).get("value") or 0.0
    failure = (data.get("details", {}).get("stability_events") or {}).get("first_failure")
    force_rows = [rows[k] for k in ("rmse", "mae", "angle_median_deg", "r2") if k in rows]
    forces_measured = all(r["value"] is not None for r in force_rows)
    forces_ok = forces_measured and all(r["status"] == "pass" for r in force_rows)
    if data["verdict"]["passed"] and not failure:  # a failure after the required time still limits the use
        return "production", f"meets every criterion over {completed:.3g} ps"
    if forces_measured and not forces_ok:
        rmse, r2 = rows["rmse"]["value"], rows["r2"]["value"]
        if rmse > FORCE_RULE_OUT_FACTOR * thresholds["max_force_rmse"] or r2 < NOT_RECOMMENDED_R2:
            return "not recommended", f"forces far from the teacher (RMSE {rmse:.3g} eV/Å, R² {r2:.3g})"
    if failure and stable < MIN_USEFUL_TIME_PS:
        start = ((data.get("input") or {}).get("ensemble") or {}).get("production_start_ps") or 0.0
        if failure["time_ps"] < start:
            return "not recommended", (
                f"fails at {failure['time_ps']:.3g} ps, during the {start:.3g} ps warm-up ({_failure_kind(data)})"
            )
        return "not recommended", f"fails after {stable:.3g} ps of production ({_failure_kind(data)})"
    uses: list[str] = []
    if failure:
        uses.append(f"short runs under {stable:.3g} ps ({_failure_kind(data)} after that)")
    elif stable < thresholds["min_stable_time_ps"] * (1.0 - RELATIVE_TOLERANCE):
        uses.append(
            f"runs up to {completed:.3g} ps, the length validated (validate a run of "
            f"{thresholds['min_stable_time_ps']:.3g} ps for production)"
        )
    energy_rows = [
        rows[k] for k in ("slope_meV_per_atom_per_ps", "drift_to_fluctuation", "relative_drift_percent") if k in rows
    ]
    if any(not passes(r["status"]) for r in energy_rows):
        slope = rows.get("slope_meV_per_atom_per_ps", {}).get("value")
        slope_text = f"{slope:.3g} meV/atom/ps" if slope is not None else "not measured"
        uses.append(f"sampling with a thermostat (NVT), not NVE dynamics (energy drift {slope_text})")
    if forces_measured and not forces_ok:
        uses.append(
            f"qualitative sampling only: forces within {FORCE_RULE_OUT_FACTOR:g}x of the pass lines "
            f"(RMSE {rows['rmse']['value']:.3g} eV/Å, median angle {rows['angle_median_deg']['value']:.3g}°)"
        )
    if not forces_measured:
        uses.append("forces unchecked against a teacher: run mlffd validate with --teacher before trusting them")
    internal = rows.get("max_outside_fraction")
    if internal is not None and internal["status"] == "fail":
        worst = (data.get("details", {}).get("internal_worst") or [{}])[0].get("label", "a bond or angle")
        uses.append(
            f"qualitative sampling only: {worst} leaves the teacher's range on {100 * internal['value']:.0f} % of frames"
        )
    temperature = rows.get("temperature_deviation_percent")
    if temperature is not None and temperature["status"] == "fail":
        uses.append(
            f"validated {temperature['value']:+.0f} % away from its target temperature: validate a run at the "
            "temperature of use (mlffd md --equilibrate)"
        )
    if not uses:
        failed = [r["criterion"] for r in data["verdict"]["criteria"] if not passes(r["status"])]
        uses.append("failed: " + ", ".join(failed))
    return "limited use", "; ".join(uses)


def _failure_kind(data: dict) -> str:
    events = data.get("details", {}).get("stability_events") or {}
    first = events.get("first_failure") or {}
    for kind, label in (
        ("collapse", "bond collapse"),
        ("hydrogen_loss", "hydrogen loss"),
        ("explosion", "explosion"),
        ("close_contact", "non-bonded close contact"),
    ):
        if events.get(kind) and events[kind].get("time_ps") == first.get("time_ps"):
            return label
    return "failure"


def _ratio(value: float | None, threshold: float) -> float | None:
    if value is None or not threshold:
        return None
    return abs(value) / threshold


def compare_reports(directories: Sequence[str | Path], output: str | Path, overwrite: bool = False) -> dict:
    """Write comparison.md, comparison.json and comparison.png for several report directories.

    Parameters
    ----------
    directories : sequence of paths
        Report directories written by :meth:`ValidationReport.write` (or their report.json files).
    output : path
        Directory to write into.
    overwrite : bool
        Replace an existing comparison (never a report it reads).

    Returns
    -------
    dict
        The content of comparison.json: one row per model with its key figures (units in the
        keys), verdict and recommendation.
    """
    output = Path(output)
    for directory in directories:
        if output.is_dir() and Path(directory).is_dir() and os.path.samefile(output, directory):
            raise MLFFDError(f"{output} is one of the reports being compared; write the comparison to another folder")
    inputs = [*directories, *(Path(d) / "report.json" for d in directories)]
    for name in COMPARISON_FILES:
        check_output(output / name, inputs=inputs, overwrite=overwrite)
    rows = []
    for directory in directories:
        data = read_report(directory)
        fig = functools.partial(_figure, data)
        t = data["thresholds"]
        category, reason = recommend(data)
        r2 = fig("force_fidelity", "r2")
        rows.append(
            {
                "label": data["input"]["label"],
                "report": str(directory),
                "n_atoms": data["input"]["n_atoms"],
                "stable_time_ps": fig("stability", "stable_time_ps"),
                "completed_time_ps": fig("stability", "completed_time_ps"),
                "drift_meV_per_atom_per_ps": fig("energy_drift", "slope_meV_per_atom_per_ps"),
                "drift_to_fluctuation": fig("energy_drift", "drift_to_fluctuation"),
                "relative_drift_percent": fig("energy_drift", "relative_drift_percent"),
                "force_rmse_eV_per_A": fig("force_fidelity", "rmse"),
                "force_mae_eV_per_A": fig("force_fidelity", "mae"),
                "median_angle_deg": fig("force_fidelity", "angle_median_deg"),
                "force_r2": r2,
                "temperature_mean_K": fig("temperature", "temperature_mean_K"),
                "min_nonbonded_distance_A": fig("stability", "min_nonbonded_distance_A"),
                "internal_outside_fraction": fig("internal_coordinates", "max_outside_fraction"),
                "verdict": "pass" if data["verdict"]["passed"] else "fail",
                "recommendation": category,
                "reason": reason,
                "ratios": {
                    "stable": _ratio(t["min_stable_time_ps"], max(fig("stability", "stable_time_ps") or 0.0, 1e-3)),
                    "slope": _ratio(fig("energy_drift", "slope_meV_per_atom_per_ps"), t["max_drift_slope"]),
                    "ratio": _ratio(fig("energy_drift", "drift_to_fluctuation"), t["max_drift_to_fluctuation"]),
                    "relative": _ratio(fig("energy_drift", "relative_drift_percent"), t["max_relative_drift_percent"]),
                    "rmse": _ratio(fig("force_fidelity", "rmse"), t["max_force_rmse"]),
                    "angle": _ratio(fig("force_fidelity", "angle_median_deg"), t["max_median_angle_deg"]),
                    "one_minus_r2": _ratio(None if r2 is None else 1.0 - r2, 1.0 - t["min_r2"]),
                },
            }
        )
    result = {"models": rows}
    text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    safe_write_text(output / "comparison.json", text, inputs=inputs, overwrite=overwrite)
    safe_write_text(output / "comparison.md", render_comparison(rows), inputs=inputs, overwrite=overwrite)
    plot_comparison(rows, output / "comparison.png")
    return result


COLUMNS = [
    ("label", "model", ""),
    ("n_atoms", "atoms", ""),
    ("stable_time_ps", "stable (ps)", ".3g"),
    ("drift_meV_per_atom_per_ps", "drift (meV/atom/ps)", ".3g"),
    ("drift_to_fluctuation", "drift/fluct.", ".3g"),
    ("relative_drift_percent", "rel. drift (%)", ".3g"),
    ("force_rmse_eV_per_A", "force RMSE (eV/Å)", ".3g"),
    ("median_angle_deg", "median angle (°)", ".3g"),
    ("force_r2", "R²", ".3f"),
    ("temperature_mean_K", "T (K)", ".0f"),
    ("min_nonbonded_distance_A", "closest non-bonded (Å)", ".2f"),
    ("internal_outside_fraction", "bonds/angles outside teacher", ".2f"),
    ("verdict", "verdict", ""),
    ("recommendation", "recommendation", ""),
]


def render_comparison(rows: list[dict]) -> str:
    """The comparison as a Markdown table, each model's reason below it."""
    lines = [
        "# Model comparison",
        "",
        "| " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in rows:
        cells = []
        for key, _, fmt in COLUMNS:
            value = row[key]
            cells.append("—" if value is None else (format(value, fmt) if fmt else str(value)))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Recommendations", ""]
    lines += [f"- **{row['label']}**: {row['recommendation']}: {row['reason']}." for row in rows]
    lines += ["", "![Each model's figures as a fraction of their pass line](comparison.png)", ""]
    return "\n".join(lines)


def _figure(report: dict, section: str, key: str):
    """The value of figure ``key`` of ``section`` in a report (report.json's content), or None."""
    return report["figures"].get(section, {}).get(key, {}).get("value")
