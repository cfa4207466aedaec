"""Recommendations follow from measured numbers: production, limited use (for what), not recommended."""

import pytest

from mlff_distiller.validation import Thresholds, recommend
from mlff_distiller.validation.verdict import verdict

GOOD = {
    "energy_drift": {"slope_meV_per_atom_per_ps": 0.01, "drift_to_fluctuation": 0.1, "relative_drift_percent": 0.01},
    "force_fidelity": {"rmse": 0.1, "mae": 0.07, "angle_median_deg": 5.0, "r2": 0.99},
    "stability": {"stable_time_ps": 20.0, "completed_time_ps": 20.0},
    "temperature": {"temperature_deviation_percent": 2.0, "kinetic_variance_ratio": 1.1},
}


def report_data(changes=None, failure=None):
    figures = {
        section: {k: {"value": v, "unit": "", "definition": "test figure"} for k, v in values.items()}
        for section, values in GOOD.items()
    }
    for (section, key), value in (changes or {}).items():
        figures[section][key]["value"] = value
    events = {"collapse": failure, "hydrogen_loss": None, "explosion": None, "first_failure": failure}
    return {
        "figures": figures,
        "verdict": verdict(figures, Thresholds()),
        "thresholds": Thresholds().to_dict(),
        "details": {"stability_events": events},
    }


def test_passing_model_is_production():
    assert recommend(report_data())[0] == "production"


def test_drifting_model_is_for_thermostatted_sampling():
    category, reason = recommend(
        report_data({("energy_drift", "slope_meV_per_atom_per_ps"): 3.0, ("energy_drift", "drift_to_fluctuation"): 4.0})
    )
    assert category == "limited use" and "NVT" in reason and "3 meV/atom/ps" in reason


def test_model_that_collapses_late_is_for_short_runs():
    collapse = {"frame": 400, "time_ps": 4.05}
    category, reason = recommend(report_data({("stability", "stable_time_ps"): 4.0}, failure=collapse))
    assert category == "limited use" and "short runs under 4 ps" in reason and "bond collapse" in reason


def test_failure_after_the_required_time_is_not_called_production():
    """A 100 ps run that meets every criterion (10 ps required) but meets a close contact at 74 ps."""
    contact = {"frame": 148, "time_ps": 74.0}
    changes = {("stability", "stable_time_ps"): 71.5, ("stability", "completed_time_ps"): 100.0}
    data = report_data(changes, failure=contact)
    assert data["verdict"]["passed"]
    category, reason = recommend(data)
    assert category == "limited use" and "short runs under 71.5 ps" in reason


def test_short_validation_is_limited_to_its_length():
    category, reason = recommend(
        report_data({("stability", "stable_time_ps"): 2.0, ("stability", "completed_time_ps"): 2.0})
    )
    assert category == "limited use" and "runs up to 2 ps" in reason


@pytest.mark.parametrize("changes", [{("force_fidelity", "rmse"): 0.5}, {("force_fidelity", "r2"): 0.3}])
def test_forces_far_from_the_teacher_are_not_recommended(changes):
    assert recommend(report_data(changes))[0] == "not recommended"


def test_early_collapse_is_not_recommended():
    category, reason = recommend(
        report_data({("stability", "stable_time_ps"): 0.3}, failure={"frame": 3, "time_ps": 0.35})
    )
    assert category == "not recommended" and "0.3 ps" in reason


def test_moderately_wrong_forces_are_qualitative_only():
    category, reason = recommend(report_data({("force_fidelity", "rmse"): 0.3}))
    assert category == "limited use" and "qualitative" in reason


def test_thermostatted_runs_are_not_judged_on_energy_conservation():
    data = report_data(
        {
            ("energy_drift", "slope_meV_per_atom_per_ps"): 50.0,
            ("energy_drift", "drift_to_fluctuation"): 9.0,
            ("energy_drift", "relative_drift_percent"): 5.0,
        }
    )
    assert not data["verdict"]["passed"]
    data["verdict"] = verdict(
        data["figures"], Thresholds(), {"name": "nvt", "conserved_quantity": False, "target_temperature_K": 300.0}
    )
    rows = {r["figure"]: r["status"] for r in data["verdict"]["criteria"]}
    assert (
        rows["slope_meV_per_atom_per_ps"]
        == rows["drift_to_fluctuation"]
        == "not applicable (NVT: no conserved quantity stored)"
    )
    assert rows["rmse"] == "pass" and data["verdict"]["passed"]
    assert recommend(data)[0] == "production"
