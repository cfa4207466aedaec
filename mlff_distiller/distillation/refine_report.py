"""The report of an active-distillation run: ``refine.json``, ``refine.md`` and ``refine.png``.

Per round: explored frames, the uncertain fraction (score at or above the trust window's low end),
the frames selected and labelled, and the held-out force RMSE (eV/Å) of the model that explored,
on that round's fresh frames; plus the initial and final models on every held-out frame.
"""

import json
import math
from pathlib import Path

from ..safe_write import safe_write, safe_write_text

#: Columns of the Markdown table: (key in a round's summary, header, format).
COLUMNS = [
    ("round", "round", "{}"),
    ("explored", "explored frames", "{}"),
    ("uncertain_fraction", "uncertain fraction", "{:.3f}"),
    ("above_trust_high", "above HI", "{}"),
    ("selected", "selected", "{}"),
    ("labelled", "labelled", "{}"),
    ("heldout_frames", "held-out frames", "{}"),
    ("heldout_force_rmse", "held-out force RMSE (eV/Å)", "{:.4f}"),
    ("heldout_force_rmse_after", "after retraining, all held-out (eV/Å)", "{:.4f}"),
    ("seconds", "time (s)", "{:.0f}"),
]


def round_line(row: dict) -> str:
    """One line per round, as printed while the run goes."""
    return (
        f"round {row['round']}: {row['explored']} frames explored, uncertain fraction "
        f"{_cell(row.get('uncertain_fraction'), '{:.3f}')}, {row.get('selected', 0)} selected, "
        f"{row.get('labelled', 0)} labelled, held-out force RMSE {_cell(row.get('heldout_force_rmse'), '{:.4f}')} eV/Å, "
        f"{row.get('seconds', 0):.0f} s" + (f" ({row['stop']})" if row.get("stop") else "")
    )


def write_report(folder: Path, report: dict, overwrite: bool = True) -> list[Path]:
    """Write ``refine.json``, ``refine.md`` and ``refine.png`` (the PNG when a round has a figure) into ``folder``."""
    paths = [
        safe_write_text(
            folder / "refine.json", json.dumps(report, indent=2, default=_json) + "\n", overwrite=overwrite
        ),
        safe_write_text(folder / "refine.md", markdown(report), overwrite=overwrite),
    ]
    if report["rounds"]:
        paths.append(safe_write(folder / "refine.png", lambda staged: _plot(staged, report), overwrite=overwrite))
    return paths


def markdown(report: dict) -> str:
    """The report as Markdown: what was run, the per-round table, the initial and final models, the stop."""
    settings = report["settings"]
    lines = [
        "# Active distillation (mlffd refine)",
        "",
        f"Teacher {settings['teacher']}; selection by {settings['select']} "
        f"({report['members']} student{'s' if report['members'] > 1 else ''}); trust window "
        f"[{settings['trust_low']:g}, {settings['trust_high']:g}) eV/Å; exploration "
        f"{', '.join(f'{t:g}' for t in settings['temperatures'])} K, {settings['trajectories']} trajectories "
        f"of {settings['time_ps']:g} ps per structure and temperature.",
        "",
        "Uncertain fraction: explored frames whose score (largest per-atom force "
        + ("deviation of the committee" if settings["select"] == "committee" else "error against the teacher")
        + f") is at least {settings['trust_low']:g} eV/Å. Held-out force RMSE: "
        "sqrt(mean of (F_student - F_teacher)² over atoms and components) of the model that explored, on "
        "explored frames of that round labelled by the teacher and never trained on.",
        "",
        "| " + " | ".join(header for _, header, _ in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in report["rounds"]:
        lines.append("| " + " | ".join(_cell(row.get(key), fmt) for key, _, fmt in COLUMNS) + " |")
    initial, final = report.get("initial_heldout_force_rmse"), report.get("final_heldout_force_rmse")
    lines += [
        "",
        f"On all {report.get('heldout_frames', 0)} held-out frames: the student of round 0 {_cell(initial, '{:.4f}')} eV/Å, "
        f"final model {_cell(final, '{:.4f}')} eV/Å.",
        "",
        f"Dataset: {report['dataset']['frames']} frames ({report['dataset']['added']} added by this run), "
        f"SHA-256 {report['dataset']['hash'][:16]}. Stopped: {report['stop_reason']}.",
        "",
        "![held-out force RMSE and uncertain fraction per round](refine.png)",
        "",
    ]
    return "\n".join(lines)


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(value)


def _json(value):
    return float(value)


def _plot(path: Path, report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rounds"]
    rounds = [row["round"] for row in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(rounds, [_nan(row.get("heldout_force_rmse")) for row in rows], "o-", label="model that explored")
    left.plot(
        rounds,
        [_nan(row.get("heldout_force_rmse_after")) for row in rows],
        "s--",
        label="after retraining (all held-out so far)",
    )
    left.axhline(report["settings"]["target_force_rmse"], color="grey", linestyle=":", label="target")
    left.set_xlabel("round")
    left.set_ylabel("held-out force RMSE (eV/Å)")
    left.legend()
    right.plot(rounds, [_nan(row.get("uncertain_fraction")) for row in rows], "o-", color="C2")
    right.axhline(report["settings"]["target_uncertain"], color="grey", linestyle=":")
    right.set_xlabel("round")
    right.set_ylabel("uncertain fraction of explored frames")
    for axis in (left, right):
        axis.set_xticks(rounds)
    figure.tight_layout()
    figure.savefig(path, dpi=100, format="png")
    plt.close(figure)


def _nan(value) -> float:
    return float("nan") if value is None else float(value)
