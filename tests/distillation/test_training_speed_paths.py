"""The fast training path: a precollated batch's loss and gradient equal a straightforward per-frame
computation; two data-parallel processes give the same training as one; the time limit shapes the schedule."""

import torch

import numpy as np
import pytest
from kit import RECOMPUTED, TIGHT, assert_close

import mlff_distiller.distillation.training as training
from mlff_distiller.data import STUDENTS_DIR
from mlff_distiller.distillation import Dataset, TrainingSettings, build_student, train
from mlff_distiller.distillation.graphs import GraphPool, frame_graph
from mlff_distiller.distillation.training import batch_loss, split_frames


@pytest.fixture(scope="module")
def small_data() -> Dataset:
    """Real GFN2-xTB frames of the bundled test split: 12 ethanol and 6 malonaldehyde (two sizes in a batch)."""
    data = Dataset.load(STUDENTS_DIR / "organic-test.h5")
    ethanol = [f for f in data.frames if f.atoms().get_chemical_formula() == "C2H6O"][:12]
    malonaldehyde = [f for f in data.frames if f.atoms().get_chemical_formula() == "C3H4O2"][:6]
    return Dataset(ethanol + malonaldehyde, data.attrs)


def settings(**overrides) -> TrainingSettings:
    values = dict(size="ultra-tiny", epochs=3, batch_size=4, dtype="float64", val_fraction=0.2, test_fraction=0.0)
    values.update(overrides)
    return TrainingSettings(**values)


def test_batched_loss_and_gradient_equal_a_per_frame_autograd_sum(small_data):
    """The pool's batch through batch_loss against each frame alone through Student.forward (its own
    neighbour search), forces by autograd, the loss's means written out and differentiated."""
    config = settings(size="tiny", angular_weight=0.3)
    student = build_student(small_data, config).train()
    with torch.no_grad():  # trained-like buffers so that every term matters
        student.network.energy_scale.fill_(0.4)
    pool = GraphPool([frame_graph(student, f) for f in small_data.frames], torch.float64)
    frames = [16, 2, 7, 13, 0]  # both molecules, out of order
    n_atoms = sum(len(small_data.frames[i].numbers) for i in frames)
    loss = batch_loss(student, pool.batch(frames), config, len(frames), n_atoms)
    gradient = torch.autograd.grad(loss, list(student.parameters()))

    energy_sum = force_sum = angular_sum = 0.0
    for i in frames:
        frame = small_data.frames[i]
        positions = torch.tensor(frame.positions, requires_grad=True)
        energy = student(positions, student.species(frame.numbers), torch.zeros((3, 3)), torch.zeros(3, dtype=bool))
        (grad,) = torch.autograd.grad(energy, positions, create_graph=True)
        forces, reference = -grad, torch.tensor(frame.forces)
        energy_sum = energy_sum + ((energy - frame.energy) / len(frame.numbers)) ** 2
        force_sum = force_sum + ((forces - reference) ** 2).sum()
        cosine = (forces * reference).sum(1) / (forces.norm(dim=1) * reference.norm(dim=1))
        angular_sum = angular_sum + (1 - cosine).sum()
    expected = (
        config.energy_weight * energy_sum / len(frames)
        + config.force_weight * force_sum / (3 * n_atoms)
        + config.angular_weight * angular_sum / n_atoms
    )
    expected_gradient = torch.autograd.grad(expected, list(student.parameters()))
    assert_close(loss, expected, TIGHT, "loss")
    for (name, _), got, want in zip(student.named_parameters(), gradient, expected_gradient, strict=True):
        assert_close(got, want, RECOMPUTED, f"gradient of {name}")


def test_shares_of_a_batch_split_by_atoms():
    n_atoms = np.array([9, 9, 9, 9, 21, 21, 3])
    pieces = split_frames(np.array([0, 1, 2, 3, 4, 5]), n_atoms, 2)
    assert [p.tolist() for p in pieces] == [[0, 1, 2, 3], [4, 5]]
    assert [p.tolist() for p in split_frames(np.array([6]), n_atoms, 2)] == [[6]]
    assert sum(len(p) for p in split_frames(np.arange(7), n_atoms, 3)) == 7


def test_two_processes_train_as_one(small_data):
    """Same split, order and updates: the histories and weights agree to float64 summation order."""
    runs = [train(small_data, settings(threads=threads), progress=False) for threads in (1, 2)]
    for one, two in zip(runs[0].history, runs[1].history, strict=True):
        assert two["val_loss"] == pytest.approx(one["val_loss"], rel=RECOMPUTED)
        assert two["train_loss"] == pytest.approx(one["train_loss"], rel=RECOMPUTED)
    for name, value in runs[0].student.state_dict().items():
        assert_close(runs[1].student.state_dict()[name], value, RECOMPUTED, name)


def test_a_time_limit_ends_the_cosine_at_its_floor_and_lifts_the_epoch_cap(small_data, monkeypatch):
    monkeypatch.setattr(training, "DEFAULT_EPOCHS", 3)  # the cap that applies without a time limit
    result = train(small_data, settings(epochs=None, time_limit_minutes=0.05, patience=10**6), progress=False)
    assert result.stopped == "time limit"
    assert len(result.history) > 3
    assert result.history[-1]["lr"] == pytest.approx(1e-5)
    assert 2.5 < result.history[-1]["seconds"] < 15


def test_with_epochs_and_a_time_limit_the_schedule_ends_at_whichever_comes_first(small_data):
    result = train(small_data, settings(epochs=3, time_limit_minutes=60), progress=False)
    assert result.stopped == "epochs" and len(result.history) == 3
    lrs = [row["lr"] for row in result.history]
    assert lrs[0] > lrs[1] > lrs[2] == pytest.approx(1e-5)


def test_a_daemonic_process_trains_alone(small_data, monkeypatch):
    """A daemonic process may not start helpers (e.g. a worker of a multiprocessing pool): it trains alone."""
    import multiprocessing

    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True)
    result = train(small_data, settings(epochs=1, threads=2), progress=False)
    assert len(result.history) == 1
