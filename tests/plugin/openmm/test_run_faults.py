"""Faults of ``mlffd md`` runs: SIGTERM, a kill before the first checkpoint interval, a restart with
another model, a model that is non-finite from step 0, and damaged model files."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

import h5py
import numpy as np
import pytest

from mlff_distiller.data import resolve_model
from mlff_distiller.models import Student, load_checkpoint, preset, save_checkpoint
from mlff_distiller.plugin.openmm import MDRun, MDSettings

ETHANOL = str(Path(__file__).resolve().parents[3] / "mlff_distiller" / "data" / "molecules" / "ethanol.xyz")
MLFFD = str(Path(sys.executable).parent / "mlffd")


@pytest.fixture(scope="module")
def smooth_checkpoint(tmp_path_factory):
    """An ultra-tiny random student with a smooth surface (energy scale 0.2), as in test_md_run.py."""
    torch.manual_seed(0)
    student = Student(preset("ultra-tiny")).double().eval()
    with torch.no_grad():
        student.network.energy_scale.fill_(0.2)
    return save_checkpoint(student, tmp_path_factory.mktemp("model") / "smooth.ckpt")


def md_args(model, run_dir, time_ps: float = 0.05) -> list[str]:
    return [
        "md",
        ETHANOL,
        "--model",
        str(model),
        "--time",
        str(time_ps),
        "--report-interval",
        "10",
        "--platform",
        "Reference",
        "--precision",
        "double",
        "-o",
        str(run_dir),
        "--quiet",
    ]


def _steps(run_dir: Path) -> list[int]:
    with h5py.File(run_dir / "trajectory.h5md", "r") as handle:
        return [int(s) for s in handle["particles/system/position/step"][:]]


def _one_error_line(result) -> str:
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    return lines[0]


def test_sigterm_stops_with_a_summary_and_restarts(smooth_checkpoint, tmp_path):
    run_dir = tmp_path / "terminated"
    process = subprocess.Popen(
        [MLFFD, *md_args(smooth_checkpoint, run_dir, time_ps=100), "--checkpoint-interval", "100000"],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    table = run_dir / "energies.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not table.exists() or len(table.read_text().splitlines()) < 4):
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr and "terminated" in stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "terminated" and "terminated after step" in stdout
    stopped = summary["steps_completed"]
    assert _steps(run_dir)[-1] == stopped  # the checkpoint is that of the last frame, not of step 0
    target = stopped + 20
    result = subprocess.run(
        [MLFFD, "md", "--restart", str(run_dir), "--time", str(target * 0.5e-3), "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert _steps(run_dir) == list(range(0, target + 1, 10))


def test_a_run_killed_before_its_first_checkpoint_interval_restarts_bitwise(smooth_checkpoint, tmp_path):
    settings = dict(structure=ETHANOL, model=str(smooth_checkpoint), platform="Reference", precision="double")
    settings.update(time=0.05, report_interval=10, checkpoint_interval=50)
    assert MDRun(MDSettings(**settings), tmp_path / "one").run(progress=False).completed
    killed = MDRun(MDSettings(**settings), tmp_path / "two")

    def killed_after_the_first_checkpoint():
        type(killed)._save_checkpoint(killed)
        raise KeyboardInterrupt  # as a kill would stop it, right after the step-0 checkpoint

    killed._save_checkpoint = killed_after_the_first_checkpoint
    with pytest.raises(KeyboardInterrupt):
        killed.run(progress=False)
    assert _steps(tmp_path / "two") == [0]
    assert MDRun.restart(tmp_path / "two").run(progress=False).completed
    with h5py.File(tmp_path / "one" / "trajectory.h5md") as one, h5py.File(tmp_path / "two" / "trajectory.h5md") as two:
        for name in ("position", "velocity"):
            assert np.array_equal(one[f"particles/system/{name}/value"][:], two[f"particles/system/{name}/value"][:]), (
                name
            )


def test_restart_with_another_model_is_refused(smooth_checkpoint, tmp_path, mlffd):
    model = Path(shutil.copy(smooth_checkpoint, tmp_path / "model.ckpt"))
    run_dir = tmp_path / "run"
    assert mlffd(*md_args(model, run_dir, time_ps=0.01)).code == 0
    torch.manual_seed(1)
    save_checkpoint(Student(preset("ultra-tiny")).double(), model)
    before = (run_dir / "checkpoint.chk").read_bytes()
    result = mlffd("md", "--restart", run_dir, "--time", "0.02", "--quiet")
    assert result.code == 2 and "is not the model" in _one_error_line(result)
    assert (run_dir / "checkpoint.chk").read_bytes() == before


def test_non_finite_model_at_step_0_is_a_model_or_input_fault(smooth_checkpoint, tmp_path, mlffd):
    student = load_checkpoint(smooth_checkpoint)
    with torch.no_grad():
        student.network.energy_scale.fill_(1e308)  # finite weights, infinite energy
    model = save_checkpoint(student, tmp_path / "huge.ckpt")
    result = mlffd(*md_args(model, tmp_path / "run"))
    line = _one_error_line(result)
    assert result.code == 2 and "step 0" in line and "model" in line and "input" in line
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["stop_reason"] == "model or input fault"


def test_damaged_checkpoint_is_refused_and_left_as_it_was(tmp_path, mlffd):
    data = bytearray(resolve_model("organic-ultra-tiny").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = bytes(b ^ 0xFF for b in data[middle : middle + 400])
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(bytes(data))
    result = mlffd(*md_args(damaged, tmp_path / "run"))
    assert result.code == 2
    assert "is damaged: its weights do not match the checksum recorded when it was saved" in _one_error_line(result)
    assert damaged.read_bytes() == bytes(data)
    assert not (tmp_path / "run" / "trajectory.h5md").exists()


def test_run_directory_with_results_is_refused_without_overwrite(smooth_checkpoint, tmp_path, mlffd):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "energies.csv").write_text("precious\n")
    result = mlffd(*md_args(smooth_checkpoint, run_dir))
    assert result.code == 2 and "--overwrite" in _one_error_line(result)
    assert (run_dir / "energies.csv").read_text() == "precious\n"
