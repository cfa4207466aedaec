"""The teacher reference MD of ``--reference teacher`` has a fixed length and seed: the wall-time budget changes no verdict.

A reference whose length the wall clock set made the same aspirin run pass (1.7 ps reached in 60 s, 2.5 %
outside) on an idle machine and fail (0.58 ps, 19.5 % outside) on a loaded one. Now the reference is a fixed
number of steps; a budget that cuts it short makes the criterion "not measured (why)", never pass or fail.
"""

import json

import jsonschema
import numpy as np
import pytest
from validation_systems import student_run

from mlff_distiller.cli import build_parser
from mlff_distiller.reference_md import REFERENCE_BUDGET_S, REFERENCE_SEED, REFERENCE_TIME_PS
from mlff_distiller.validation import open_run, validate
from mlff_distiller.validation.report import SCHEMA_PATH
from mlff_distiller.validation.teacher_md import teacher_md
from mlff_distiller.validation.trajectory import atomic_numbers, frame_atoms

#: Reference length of these tests (ps): 1000 GFN2-xTB steps of ethanol, a few seconds.
TIME_PS = 0.5


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return student_run(tmp_path_factory.mktemp("student"), time_ps=0.05)


def _row(report) -> dict:
    return next(r for r in report.data["verdict"]["criteria"] if r["figure"] == "max_outside_fraction")


def _ranges(positions: np.ndarray, atoms: list[tuple], kinds: list[str]) -> np.ndarray:
    """Each bond's (Å) and angle's (deg) range over the frames, widened by one standard deviation: numpy only."""
    bounds = []
    for row, kind in zip(atoms, kinds, strict=True):
        p = positions.astype(np.float64)
        if kind == "bond":
            values = np.linalg.norm(p[:, row[0]] - p[:, row[1]], axis=1)
        elif kind == "angle":
            u, v = p[:, row[0]] - p[:, row[1]], p[:, row[2]] - p[:, row[1]]
            cosine = (u * v).sum(axis=1) / np.linalg.norm(u, axis=1) / np.linalg.norm(v, axis=1)
            values = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
        else:
            continue
        bounds.append([values.min() - values.std(), values.max() + values.std()])
    return np.array(bounds)


def test_any_budget_that_lets_the_reference_finish_gives_the_same_ranges_and_value(run_dir):
    short, long = (
        validate(
            run_dir, teacher="gfn2-xtb", frames=2, reference="teacher", reference_time_ps=TIME_PS, reference_budget_s=b
        )
        for b in (60.0, 600.0)
    )
    for report, budget in ((short, 60.0), (long, 600.0)):
        made = report.data["details"]["internal_reference"]
        assert made["reference_requested_time_ps"] == TIME_PS and made["reference_time_ps"] == pytest.approx(TIME_PS)
        assert made["reference_seed"] == REFERENCE_SEED and made["reference_budget_s"] == budget
        assert _row(report)["status"] in ("pass", "fail")
    assert _row(short)["value"] == _row(long)["value"]
    a, b = short.analyses["internal_coordinates"], long.analyses["internal_coordinates"]
    assert a["n_reference_frames"] == b["n_reference_frames"] == round((TIME_PS - 0.25) / 0.005) + 1
    assert np.array_equal(a["bounds"], b["bounds"])
    # the same ranges from the teacher MD's own frames, computed with numpy
    run = open_run(run_dir)
    run.universe.trajectory[0]
    start = frame_atoms(run.universe.atoms, atomic_numbers(run.universe.atoms))
    temperature = short.data["details"]["internal_reference"]["reference_temperature_K"]
    frames = teacher_md(start, temperature_K=temperature, time_ps=TIME_PS, budget_s=600.0).positions
    structural = [k != "dihedral" for k in a["kinds"]]
    assert np.allclose(a["bounds"][structural], _ranges(frames, a["atoms"], a["kinds"]), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    ("budget_s", "time_ps"),
    [(0.01, TIME_PS), (5.0, 50.0)],  # cut during the equilibration; cut after stored frames (50 ps: 100,000 steps)
)
def test_a_reference_cut_short_by_the_budget_is_not_measured(run_dir, tmp_path, budget_s, time_ps):
    report = validate(
        run_dir,
        teacher="gfn2-xtb",
        frames=2,
        reference="teacher",
        reference_time_ps=time_ps,
        reference_budget_s=budget_s,
    )
    row = _row(report)
    assert row["value"] is None and not report.data["verdict"]["passed"]
    assert row["status"].startswith("not measured (teacher reference cut at ")
    assert row["status"].endswith(f" of {time_ps:g} ps by the {budget_s:g} s budget; raise --reference-budget)")
    made = report.data["details"]["internal_reference"]
    assert made["reference_time_ps"] < time_ps and made["reference_requested_time_ps"] == time_ps
    if budget_s > 1.0:  # ethanol: a few ms a step, so past the 0.25 ps equilibration: frames were stored
        assert made["reference_time_ps"] > 0.25
    assert "internal_coordinates" in report.data["details"]["not_measured"]
    assert any("Bonds and angles were not judged" in note for note in report.data["notes"])
    out = report.write(tmp_path / "r")
    assert "teacher reference cut at" in (out / "report.md").read_text()
    jsonschema.validate(json.loads((out / "report.json").read_text()), json.loads(SCHEMA_PATH.read_text()))


def test_validate_demo_and_study_share_the_reference_defaults():
    parser = build_parser()
    for argv in (["validate", "run", "-o", "r"], ["demo"], ["study", "-o", "out"]):
        args = parser.parse_args(argv)
        assert (args.reference_time, args.reference_budget) == (REFERENCE_TIME_PS, REFERENCE_BUDGET_S), argv
    assert REFERENCE_TIME_PS * 1000.0 / 0.5 <= 4000  # aspirin: 10-15 ms a step, well under a minute idle


def test_the_study_makes_again_a_report_of_another_reference(tmp_path):
    from mlff_distiller.study import _report_matches

    reference = {"reference": "teacher", "reference_time_ps": 1.5, "reference_budget_s": 600.0}

    def report(**details):
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        (folder / "report.json").write_text(json.dumps({"details": details}))
        return folder

    made = {"reference_requested_time_ps": 1.5, "reference_seed": REFERENCE_SEED}
    assert _report_matches(report(internal_reference=made), reference)
    assert not _report_matches(tmp_path / "none", reference)
    assert not _report_matches(report(internal_reference={**made, "reference_requested_time_ps": 5.0}), reference)
    assert not _report_matches(report(internal_reference={**made, "reference_seed": 1}), reference)
    assert not _report_matches(report(internal_reference={"reference_time_ps": 1.7}), reference)  # before: wall clock
    cut = report(internal_reference=made, not_measured={"internal_coordinates": "teacher reference cut at ..."})
    assert not _report_matches(cut, reference)
    assert _report_matches(report(), {}) and not _report_matches(report(internal_reference=made), {})
