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
    study = run_study(tmp_path / "study", cases, time_ps=0.05, frames=2, progress=False)
    row = study["rows"][0]
    assert row["student"] == "organic-standard" and row["system"] == "ethanol"
    assert row["speedup_over_teacher"] == pytest.approx(row["teacher_ms_per_call"] / row["student_ms_per_step"])
    assert row["recommendation"] in ("production", "limited use", "not recommended")
    text = (tmp_path / "study" / "study.md").read_text()
    assert "organic-standard" in text and "speed-up" in text
    assert json.loads((tmp_path / "study" / "study.json").read_text())["rows"][0]["case"] == cases[0].name
    assert (tmp_path / "study" / "study.png").read_bytes().startswith(b"\x89PNG")
    trajectory = tmp_path / "study" / "runs" / cases[0].name / "trajectory.h5md"
    before = trajectory.stat().st_mtime_ns
    run_study(tmp_path / "study", cases, time_ps=0.05, frames=2, progress=False)
    assert trajectory.stat().st_mtime_ns == before, "a finished run was run again"
