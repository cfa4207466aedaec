"""``mlffd md --threads``: the trajectory of two threads equals one thread's; the count is recorded and checked."""

import json

import h5py
import numpy as np
from kit import FLOAT32_STORED

RUN = ("md", "aspirin", "--model", "organic-tiny", "--time", "0.01", "--report-interval", "5", "--precision", "double")


def _positions(run) -> np.ndarray:
    with h5py.File(run / "trajectory.h5md", "r") as handle:
        return handle["particles/system/position/value"][()]


def test_two_threads_give_one_threads_trajectory(tmp_path, mlffd):
    one = mlffd(*RUN, "--threads", "1", "--quiet", "-o", tmp_path / "one")
    two = mlffd(*RUN, "--threads", "2", "--quiet", "-o", tmp_path / "two")
    assert one.code == 0 and two.code == 0, one.err + two.err
    first, second = _positions(tmp_path / "one"), _positions(tmp_path / "two")
    assert first.shape == second.shape and len(first) == 5
    # 20 double-precision steps whose forces differ in summation order only (1e-13): equal once stored in float32
    np.testing.assert_allclose(second, first, rtol=FLOAT32_STORED)
    assert json.loads((tmp_path / "two" / "settings.json").read_text())["threads"] == 2


def test_restart_takes_a_new_thread_count(tmp_path, mlffd):
    assert mlffd(*RUN, "--threads", "1", "--quiet", "-o", tmp_path / "run").code == 0
    again = mlffd("md", "--restart", tmp_path / "run", "--time", "0.02", "--threads", "2", "--quiet")
    assert again.code == 0, again.err
    assert json.loads((tmp_path / "run" / "settings.json").read_text())["threads"] == 2
    assert len(_positions(tmp_path / "run")) == 9


def test_a_thread_count_below_one_is_a_usage_error(tmp_path, mlffd):
    result = mlffd(*RUN, "--threads", "0", "-o", tmp_path / "run")
    assert result.code == 2
    assert "'0' is not accepted; give a whole number (number of threads) from 1 to 1024" in result.err
    assert not (tmp_path / "run").exists()
