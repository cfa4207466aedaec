"""Reports on a real short run of a student (mlffd md's MDRun): files, plots, schema, CLI, comparison."""

import copy
import json

import jsonschema
import MDAnalysis as mda
import numpy as np
import pytest
from kit import ENGINE_DUMP_FORCES, EXACT, SCF_START_FORCES, SCF_START_FORCES_ABS
from validation_systems import student_run

from mlff_distiller.models import StudentCalculator
from mlff_distiller.teachers import load_teacher
from mlff_distiller.validation import ForceFidelity, Thresholds, ValidationReport, compare_reports, open_run, validate
from mlff_distiller.validation.report import SCHEMA_PATH
from mlff_distiller.validation.verdict import verdict

PLOTS = {
    "energies.png",
    "temperature.png",
    "force_parity.png",
    "angular_error.png",
    "force_rmse_per_frame.png",
    "per_element.png",
    "close_contacts.png",
}
#: Pass lines no random student can miss, to see the verdict pass.
LENIENT = (
    "min_stable_time_ps = 0.0\nmax_relative_drift_percent = 100.0\nmax_force_rmse = 1e6\nmax_force_mae = 1e6\n"
    "max_median_angle_deg = 180.0\nmin_r2 = -1e9\nmax_drift_slope = 1e6\nmax_drift_to_fluctuation = 1e6\n"
    "max_temperature_deviation_percent = 1e6\n"
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return student_run(tmp_path_factory.mktemp("student"))


@pytest.fixture(scope="module")
def audited_run_dir(tmp_path_factory):
    return student_run(tmp_path_factory.mktemp("audited"), time_ps=0.02, audit_every=5)


@pytest.fixture(scope="module")
def report(run_dir):
    return validate(run_dir, teacher="gfn2-xtb", frames=12)


def test_report_files_plots_and_schema(report, tmp_path):
    out = report.write(tmp_path / "report")
    names = {p.name for p in out.iterdir()}
    assert {"report.json", "report.md", "report.html"} | PLOTS <= names
    for png in PLOTS:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "report.json").read_text())
    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text()))
    assert set(data["plots"]) == PLOTS
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(PLOTS) and "src='energies.png'" not in html
    markdown = (out / "report.md").read_text()
    assert "## Verdict" in markdown and "meV/atom/ps" in markdown and "(energies.png)" in markdown
    assert data["input"]["teacher"] == "gfn2-xtb" and data["input"]["n_atoms"] == 9
    assert data["figures"]["stability"]["requested_time_ps"]["value"] == pytest.approx(0.2)
    assert data["figures"]["stability"]["fraction_completed"]["value"] == pytest.approx(1.0)
    assert data["figures"]["force_fidelity"]["n_compared"]["value"] == 12
    # 0.2 ps is shorter than the 10 ps a production verdict requires
    assert data["verdict"]["passed"] is False and report.exit_code == 1


def test_overwrite_is_refused_without_flag(report, tmp_path):
    report.write(tmp_path / "r")
    with pytest.raises(Exception, match="--overwrite"):
        report.write(tmp_path / "r")
    report.write(tmp_path / "r", overwrite=True)


def test_stored_forces_equal_the_student(run_dir):
    run = open_run(run_dir)
    student = StudentCalculator(run.model_path)
    fidelity = ForceFidelity(run.universe, student, n_frames=6).run()
    # the student against itself: only the float32 storage of the trajectory separates them
    assert fidelity.results.rmse < ENGINE_DUMP_FORCES * np.abs(fidelity.results.teacher_forces).max()
    assert fidelity.results.r2 > 1 - 1e-9


def test_audits_during_md_match_our_teacher_comparison(audited_run_dir):
    """The OpenMM runner's audits (observables/audit_force_rmse) equal ForceFidelity's RMSE on the same frames."""
    run = open_run(audited_run_dir)
    fidelity = ForceFidelity(run.universe, "gfn2-xtb", n_frames=100).run()
    audit = fidelity.results.audit
    assert audit is not None and len(audit["time_ps"]) == 9  # steps 0, 5, ..., 40
    ours = dict(zip(np.round(fidelity.results.time_ps, 6), fidelity.results.per_frame_rmse, strict=False))
    for t, rmse in zip(np.round(audit["time_ps"], 6), audit["rmse_eV_per_A"], strict=False):
        assert ours[t] == pytest.approx(rmse, rel=SCF_START_FORCES)
    assert fidelity.results.audit_rmse == pytest.approx(
        fidelity.results.rmse, rel=SCF_START_FORCES
    )  # every frame was audited


def test_without_a_teacher_the_audits_give_the_force_rmse(audited_run_dir, tmp_path):
    report = validate(audited_run_dir, teacher=None)
    rows = {r["figure"]: r for r in report.data["verdict"]["criteria"]}
    assert rows["rmse"]["value"] == pytest.approx(report.figure("force_fidelity", "audit_rmse"))
    assert rows["rmse"]["status"] in ("pass", "fail") and rows["r2"]["status"] == "not measured"
    assert report.figure("force_fidelity", "n_audits") == 9
    assert "force_rmse_per_frame.png" in report.write(tmp_path / "r").joinpath("report.json").read_text()


def test_teacher_in_worker_processes_agrees_with_serial(run_dir):
    run = open_run(run_dir)
    serial = ForceFidelity(run.universe, load_teacher("gfn2-xtb"), n_frames=6).run().results
    parallel = ForceFidelity(run.universe, "gfn2-xtb", n_frames=6, workers=2).run().results
    assert list(parallel.frames) == list(serial.frames) and not parallel.gaps
    # GFN2-xTB starts each SCF from its previous solution: converged forces agree to its tolerance, not bitwise
    np.testing.assert_allclose(parallel.teacher_forces, serial.teacher_forces, atol=SCF_START_FORCES_ABS)


def test_trajectory_without_forces_uses_the_student(run_dir, tmp_path):
    run = open_run(run_dir)
    dcd = tmp_path / "copy.dcd"
    with mda.Writer(str(dcd), run.universe.atoms.n_atoms) as writer:
        for _ in run.universe.trajectory[:10]:
            writer.write(run.universe.atoms)
    universe = mda.Universe(str(run_dir / "topology.pdb"), str(dcd))
    teacher = load_teacher("gfn2-xtb")
    recomputed = ForceFidelity(universe, teacher, student=run.model_path, n_frames=3).run()
    stored = ForceFidelity(run.universe, teacher, n_frames=3).run(frames=list(recomputed.results.frames))
    assert recomputed.results.rmse == pytest.approx(stored.results.rmse, rel=SCF_START_FORCES)


class FailsOnSecondCall:
    """A teacher whose second evaluation fails, as an SCF that does not converge."""

    name = "flaky"

    def __init__(self):
        self.inner, self.calls = load_teacher("gfn2-xtb"), 0

    def compute(self, atoms):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("SCF did not converge in 250 iterations")
        return self.inner.compute(atoms)


def test_failing_teacher_leaves_a_recorded_gap(run_dir):
    run = open_run(run_dir)
    fidelity = ForceFidelity(run.universe, FailsOnSecondCall(), n_frames=4).run()
    r = fidelity.results
    assert r.n_requested == 4 and r.n_compared + len(r.gaps) == 4
    assert any("SCF did not converge in 250 iterations" in gap["error"] for gap in r.gaps)
    assert not set(gap["frame"] for gap in r.gaps) & set(r.frames)
    assert len(r.per_frame_rmse) == r.n_compared and np.isfinite(r.rmse)


def test_every_sampled_frame_is_compared_or_a_recorded_gap(report):
    gaps = report.data["details"]["teacher_gaps"]
    compared = report.figure("force_fidelity", "n_compared")
    assert compared + len(gaps) == report.figure("force_fidelity", "n_requested")
    assert all(gap["error"] for gap in gaps)


def test_cli_exit_codes_and_thresholds(run_dir, tmp_path, mlffd):
    out = tmp_path / "cli"
    result = mlffd("validate", run_dir, "--frames", "4", "--quiet", "-o", out)
    assert result.code == 1 and "verdict: FAIL" in result.out
    result = mlffd("validate", run_dir, "--frames", "4", "--quiet", "-o", out)
    assert result.code == 2 and "--overwrite" in result.err
    lenient = tmp_path / "lenient.toml"
    lenient.write_text("[thresholds]\n" + LENIENT)
    assert (
        mlffd("validate", run_dir, "--frames", "4", "--quiet", "--thresholds", lenient, "-o", tmp_path / "ok").code == 0
    )
    bad = tmp_path / "bad.toml"
    bad.write_text("max_force_rmsd = 0.1\n")
    result = mlffd("validate", run_dir, "--quiet", "--thresholds", bad, "-o", tmp_path / "x")
    assert result.code == 2 and "unknown threshold(s) max_force_rmsd" in result.err


def test_thresholds_from_toml(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text("max_force_rmse = 0.1\nmin_r2 = 0.95\n")
    thresholds = Thresholds.from_toml(path)
    assert thresholds.max_force_rmse == 0.1 and thresholds.min_r2 == 0.95 and thresholds.min_stable_time_ps == 10.0


def test_compare_reports_recommends(report, tmp_path, mlffd):
    strict = report.write(tmp_path / "strict")
    lenient_toml = tmp_path / "lenient.toml"
    lenient_toml.write_text(LENIENT)
    lenient = ValidationReport(copy.deepcopy(report.data), report.analyses)  # same run, judged with lenient lines
    lenient.data["thresholds"] = Thresholds.from_toml(lenient_toml).to_dict()
    lenient.data["verdict"] = verdict(lenient.data["figures"], Thresholds.from_toml(lenient_toml))
    lenient.data["input"]["label"] = "lenient"
    lenient.write(tmp_path / "lenient")
    result = compare_reports([strict, tmp_path / "lenient"], tmp_path / "cmp")
    models = {m["label"]: m for m in result["models"]}
    assert models["lenient"]["recommendation"] == "production"
    assert models["organic-standard (run)"]["recommendation"] in ("limited use", "not recommended")
    assert models["organic-standard (run)"]["reason"]
    for name in ("comparison.md", "comparison.json", "comparison.png"):
        assert (tmp_path / "cmp" / name).is_file()
    assert mlffd("compare", strict, tmp_path / "lenient", "-o", tmp_path / "cmp").code == 2
    result = mlffd("compare", strict, tmp_path / "lenient", "-o", tmp_path / "cmp", "--overwrite")
    assert result.code == 0 and "| organic-standard (run) |" in result.out


def test_reference_adds_the_structure_row_and_the_rdf_plot(run_dir, tmp_path):
    report = validate(run_dir, teacher=None, reference=run_dir)
    rows = {r["figure"]: r for r in report.data["verdict"]["criteria"]}
    assert rows["error"]["value"] == pytest.approx(0.0, abs=EXACT) and rows["error"]["status"] == "pass"
    out = report.write(tmp_path / "r")
    assert (out / "rdf.png").is_file()
    jsonschema.validate(json.loads((out / "report.json").read_text()), json.loads(SCHEMA_PATH.read_text()))


def test_teacher_reference_judges_bonds_and_angles(run_dir, tmp_path):
    report = validate(
        run_dir, teacher="gfn2-xtb", frames=2, reference="teacher", reference_time_ps=0.3, reference_budget_s=30.0
    )
    row = next(r for r in report.data["verdict"]["criteria"] if r["figure"] == "max_outside_fraction")
    assert 0.0 <= row["value"] <= 1.0 and row["status"] in ("pass", "fail")
    details = report.data["details"]
    assert details["internal_worst"] and 0.0 < details["internal_reference"]["reference_time_ps"] <= 0.3
    out = report.write(tmp_path / "r")
    assert "internal_coordinates.png" in report.data["plots"] and (out / "internal_coordinates.png").is_file()
    assert "Bonds and angles furthest from the teacher's MD" in (out / "report.md").read_text()
    jsonschema.validate(json.loads((out / "report.json").read_text()), json.loads(SCHEMA_PATH.read_text()))
