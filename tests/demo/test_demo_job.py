"""The demo job end to end on a short run: files, plots, and a verdict that matches its own numbers."""

import inspect
import json
import operator

import pytest

from mlff_distiller.cli import build_parser
from mlff_distiller.demo import EQUILIBRATE_PS, run_demo, summary_lines
from mlff_distiller.study import run_study

COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _expected_status(row) -> str:
    if row["value"] is None:
        return (
            row["status"] if row["status"].startswith("not ") else "not measured"
        )  # not measured, not applicable (...)
    value = abs(row["value"]) if row["comparison"].startswith("|x| ") else row["value"]
    if row["comparison"] == "between":
        lower, upper = row["threshold"]
        return "pass" if lower <= value <= upper else "fail"
    return "pass" if COMPARE[row["comparison"].removeprefix("|x| ")](value, row["threshold"]) else "fail"


@pytest.mark.slow
def test_short_demo_writes_a_consistent_report(tmp_path):
    result = run_demo(
        output=tmp_path / "demo",
        time_ps=0.1,
        equilibrate_ps=0.05,
        frames=3,
        progress=False,
        reference_time_ps=0.3,
        reference_budget_s=300.0,
    )
    assert result.md.completed and result.md.steps_completed == 300
    saved = json.loads((result.run_dir / "settings.json").read_text())
    assert saved["ensemble"] == "nve" and saved["production_start_ps"] == 0.05
    for name in ("trajectory.h5md", "energies.csv", "settings.json", "summary.json", "topology.pdb"):
        assert (result.run_dir / name).is_file(), name
    for name in ("report.json", "report.md", "report.html"):
        assert (result.report_dir / name).is_file(), name
    assert list(result.report_dir.glob("*.png")), "no plots"

    data = json.loads((result.report_dir / "report.json").read_text())
    rows = data["verdict"]["criteria"]
    assert rows, "empty verdict"
    assert data["details"]["internal_reference"]["reference_time_ps"] == pytest.approx(0.3)  # the length asked
    for row in rows:
        assert row["status"] == _expected_status(row), row
    assert data["verdict"]["passed"] == all(r["status"] == "pass" for r in rows)
    # 0.1 ps is far short of the 10 ps the production criterion asks for: the verdict must say so.
    assert not data["verdict"]["passed"]
    text = "\n".join(summary_lines(result))
    assert "FAIL" in text and str(result.report_dir) in text
    assert "0.05 ps Langevin warm-up at 300 K, then 0.1 ps NVE" in text


def test_demo_and_study_warm_up_by_default():
    """The API and the command line agree on the default warm-up, and there is one."""
    assert EQUILIBRATE_PS > 0
    for function in (run_demo, run_study):
        assert inspect.signature(function).parameters["equilibrate_ps"].default == EQUILIBRATE_PS
    for command in (["demo"], ["study", "-o", "out"]):
        assert build_parser().parse_args(command).equilibrate == EQUILIBRATE_PS


def test_refuses_to_overwrite(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "keep.txt").write_text("precious")
    from mlff_distiller import OverwriteError

    with pytest.raises(OverwriteError):
        run_demo(output=tmp_path / "demo", time_ps=0.01, progress=False)
    assert (tmp_path / "demo" / "keep.txt").read_text() == "precious"
