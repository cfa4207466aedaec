"""Validation reports and comparisons write safely: never into their run, a failed rendering keeps the old report."""

import hashlib

import pytest
from validation_systems import student_run

from mlff_distiller.validation import report as report_module
from mlff_distiller.validation import validate


def digest(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def assert_refused(result, fragment) -> None:
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlffd: error: ") and "Traceback" not in result.err, result.err
    assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return student_run(tmp_path_factory.mktemp("student"), time_ps=0.05)


@pytest.fixture(scope="module")
def report(run_dir):
    return validate(run_dir, teacher=None)


def test_validate_refuses_its_run_and_a_file_as_output(run_dir, tmp_path, monkeypatch, mlffd):
    before = digest(run_dir)
    assert_refused(
        mlffd("validate", run_dir, "--teacher", "none", "--quiet", "-o", run_dir, "--overwrite"), "is the input"
    )
    monkeypatch.chdir(run_dir.parent)
    assert_refused(
        mlffd("validate", "run", "--teacher", "none", "--quiet", "-o", "./run/", "--overwrite"), "is the input"
    )
    (tmp_path / "file").write_text("x")
    assert_refused(mlffd("validate", run_dir, "--teacher", "none", "--quiet", "-o", tmp_path / "file"), "is a file")
    assert digest(run_dir) == before


def test_failed_rendering_keeps_the_previous_report(report, tmp_path, monkeypatch):
    out = report.write(tmp_path / "r")
    before = {name: (out / name).read_bytes() for name in report_module.REPORT_FILES}

    def fail(*args):
        raise RuntimeError("rendering failed")

    monkeypatch.setattr(report_module, "render_html", fail)
    with pytest.raises(RuntimeError, match="rendering failed"):
        report.write(out, overwrite=True)
    assert {name: (out / name).read_bytes() for name in report_module.REPORT_FILES} == before
    assert [p.name for p in out.iterdir() if ".partial" in p.name] == []


def test_overwrite_removes_plots_the_new_report_does_not_draw(report, tmp_path):
    out = report.write(tmp_path / "r")
    (out / "old.png").write_bytes(b"stale")
    report.write(out, overwrite=True)
    assert not (out / "old.png").exists() and {p.name for p in out.glob("*.png")} == set(report.data["plots"])


def test_compare_refusals(report, tmp_path, mlffd):
    out = report.write(tmp_path / "r")
    (tmp_path / "file").write_text("x")
    assert_refused(mlffd("compare", out, "-o", tmp_path / "file"), "is a file, not a folder")
    (tmp_path / "cmp" / "comparison.md").mkdir(parents=True)
    assert_refused(mlffd("compare", out, "-o", tmp_path / "cmp", "--overwrite"), "is a directory")
    assert mlffd("compare", out, "-o", tmp_path / "ok").code == 0
    assert [p.name for p in tmp_path.rglob("*") if ".partial" in p.name] == []
