"""Bad input gives one-line errors (exit code 2), never a traceback or a silent wrong number."""

import json
import shutil

import pytest
from MDAnalysisTests.datafiles import DCD, PSF
from validation_systems import lj_fluid_run, pdb_topology

from mlff_distiller.errors import TrajectoryError
from mlff_distiller.validation import ForceFidelity, open_run, read_energies


@pytest.fixture(scope="module")
def lj(tmp_path_factory):
    return lj_fluid_run(tmp_path_factory.mktemp("lj"), timestep_fs=5.0, steps=100, report_every=10)


def error_line(result) -> str:
    """The one line of an ``mlffd`` call that ended in a user error (exit code 2)."""
    assert result.code == 2
    err = result.err.strip()
    assert err.startswith("mlffd: error:") and "\n" not in err and "Traceback" not in err
    return err


def test_mismatched_atom_counts(lj, tmp_path, mlffd):
    ethanol = pdb_topology(tmp_path / "ethanol.pdb", [6, 6, 8, 1, 1, 1, 1, 1, 1])
    with pytest.raises(TrajectoryError, match="same number of atoms|atoms"):
        open_run(lj["dcd"], ethanol)
    result = mlffd("validate", lj["dcd"], "--top", ethanol, "--teacher", "none", "-o", tmp_path / "r")
    assert "cannot read" in error_line(result)


def test_corrupt_trajectories(lj, tmp_path, mlffd):
    garbage = tmp_path / "broken.dcd"
    garbage.write_bytes(b"\x00\x01not a dcd file" * 10)
    with pytest.raises(TrajectoryError, match="cannot read"):
        open_run(garbage, lj["pdb"])
    truncated = tmp_path / "truncated.dcd"
    truncated.write_bytes(lj["dcd"].read_bytes()[:150])
    with pytest.raises(TrajectoryError):
        open_run(truncated, lj["pdb"])
    fake_h5md = tmp_path / "run"
    fake_h5md.mkdir()
    (fake_h5md / "trajectory.h5md").write_text("not HDF5")
    shutil.copy(lj["pdb"], fake_h5md / "topology.pdb")
    result = mlffd("validate", fake_h5md, "--teacher", "none", "-o", tmp_path / "r")
    assert "trajectory.h5md" in error_line(result)


def test_missing_pieces(lj, tmp_path, mlffd):
    with pytest.raises(TrajectoryError, match="--top"):
        open_run(lj["dcd"])
    with pytest.raises(TrajectoryError, match="not a complete run directory: trajectory.h5md is missing"):
        open_run(tmp_path)
    lonely = tmp_path / "lonely.dcd"
    shutil.copy(lj["dcd"], lonely)  # no CSV next to it
    # energies are optional: drift and temperature read "not measured", stability is still judged
    result = mlffd("validate", lonely, "--top", lj["pdb"], "--teacher", "none", "-o", tmp_path / "r")
    assert result.code == 1 and "--energies" in result.out
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    rows = {r["figure"]: r["status"] for r in data["verdict"]["criteria"]}
    assert rows["slope_meV_per_atom_per_ps"] == "not measured" and rows["stable_time_ps"] in ("pass", "fail")
    assert data["figures"]["stability"]["completed_time_ps"]["value"] > 0


def test_bad_energy_files(tmp_path):
    csv = tmp_path / "energies.csv"
    csv.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(TrajectoryError, match="unrecognised CSV columns"):
        read_energies(csv)
    csv.write_text('#"Step","Time (ps)","Potential Energy (kJ/mole)"\n1,0.1,-5\n2,0.2,-5\n')
    with pytest.raises(TrajectoryError, match="Kinetic Energy"):
        read_energies(csv)
    with pytest.raises(TrajectoryError, match="does not exist"):
        read_energies(tmp_path / "nothing.csv")


def test_forces_needed_but_absent():
    run = open_run(DCD, PSF)
    with pytest.raises(TrajectoryError, match="no forces"):
        ForceFidelity(run.universe, object(), n_frames=2).run()
