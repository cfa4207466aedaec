"""A run that explodes during its Langevin warm-up has no production frames: `mlffd validate` still
writes a failing report that says why, instead of a traceback (it crashed drawing the energies)."""

import json


def test_validate_reports_a_run_that_stopped_in_its_warm_up(mlffd, tmp_path):
    run = tmp_path / "run"
    # a 5 fs step on hydrogens: the temperature limit (10,000 K) stops it within the 1 ps warm-up
    md = mlffd(
        "md",
        "ethanol",
        "--model",
        "organic-ultra-tiny",
        "--timestep",
        "5",
        "--equilibrate",
        "1",
        "--time",
        "0.5",
        "--report-interval",
        "10",
        "--seed",
        "1",
        "-o",
        run,
        "--quiet",
    )
    summary = json.loads((run / "summary.json").read_text())
    assert md.code == 1 and summary["phase"] == "equilibration" and summary["stop_reason"] == "temperature limit"

    result = mlffd("validate", run, "--teacher", "none", "-o", tmp_path / "report", "--quiet")
    # the in-process runner lets an exception through: reaching the next line means no traceback
    assert result.code == 1 and "verdict: FAIL" in result.out
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["verdict"]["passed"] is False
    assert report["details"]["stability_events"]["explosion"]["time_ps"] <= 1.0
    assert (tmp_path / "report" / "temperature.png").is_file()
    assert not (tmp_path / "report" / "energies.png").exists()  # no production frames to draw
