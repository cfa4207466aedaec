"""``--equilibrate``: a Langevin warm-up, then the NVE production, in one run directory and on one time axis."""

import json
import math
from pathlib import Path

import h5py
import MDAnalysis as mda
import numpy as np
import pytest
from ase.io import read, write
from kit import EXACT

from mlff_distiller.cli import main
from mlff_distiller.errors import SimulationError
from mlff_distiller.plugin.openmm import MDRun, MDSettings

DATA = Path(__file__).resolve().parents[3] / "mlff_distiller" / "data"
ETHANOL = str(DATA / "molecules" / "ethanol.xyz")
STUDENT = str(DATA / "students" / "organic-ultra-tiny.ckpt")
#: Boltzmann's constant in kJ/mol/K (masses in amu and velocities in nm/ps give kJ/mol).
KB_KJ_PER_MOL_K = 8.314462618e-3


def settings(**overrides) -> MDSettings:
    """Ethanol with the bundled ultra-tiny student: 100 warm-up steps (friction 20/ps), 100 NVE steps."""
    values = dict(
        structure=ETHANOL,
        model=STUDENT,
        platform="Reference",
        precision="double",
        equilibrate=0.05,
        time=0.05,
        friction=20.0,
        report_interval=10,
        checkpoint_interval=20,
    )
    return MDSettings(**{**values, **overrides})


def read_run(run_dir: Path) -> dict:
    """Arrays of the H5MD file, read with h5py: particle data and every observable, with steps and times."""
    with h5py.File(run_dir / "trajectory.h5md", "r") as f:
        data = {name: f[f"particles/system/{name}/value"][:] for name in ("position", "velocity", "force")}
        data.update({name: f[f"observables/{name}/value"][:] for name in f["observables"]})
        data["step"] = f["particles/system/position/step"][:]
        data["time"] = f["particles/system/position/time"][:]
    return data


def kinetic_temperature(velocities_nm_per_ps: np.ndarray, masses_amu: np.ndarray) -> np.ndarray:
    """Temperature (K) of each frame from velocities and masses, over 3N - 3 degrees of freedom."""
    kinetic = 0.5 * np.einsum("i,fij,fij->f", masses_amu, velocities_nm_per_ps, velocities_nm_per_ps)
    return 2.0 * kinetic / ((3 * len(masses_amu) - 3) * KB_KJ_PER_MOL_K)


@pytest.fixture(scope="module")
def ethanols(tmp_path_factory) -> str:
    """16 ethanol molecules 15 Å apart, beyond the student's cutoff: 16 independent samples in one run."""
    one = read(ETHANOL)
    corners = np.array([(i, j, k) for i in range(2) for j in range(2) for k in range(4)], dtype=float)
    many = one.copy()
    for corner in corners[1:]:
        copy = one.copy()
        copy.translate(15.0 * corner)
        many += copy
    path = tmp_path_factory.mktemp("structure") / "ethanols.xyz"
    write(path, many)
    return str(path)


def production_temperature(run_dir: Path) -> float:
    """Mean kinetic temperature (K) of the frames at or after ``production_start_ps``."""
    start = json.loads((run_dir / "settings.json").read_text())["production_start_ps"]
    data = read_run(run_dir)
    masses = mda.Universe(str(run_dir / "topology.pdb")).atoms.masses
    production = data["time"] >= start - 1e-9
    return float(kinetic_temperature(data["velocity"].astype(float), masses)[production].mean())


def test_production_runs_at_the_target_temperature(ethanols, tmp_path):
    """After 0.2 ps of warm-up the NVE production runs at 300 K; from 300 K velocities alone, at about 60 % of it.

    16 independent molecules bring the spread of one NVE run's temperature (about 16 % for one ethanol)
    down to about 4 %.
    """
    common = dict(structure=ethanols, time=0.1, report_interval=5, checkpoint_interval=1000)
    assert MDRun(settings(equilibrate=0.2, **common), tmp_path / "warm").run(progress=False).completed
    assert MDRun(settings(equilibrate=0.0, **common), tmp_path / "cold").run(progress=False).completed
    warm, cold = production_temperature(tmp_path / "warm"), production_temperature(tmp_path / "cold")
    print(f"production mean temperature: {warm:.1f} K after the warm-up, {cold:.1f} K without (target 300 K)")
    assert warm == pytest.approx(300.0, rel=0.1)
    assert cold < 0.75 * 300.0


def test_integrator_switches_from_langevin_to_verlet(tmp_path):
    """The total energy wanders under the thermostat, and is conserved from production_start_ps on."""
    assert MDRun(settings(report_interval=5), tmp_path / "run").run(progress=False).completed
    data = read_run(tmp_path / "run")
    warm_up = data["equilibration"] == 1
    assert list(data["step"][warm_up]) == list(range(0, 100, 5))
    total = data["total_energy"]
    spread_warm_up, spread_production = np.ptp(total[warm_up]), np.ptp(total[~warm_up])
    print(f"total energy range: {spread_warm_up:.2e} eV in the warm-up, {spread_production:.2e} eV in production")
    assert spread_production < 0.02 * spread_warm_up


def test_settings_observable_and_csv_record_the_boundary(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "md",
                ETHANOL,
                "--model",
                STUDENT,
                "--equilibrate",
                "0.01",
                "--time",
                "0.02",
                "--report-interval",
                "5",
                "--platform",
                "Reference",
                "-o",
                str(run_dir),
                "--quiet",
            ]
        )
        == 0
    )
    saved = json.loads((run_dir / "settings.json").read_text())
    assert saved["equilibrate"] == 0.01 and saved["production_start_ps"] == 0.01 and saved["time"] == 0.02
    assert saved["ensemble"] == "nve" and saved["steps"] == 60
    data = read_run(run_dir)
    assert list(data["equilibration"]) == [1] * 4 + [0] * 9
    assert data["time"][4] == pytest.approx(saved["production_start_ps"])
    table = np.genfromtxt(run_dir / "energies.csv", delimiter=",", names=True)
    assert list(table["equilibration"]) == list(data["equilibration"])
    universe = mda.Universe(str(run_dir / "topology.pdb"), str(run_dir / "trajectory.h5md"))
    assert [int(ts.data["equilibration"]) for ts in universe.trajectory] == list(data["equilibration"])
    assert json.loads((run_dir / "summary.json").read_text())["phase"] == "production"
    assert main(["md", "--restart", str(run_dir), "--equilibrate", "1"]) == 2  # the warm-up is the run's own
    assert "--equilibrate from RUN_DIR" in capsys.readouterr().err


def test_nvt_with_warm_up_records_where_production_starts(tmp_path):
    assert MDRun(settings(ensemble="nvt", time=0.02), tmp_path / "nvt").run(progress=False).completed
    saved = json.loads((tmp_path / "nvt" / "settings.json").read_text())
    assert saved["ensemble"] == "nvt" and saved["production_start_ps"] == 0.05 and saved["steps"] == 140
    assert list(read_run(tmp_path / "nvt")["equilibration"]) == [1] * 10 + [0] * 5


@pytest.mark.parametrize("value", [-0.1, math.nan, math.inf])
def test_equilibrate_must_be_finite_and_not_negative(value):
    with pytest.raises(SimulationError, match="equilibrate"):
        settings(equilibrate=value).check()


def _interrupted_after_checkpoint(run: MDRun, at_step: int) -> None:
    """Run until the checkpoint at ``at_step`` is written, then stop as Ctrl-C would."""
    save = run._save_checkpoint

    def save_then_stop():
        save()
        if run.context.getState().getStepCount() == at_step:
            raise KeyboardInterrupt

    run._save_checkpoint = save_then_stop
    with pytest.raises(KeyboardInterrupt):
        run.run(progress=False)


@pytest.mark.parametrize("stop_at,bitwise", [(40, False), (160, True)])
def test_restart_in_either_phase_continues_the_same_run(tmp_path, stop_at, bitwise):
    """Stopped in the warm-up (step 40 of 100) or in production (160), restarted to 200 steps: the uninterrupted run.

    A restart in production is bitwise (Verlet); across the boundary it carries the Langevin
    restart's last-bit differences (see test_md_run.py).
    """
    assert MDRun(settings(), tmp_path / "one").run(progress=False).completed
    _interrupted_after_checkpoint(MDRun(settings(), tmp_path / "two"), stop_at)
    assert MDRun.restart(tmp_path / "two").run(progress=False).completed
    assert json.loads((tmp_path / "two" / "settings.json").read_text())["restarts"][0]["from_step"] == stop_at
    one, two = read_run(tmp_path / "one"), read_run(tmp_path / "two")
    assert list(one["step"]) == list(two["step"]) == list(range(0, 201, 10))
    for key in one:
        if bitwise:
            assert np.array_equal(one[key], two[key]), key
        else:  # particle data are stored in float32, observables in float64
            rtol = 1e-6 if one[key].dtype == np.float32 else 1e-10
            np.testing.assert_allclose(one[key], two[key], rtol=rtol, atol=EXACT, err_msg=key)
    if bitwise:
        assert (tmp_path / "one" / "energies.csv").read_text() == (tmp_path / "two" / "energies.csv").read_text()
