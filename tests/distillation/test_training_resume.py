"""Continuing an interrupted training (--resume) and fine-tuning a checkpoint (--init)."""

import os
import signal
import subprocess
import sys
import time

import torch

import pytest
from kit import RECOMPUTED, assert_close

from mlff_distiller.data import STUDENTS_DIR, bundled_student
from mlff_distiller.distillation import Dataset, TrainingSettings, train
from mlff_distiller.errors import MLFFDError
from mlff_distiller.models import load_checkpoint, read_checkpoint
from mlff_distiller.models.checkpoint import weights_sha256


@pytest.fixture(scope="module")
def ethanol(tmp_path_factory):
    """16 real GFN2-xTB ethanol frames of the bundled test split, as a dataset file."""
    data = Dataset.load(STUDENTS_DIR / "organic-test.h5")
    frames = [f for f in data.frames if f.atoms().get_chemical_formula() == "C2H6O"][:16]
    return Dataset(frames, data.attrs).save(tmp_path_factory.mktemp("data") / "ethanol.h5")


def settings(**overrides) -> TrainingSettings:
    values = dict(size="ultra-tiny", epochs=4, batch_size=4, dtype="float64", val_fraction=0.25, test_fraction=0.0)
    values.update(overrides)
    return TrainingSettings(**values)


def test_an_interrupted_training_resumes_at_the_next_epoch_as_if_never_stopped(ethanol, tmp_path):
    """Interrupted after epoch 2 (a KeyboardInterrupt from the epoch callback), resumed (on two processes
    where the first run had one: ``threads`` may change): epochs 3 and 4 follow, and the history and
    weights are those of the uninterrupted run to float64 summation order (1e-9 relative; with the
    same ``threads`` they are bitwise equal)."""
    data = Dataset.load(ethanol)
    whole = train(data, settings(), progress=False)
    state = tmp_path / "s.training.pt"

    def stop_after_two(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(data, settings(), progress=False, on_epoch=stop_after_two, state_path=state)
    seen = []
    resumed = train(data, settings(threads=2), progress=False, on_epoch=seen.append, state_path=state, resume=True)
    assert [row["epoch"] for row in seen] == [3, 4]
    for got, want in zip(resumed.history, whole.history, strict=True):
        assert got["val_loss"] == pytest.approx(want["val_loss"], rel=RECOMPUTED)
    assert resumed.best_epoch == whole.best_epoch
    for name, value in whole.student.state_dict().items():
        assert_close(resumed.student.state_dict()[name], value, RECOMPUTED, name)


def test_resume_refuses_other_settings_other_data_and_no_state(ethanol, tmp_path):
    data = Dataset.load(ethanol)
    state = tmp_path / "s.training.pt"
    train(data, settings(epochs=1), progress=False, state_path=state)
    with pytest.raises(MLFFDError, match=r"another training: lr 0.001 then, 0.002 now"):
        train(data, settings(epochs=1, lr=2e-3), progress=False, state_path=state, resume=True)
    with pytest.raises(MLFFDError, match="the data"):
        train(data.subset(range(12)), settings(epochs=1), progress=False, state_path=state, resume=True)
    with pytest.raises(MLFFDError, match="no training state to resume"):
        train(data, settings(), progress=False, state_path=tmp_path / "none.pt", resume=True)


def test_distill_init_fine_tunes_a_bundled_student_and_refuses_what_it_cannot(ethanol, tmp_path, mlffd):
    output = tmp_path / "tuned.ckpt"
    result = mlffd("distill", ethanol, "--init", "organic-ultra-tiny", "--epochs", "1", "-o", output, "--quiet")
    assert result.code == 0, result.err
    parent = load_checkpoint(bundled_student("organic-ultra-tiny"))
    tuned = load_checkpoint(output)
    assert tuned.config == parent.config
    assert torch.equal(tuned.network.reference_energies, parent.network.reference_energies)
    provenance = tuned.provenance
    assert provenance["init"] == {
        "name": "organic-ultra-tiny",
        "weights_sha256": weights_sha256(read_checkpoint(bundled_student("organic-ultra-tiny"))["state_dict"]),
        "size": "ultra-tiny",
    }
    assert provenance["settings"]["size"] == "ultra-tiny"
    assert not (tmp_path / "tuned.training.pt").exists()  # removed once the checkpoint is written

    refused = mlffd("distill", ethanol, "--init", "water-standard", "-o", tmp_path / "w.ckpt", "--quiet")
    assert refused.code == 2 and "supports H O only, and the data has C" in refused.err
    assert len(refused.err.strip().splitlines()) == 1
    refused = mlffd("distill", ethanol, "--init", "organic-ultra-tiny", "--size", "tiny", "-o", tmp_path / "t.ckpt")
    assert refused.code == 2 and "is a ultra-tiny student; a fine-tuning keeps its size" in refused.err


@pytest.mark.slow  # three mlffd processes: about 20-50 s on two shared cores
def test_sigterm_leaves_the_state_and_resume_finishes(ethanol, tmp_path):
    """``mlffd distill`` killed with SIGTERM once its first epoch is saved: exit 143, one line naming
    --resume; without --resume the state is refused; with it the training finishes and the state goes."""
    output = tmp_path / "s.ckpt"
    state = tmp_path / "s.training.pt"
    command = [sys.executable, "-m", "mlff_distiller.cli", "distill", str(ethanol), "-o", str(output)]
    options = ["--size", "ultra-tiny", "--epochs", "40", "--patience", "1000", "--batch-size", "2", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([*command, *options], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not state.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert err.strip().splitlines() == [
        f"mlffd distill: terminated; the training state is in {state}: run the same command with --resume to continue"
    ]
    assert state.is_file() and not output.exists()

    again = subprocess.run([*command, *options], env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "continue it with --resume" in again.stderr
    stopped_at = torch.load(state, weights_only=False)["epoch"]
    finish = subprocess.run([*command, *options, "--resume"], env=env, capture_output=True, text=True)
    assert finish.returncode == 0, finish.stderr
    assert output.is_file() and not state.exists()
    log = (tmp_path / "s.log.csv").read_text().splitlines()
    assert [int(line.split(",")[0]) for line in log[1:]] == list(range(1, len(log)))  # every epoch, once
    assert len(log) - 1 > stopped_at and load_checkpoint(output).provenance["resumed"] is True
