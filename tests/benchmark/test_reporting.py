"""md_advance: mlffd md's run advanced with and without its reporters differs in the files only; the run
with reporters times its integrator's steps, and the rest of each call is its reporting."""

import csv
import time

import torch

import h5py
import numpy as np
import pytest
from kit import EXACT, FLOAT32_STORED
from openmm import unit

from mlff_distiller.benchmark.contenders import benchmark_student
from mlff_distiller.benchmark.reporting import md_advance
from mlff_distiller.benchmark.systems import benchmark_system
from mlff_distiller.cli import build_parser

TIMESTEP_FS = 0.5


@pytest.fixture(scope="module")
def student():
    return benchmark_student("ultra-tiny", torch.float32, molecule=True)


@pytest.fixture(scope="module")
def aspirin():
    return benchmark_system("aspirin")


def state(advance) -> tuple[np.ndarray, np.ndarray]:
    """Positions (nm) and velocities (nm/ps) in the run's OpenMM Context."""
    current = advance.run.context.getState(getPositions=True, getVelocities=True)
    return (
        current.getPositions(asNumpy=True).value_in_unit(unit.nanometer),
        current.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond),
    )


def test_reporters_write_frames_at_mlffd_md_default_interval(student, aspirin, tmp_path):
    """Two calls (120 + 80 steps) continue one run: H5MD frames and CSV rows at steps 0, 100, 200 (mlffd md's
    default interval), the last frame holds the Context's positions, a checkpoint is written."""
    defaults = build_parser().parse_args(["md", "aspirin", "--model", "organic-ultra-tiny", "-o", str(tmp_path)])
    interval = defaults.report_interval
    advance = md_advance(student, aspirin, TIMESTEP_FS, tmp_path)
    assert advance(120) > 0 and advance(80) > 0
    positions, velocities = state(advance)
    run_dir = tmp_path / "run"
    expected_steps = np.arange(0, 201, interval)
    with h5py.File(run_dir / "trajectory.h5md", "r") as handle:
        system = handle["particles/system"]
        np.testing.assert_array_equal(system["position/step"][:], expected_steps)
        np.testing.assert_allclose(system["position/time"][:], expected_steps * TIMESTEP_FS * 1e-3, rtol=EXACT)
        np.testing.assert_allclose(system["position/value"][-1], positions, atol=FLOAT32_STORED)
        np.testing.assert_allclose(system["velocity/value"][-1], velocities, rtol=FLOAT32_STORED, atol=FLOAT32_STORED)
        np.testing.assert_array_equal(handle["observables/total_energy/step"][:], expected_steps)
        assert system["position/value"].shape == (len(expected_steps), len(aspirin), 3)
    with open(run_dir / "energies.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["step"]) for row in rows] == list(expected_steps)
    assert (run_dir / "checkpoint.chk").stat().st_size > 0


def test_without_reporters_nothing_is_written(student, aspirin, tmp_path):
    """Only the inputs (student and structure) lie in the folder; no run directory."""
    advance = md_advance(student, aspirin, TIMESTEP_FS, tmp_path, reporters=False)
    assert advance(150) > 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["structure.xyz", "student.ckpt"]


def test_same_dynamics_with_and_without_reporters(student, aspirin, tmp_path):
    """From the same start, 250 steps in different blocks give the same positions and velocities: the
    reporters change nothing but the files."""
    reported = md_advance(student, aspirin, TIMESTEP_FS, tmp_path / "on")
    bare = md_advance(student, aspirin, TIMESTEP_FS, tmp_path / "off", reporters=False)
    start_on, start_off = state(reported), state(bare)
    for a, b in zip(start_on, start_off, strict=True):
        np.testing.assert_array_equal(a, b)
    reported(130), reported(120)
    bare(70), bare(180)
    (positions_on, velocities_on), (positions_off, velocities_off) = state(reported), state(bare)
    assert np.abs(positions_on - start_on[0]).max() > 1e-4  # the atoms moved (nm)
    np.testing.assert_allclose(positions_on, positions_off, rtol=EXACT, atol=EXACT)
    np.testing.assert_allclose(velocities_on, velocities_off, rtol=EXACT, atol=EXACT)


#: The share outside the integrator computed here against the run's own: they differ by a few
#: perf_counter calls per chunk of 100 steps (µs in a call of 0.1-1 s).
TIMER_OVERHEAD = 1e-3


def test_reporting_seconds_are_the_call_outside_the_integrator_steps(student, aspirin, tmp_path):
    """The integrator's steps timed by a wrapper here and the call timed here give the share outside the
    integrator: the run's own figure equals it, lies in (0, 1), and the integrator's seconds accumulate."""
    advance = md_advance(student, aspirin, TIMESTEP_FS, tmp_path)
    assert advance.last_reporting_seconds is None and advance.run.integrator_seconds == 0.0
    phases, inside = advance.run.phases, []
    step = phases.step

    def timed_step(*args):
        start = time.perf_counter()
        step(*args)
        inside.append(time.perf_counter() - start)

    phases.step = timed_step
    for steps, chunks in ((250, 3), (300, 4)):  # chunks end at the frames: 100, 200, 250; 300, 400, 500, 550
        inside.clear()
        start = time.perf_counter()
        elapsed = advance(steps)
        outside = 1 - sum(inside) / (time.perf_counter() - start)
        share = advance.last_reporting_seconds / elapsed
        assert len(inside) == chunks and 0 < share < 1
        assert share == pytest.approx(outside, abs=TIMER_OVERHEAD)
    assert advance.run.integrator_seconds >= sum(inside) > 0


def test_without_reporters_no_reporting_seconds(student, aspirin, tmp_path):
    advance = md_advance(student, aspirin, TIMESTEP_FS, tmp_path, reporters=False)
    advance(50)
    assert advance.last_reporting_seconds is None and advance.run.integrator_seconds == 0.0
