"""EnergyDrift on trajectories OpenMM produces with its own Lennard-Jones forces (DCD + StateDataReporter CSV)."""

import MDAnalysis as mda
import numpy as np
import pytest
from kit import RECOMPUTED
from validation_systems import lj_fluid_run, pdb_topology, write_h5md

from mlff_distiller.errors import TrajectoryError
from mlff_distiller.units import EV_TO_KJ_PER_MOL
from mlff_distiller.validation import EnergyDrift, Thresholds, read_energies, validate

N_ATOMS = 125


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """5 fs steps: argon conserves energy to numerical noise."""
    return lj_fluid_run(tmp_path_factory.mktemp("lj_good"), timestep_fs=5.0, steps=1000, report_every=10)


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory):
    """50 fs steps: just below the stability limit, the energy drifts visibly."""
    return lj_fluid_run(tmp_path_factory.mktemp("lj_bad"), timestep_fs=50.0, steps=1000, report_every=10)


def hand_slope_meV_per_atom_per_ps(csv_path, warmup=0.2):
    data = np.genfromtxt(csv_path, delimiter=",", skip_header=1)
    time, total = data[:, 1], data[:, 4] / EV_TO_KJ_PER_MOL
    keep = time >= time[0] + warmup * (time[-1] - time[0])
    return np.polyfit(time[keep], total[keep], 1)[0] * 1000.0 / N_ATOMS


def test_openmm_csv_is_read_in_eV_and_ps(good_run):
    series = read_energies(good_run["csv"])
    raw = np.genfromtxt(good_run["csv"], delimiter=",", skip_header=1)
    np.testing.assert_allclose(series.time_ps, raw[:, 1])
    np.testing.assert_allclose(series.potential_eV * EV_TO_KJ_PER_MOL, raw[:, 2])
    np.testing.assert_allclose(series.total_eV * EV_TO_KJ_PER_MOL, raw[:, 4])
    np.testing.assert_allclose(series.temperature_K, raw[:, 5])


def test_small_time_step_conserves_energy(good_run):
    universe = mda.Universe(str(good_run["pdb"]), str(good_run["dcd"]))
    r = EnergyDrift(universe, energies=read_energies(good_run["csv"])).run().results
    assert r.slope_meV_per_atom_per_ps == pytest.approx(hand_slope_meV_per_atom_per_ps(good_run["csv"]), rel=RECOMPUTED)
    assert abs(r.slope_meV_per_atom_per_ps) < 1e-3
    assert r.drift_to_fluctuation < 0.2
    assert abs(r.relative_drift_percent) < 0.1
    assert r.com_drift_A < 1e-2  # OpenMM's CMMotionRemover holds the centre of mass
    assert 60 < r.temperature_mean_K < 200


def energy_status(report):
    return {
        row["figure"]: row["status"] for row in report.data["verdict"]["criteria"] if row["section"] == "energy_drift"
    }


def test_large_time_step_drift_is_reported_and_fails_the_verdict(good_run, bad_run):
    good = validate(good_run["dcd"], topology=good_run["pdb"], teacher=None, energies=good_run["csv"])
    bad = validate(bad_run["dcd"], topology=bad_run["pdb"], teacher=None, energies=bad_run["csv"])
    assert bad.figure("energy_drift", "slope_meV_per_atom_per_ps") == pytest.approx(
        hand_slope_meV_per_atom_per_ps(bad_run["csv"]), rel=RECOMPUTED
    )
    assert set(energy_status(good).values()) == {"pass"}
    assert energy_status(bad)["drift_to_fluctuation"] == "fail"
    assert energy_status(bad)["relative_drift_percent"] == "fail"
    assert not bad.passed
    assert bad.figure("energy_drift", "drift_to_fluctuation") > 10 * good.figure("energy_drift", "drift_to_fluctuation")


def test_energy_file_found_next_to_trajectory(good_run):
    report = validate(
        good_run["dcd"], topology=good_run["pdb"], teacher=None, thresholds=Thresholds(min_stable_time_ps=1.0)
    )
    assert report.data["input"]["energy_source"].startswith(str(good_run["csv"]))
    status = {row["figure"]: row["status"] for row in report.data["verdict"]["criteria"]}
    for figure in ("slope_meV_per_atom_per_ps", "drift_to_fluctuation", "relative_drift_percent", "stable_time_ps"):
        assert status[figure] == "pass", figure
    assert status["rmse"] == "not measured" and not report.passed


def test_trajectory_without_energies_says_what_it_needs(good_run):
    universe = mda.Universe(str(good_run["pdb"]), str(good_run["dcd"]))
    with pytest.raises(TrajectoryError, match="potential_energy and kinetic_energy.*--energies"):
        EnergyDrift(universe).run()


@pytest.mark.parametrize("energy_unit", ["eV", "kJ mol-1"])
def test_h5md_observables_match_a_hand_fit(tmp_path, rng, energy_unit):
    numbers = [6, 1, 1, 1, 1]
    frames = 40
    time = np.linspace(0.0, 3.9, frames)
    kinetic = 0.1 + 0.01 * rng.normal(size=frames)
    total = -20.0 + 0.004 * time + 1e-4 * rng.normal(size=frames)
    positions = np.tile(rng.normal(size=(1, len(numbers), 3)), (frames, 1, 1))
    path = write_h5md(
        tmp_path / "t.h5md",
        numbers,
        positions,
        time,
        {
            "potential_energy": total - kinetic,
            "kinetic_energy": kinetic,
            "total_energy": total,
            "temperature": np.full(frames, 300.0),
        },
        energy_unit=energy_unit,
    )
    universe = mda.Universe(str(pdb_topology(tmp_path / "t.pdb", numbers)), str(path))
    r = EnergyDrift(universe, warmup_fraction=0.0).run().results
    slope, _ = np.polyfit(time, (total - kinetic) + kinetic, 1)
    assert r.slope_meV_per_atom_per_ps == pytest.approx(slope * 1000 / len(numbers), rel=RECOMPUTED)
    assert r.drift_to_fluctuation == pytest.approx(abs(slope) * time[-1] / kinetic.std(), rel=RECOMPUTED)
    assert r.relative_drift_percent == pytest.approx(100 * (total[-1] - total[0]) / abs(total[0]), rel=RECOMPUTED)
    assert r.max_relative_deviation_percent == pytest.approx(
        100 * np.abs(total - total[0]).max() / abs(total[0]), rel=RECOMPUTED
    )
    assert r.rms_fluctuation_meV_per_atom == pytest.approx(total.std() * 1000 / len(numbers), rel=RECOMPUTED)
    assert r.temperature_mean_K == pytest.approx(300.0)
