"""The production study on a tiny budget: runs, reports, comparison, speed, resumption."""

import json

import pytest

from mlff_distiller.study import StudyCase, default_cases, run_study


def test_default_cases_pair_students_with_their_family():
    cases = default_cases(["aspirin", "water-32"])
    assert all((c.system == "water-32") == c.student.startswith("water") for c in cases)
    assert any(c.system == "aspirin" for c in cases)


@pytest.mark.slow
def test_tiny_study_runs_and_resumes(tmp_path):
    cases = [StudyCase("organic-standard", "ethanol")]
    reference = {"reference_time_ps": 0.3, "reference_budget_s": 300.0}
    study = run_study(
        tmp_path / "study", cases, time_ps=0.05, equilibrate_ps=0.02, frames=2, progress=False, **reference
    )
    assert study["settings"]["equilibrate_ps"] == 0.02
    saved = json.loads((tmp_path / "study" / "runs" / cases[0].name / "settings.json").read_text())
    assert saved["production_start_ps"] == 0.02 and saved["time"] == 0.05
    row = study["rows"][0]
    assert row["student"] == "organic-standard" and row["system"] == "ethanol"
    assert row["speedup_over_teacher"] == pytest.approx(row["teacher_ms_per_call"] / row["student_ms_per_step"])
    assert row["recommendation"] in ("production", "limited use", "not recommended")
    text = (tmp_path / "study" / "study.md").read_text()
    assert "organic-standard" in text and "speed-up" in text and "after 0.02 ps of Langevin warm-up at 300 K" in text
    assert json.loads((tmp_path / "study" / "study.json").read_text())["rows"][0]["case"] == cases[0].name
    assert (tmp_path / "study" / "study.png").read_bytes().startswith(b"\x89PNG")
    trajectory = tmp_path / "study" / "runs" / cases[0].name / "trajectory.h5md"
    report = tmp_path / "study" / "reports" / cases[0].name / "report.json"
    assert json.loads(report.read_text())["details"]["internal_reference"]["reference_time_ps"] == pytest.approx(0.3)
    assert "0.3 ps, seed 0, the same on any machine" in text
    before, made = trajectory.stat().st_mtime_ns, report.stat().st_mtime_ns
    run_study(tmp_path / "study", cases, time_ps=0.05, equilibrate_ps=0.02, frames=2, progress=False, **reference)
    assert trajectory.stat().st_mtime_ns == before, "a finished run was run again"
    assert report.stat().st_mtime_ns == made, "a report of the same reference was made again"


def test_runs_from_before_the_warm_up_are_run_again(tmp_path):
    """A finished run is kept only when it had the warm-up asked for (old studies started NVE from cold velocities)."""
    from mlff_distiller.demo import bundled_nve_settings
    from mlff_distiller.study import _needs_run

    settings = bundled_nve_settings("ethanol", "organic-tiny", 0.05, 0.5, 300.0, "auto", "double", equilibrate_ps=0.02)
    assert _needs_run(tmp_path, settings)
    (tmp_path / "summary.json").write_text(json.dumps({"stop_reason": "completed", "steps_completed": settings.steps}))
    (tmp_path / "settings.json").write_text(json.dumps({"time": 0.05}))
    assert _needs_run(tmp_path, settings)
    (tmp_path / "settings.json").write_text(json.dumps({"time": 0.05, "equilibrate": 0.02}))
    assert not _needs_run(tmp_path, settings)
