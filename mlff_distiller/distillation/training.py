"""Training a student on labelled frames: reference energies, energy + force (+ angular) loss, AdamW,
learning-rate decay on plateaus (or a cosine over a time budget), early stopping on a validation split,
a held-out test split, data-parallel steps over the CPU cores, and a training state to resume from."""

import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

import numpy as np
from tqdm.auto import tqdm

from .. import inputs
from ..elements import check_known, check_supported
from ..errors import InvalidValueError, MLFFDError
from ..inputs import COUNT, FRACTION_BELOW_ONE, LEARNING_RATE, LOSS_WEIGHT, MINUTES, PATIENCE, SEED
from ..models import PRESETS, Student, preset
from .dataset import Dataset, DatasetError
from .graphs import Batch, FrameGraph, GraphPool, frame_graph, predict, predict_all
from .metrics import accuracy

#: Largest number of epochs when neither ``epochs`` nor a time limit is given.
DEFAULT_EPOCHS = 200


def available_cores() -> int:
    """CPU cores this process may use: ``OMP_NUM_THREADS`` when set, else its CPU affinity."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class TrainingSettings:
    """How a student is trained.

    Attributes
    ----------
    size : str
        Student size: "standard", "tiny" or "ultra-tiny".
    elements : list of int, optional
        Atomic numbers the student supports; default: the elements of the data.
    epochs : int, optional
        Largest number of passes over the training frames. Default (None): 200 without a time limit,
        no limit with one (the time budget then ends the training).
    energy_weight : float
        Weight of the mean squared energy error per atom, (eV/atom)².
    force_weight : float
        Weight of the mean squared force component error, (eV/Å)².
    angular_weight : float
        Weight of the mean (1 - cos) between predicted and reference force vectors.
    lr : float
        Initial AdamW learning rate.
    weight_decay : float
        AdamW weight decay.
    batch_size : int
        Frames per optimisation step (concatenated into one graph, split over the ``threads`` processes).
    seed : int
        Seed of the weights, the split and the frame order.
    val_fraction, test_fraction : float
        Shares of frames held out for validation (early stopping, LR decay) and for the final test.
    patience : int
        Epochs without validation improvement before stopping.
    lr_patience : int
        Epochs without improvement before the learning rate is halved (without a time limit).
    min_lr : float
        Training stops when the learning rate falls below this; the floor of the cosine schedule.
    time_limit_minutes : float, optional
        Wall-clock budget of :func:`train`. With it, the learning rate decays from ``lr`` to ``min_lr``
        along a cosine (instead of halving on plateaus) whose progress is the larger of time spent /
        budget and, when ``epochs`` is given, epochs done / ``epochs``: it reaches ``min_lr`` at
        whichever end comes first, and training stops there, keeping the best weights.
    dtype : str
        "float32" or "float64" arithmetic during training (checkpoints are float64 either way).
    threads : int, optional
        CPU cores to train on: each step's batch is split over this many processes of one thread each
        (data parallel, their gradients summed). Default (None): :func:`available_cores`. Changes the
        result only by floating-point summation order.
    """

    size: str = "standard"
    elements: list[int] | None = None
    epochs: int | None = None
    energy_weight: float = 100.0
    force_weight: float = 1.0
    angular_weight: float = 0.0
    lr: float = 1e-3
    weight_decay: float = 1e-6
    batch_size: int = 16
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    patience: int = 25
    lr_patience: int = 6
    min_lr: float = 1e-5
    time_limit_minutes: float | None = None
    dtype: str = "float32"
    threads: int | None = None

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise :class:`~mlff_distiller.errors.InvalidValueError` naming every value out of range.

        Each number follows its quantity's rule of :mod:`mlff_distiller.inputs` (the rules of
        ``mlffd distill``'s options); the validation and test shares must leave training frames,
        one loss weight must count, and the learning rate must not start below its floor.
        """
        checks = [
            (LOSS_WEIGHT, self.energy_weight, "energy_weight"),
            (LOSS_WEIGHT, self.force_weight, "force_weight"),
            (LOSS_WEIGHT, self.angular_weight, "angular_weight"),
            (LEARNING_RATE, self.lr, "lr"),
            (LOSS_WEIGHT, self.weight_decay, "weight_decay"),
            (COUNT, self.batch_size, "batch_size"),
            (SEED, self.seed, "seed"),
            (FRACTION_BELOW_ONE, self.val_fraction, "val_fraction"),
            (FRACTION_BELOW_ONE, self.test_fraction, "test_fraction"),
            (PATIENCE, self.patience, "patience"),
            (PATIENCE, self.lr_patience, "lr_patience"),
            (LEARNING_RATE, self.min_lr, "min_lr"),
        ]
        if self.epochs is not None:
            checks.append((COUNT, self.epochs, "epochs"))
        if self.time_limit_minutes is not None:
            checks.append((MINUTES, self.time_limit_minutes, "time_limit_minutes"))
        if self.threads is not None:
            checks.append((COUNT, self.threads, "threads"))
        found = inputs.problems(checks)
        if not found:
            if self.val_fraction + self.test_fraction >= 1:
                found.append(
                    f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction:g} leaves no training "
                    "frames; keep their sum below 1"
                )
            if self.energy_weight == self.force_weight == self.angular_weight == 0:
                found.append("energy_weight, force_weight and angular_weight are all 0: nothing to learn from")
            if self.min_lr > self.lr:
                found.append(f"min_lr = {self.min_lr:g} is above lr = {self.lr:g}")
        if self.size not in PRESETS:
            found.append(f"size must be one of {', '.join(PRESETS)}, not {self.size!r}")
        if self.dtype not in ("float32", "float64"):
            found.append(f"dtype must be 'float32' or 'float64', not {self.dtype!r}")
        if self.elements is not None:
            try:
                check_known(self.elements, "elements")
            except MLFFDError as exc:
                found.append(str(exc))
        if found:
            raise InvalidValueError("; ".join(found))


@dataclass
class TrainingResult:
    """What :func:`train` produced.

    Attributes
    ----------
    student : Student
        Best weights (lowest validation loss), float64, eval mode.
    history : list of dict
        Per epoch: epoch, lr, train_loss, val_loss, val_force_rmse (eV/Å), val_energy_mae (meV/atom), seconds.
    test_metrics : dict
        :func:`~mlff_distiller.distillation.metrics.accuracy` on the test split (float64 evaluation).
    split : dict
        Train, validation and test frame indices into the dataset.
    best_epoch : int
    stopped : str
        Why training ended: "patience", "min_lr", "epochs" or "time limit".
    """

    student: Student
    history: list[dict] = field(default_factory=list)
    test_metrics: dict = field(default_factory=dict)
    split: dict = field(default_factory=dict)
    best_epoch: int = 0
    stopped: str = ""


def fit_reference_energies(dataset: Dataset, elements: Sequence[int]) -> np.ndarray:
    """Per-element energies (eV) minimising sum over frames of (E - sum_atoms e_Z)², by least squares.

    Elements absent from the data get 0; with fixed stoichiometry (e.g. only water) the minimum-norm
    solution is taken.
    """
    index = {int(z): i for i, z in enumerate(elements)}
    counts = np.zeros((len(dataset), len(elements)))
    for row, frame in enumerate(dataset.frames):
        for z in frame.numbers:
            counts[row, index[int(z)]] += 1
    energies = np.array([frame.energy for frame in dataset.frames])
    solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return solution


def build_student(dataset: Dataset, settings: TrainingSettings) -> Student:
    """A student of ``settings.size`` with seeded weights, reference energies fit to ``dataset`` and an
    energy scale equal to the RMS force component (eV/Å, times 1 Å)."""
    elements = list(settings.elements) if settings.elements else dataset.elements
    check_supported(dataset.elements, elements, what=f"the {settings.size} student")
    torch.manual_seed(settings.seed)
    student = Student(preset(settings.size, elements=elements)).double()
    forces = np.concatenate([frame.forces for frame in dataset.frames])
    with torch.no_grad():
        student.network.reference_energies.copy_(torch.as_tensor(fit_reference_energies(dataset, elements)))
        student.network.energy_scale.fill_(float(np.sqrt(np.mean(forces**2))))
    return student


def evaluate(student: Student, dataset: Dataset, batch_size: int = 64) -> dict:
    """Accuracy of ``student`` (run in float64) on every frame of ``dataset``; see :func:`accuracy`."""
    student = copy.deepcopy(student).double().eval()
    graphs = [frame_graph(student, frame) for frame in dataset.frames]
    energies, forces = predict_all(student, graphs, torch.float64, batch_size)
    return accuracy(
        energies,
        np.array([f.energy for f in dataset.frames]),
        forces,
        np.concatenate([f.forces for f in dataset.frames]),
        np.array([len(f.numbers) for f in dataset.frames]),
        np.concatenate([f.numbers for f in dataset.frames]),
        [f.atoms().get_chemical_formula() for f in dataset.frames],
    )


def batch_loss(
    student: Student, batch: Batch, settings: TrainingSettings, frames_total: int, atoms_total: int
) -> torch.Tensor:
    """The loss of a batch's frames as their share of a step of ``frames_total`` frames and ``atoms_total`` atoms.

    The step's loss is ``energy_weight`` x mean over its frames of (ΔE/N)² (eV/atom)² + ``force_weight``
    x mean over its force components of ΔF² (eV/Å)² [+ ``angular_weight`` x mean over its atoms of
    1 - cos(F, F_ref)]; here the sums run over this batch's frames and atoms, divided by the step's
    counts, so that the shares of a step split over processes add up to its loss (and gradient).
    """
    energies, forces = predict(student, batch, training=True)
    dtype = energies.dtype
    energy_term = (((energies - batch.energies) / batch.n_atoms.to(dtype)) ** 2).sum() / frames_total
    force_term = ((forces - batch.forces) ** 2).sum() / (3 * atoms_total)
    loss = settings.energy_weight * energy_term + settings.force_weight * force_term
    if settings.angular_weight:
        cosine = torch.nn.functional.cosine_similarity(forces, batch.forces, dim=1, eps=1e-8)
        loss = loss + settings.angular_weight * (1 - cosine).sum() / atoms_total
    return loss


def add_loss_gradient(loss: torch.Tensor, parameters: Sequence[torch.Tensor]) -> None:
    """Add d``loss``/d``parameter`` to each parameter's ``.grad`` (created where None).

    Unlike ``loss.backward()``, the double-backward pass of a force loss then differentiates with
    respect to the weights only, not also the positions (about 6 % of a standard student's step).
    """
    gradients = torch.autograd.grad(loss, parameters, allow_unused=True)
    for parameter, gradient in zip(parameters, gradients, strict=True):
        if gradient is None:
            continue
        if parameter.grad is None:
            parameter.grad = gradient
        else:
            parameter.grad.add_(gradient)


def split_frames(frames: np.ndarray, n_atoms: np.ndarray, parts: int) -> list[np.ndarray]:
    """``frames`` cut into at most ``parts`` consecutive pieces of about equal atom counts (none empty)."""
    if parts <= 1 or len(frames) <= 1:
        return [frames]
    cumulative = np.cumsum(n_atoms[frames])
    targets = cumulative[-1] * np.arange(1, parts) / parts
    bounds = np.abs(cumulative[:, None] - targets[None, :]).argmin(0) + 1  # cut where the atoms are closest
    pieces = np.split(frames, np.unique(np.clip(bounds, 1, len(frames) - 1)))
    return [piece for piece in pieces if len(piece)]


def _validate(student: Student, graphs: Sequence[FrameGraph], settings: TrainingSettings, dtype: torch.dtype) -> dict:
    energies, forces = predict_all(student, graphs, dtype)
    reference_e = np.array([g.energy for g in graphs])
    reference_f = np.concatenate([g.forces.numpy() for g in graphs])
    n_atoms = np.array([len(g.species) for g in graphs])
    energy_term = np.mean(((energies - reference_e) / n_atoms) ** 2)
    force_term = np.mean((forces - reference_f) ** 2)
    return {
        "val_loss": float(settings.energy_weight * energy_term + settings.force_weight * force_term),
        "val_force_rmse": float(np.sqrt(force_term)),
        "val_energy_mae": float(np.mean(np.abs(energies - reference_e) / n_atoms) * 1000),
    }


def cosine_lr(settings: TrainingSettings, progress: float) -> float:
    """Learning rate at ``progress`` (0 to 1) of a cosine from ``settings.lr`` down to ``settings.min_lr``."""
    progress = min(max(progress, 0.0), 1.0)
    return settings.min_lr + 0.5 * (settings.lr - settings.min_lr) * (1 + math.cos(math.pi * progress))


def train(
    dataset: Dataset,
    settings: TrainingSettings,
    student: Student | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    *,
    state_path: str | Path | None = None,
    resume: bool = False,
    run_key: dict | None = None,
) -> TrainingResult:
    """Train a student on ``dataset`` and measure it on a held-out test split.

    Parameters
    ----------
    dataset : Dataset
        Labelled frames (eV, eV/Å). Must not be empty.
    settings : TrainingSettings
    student : Student, optional
        Starting model (fine-tuning: its architecture, elements, weights and reference energies are
        kept); default :func:`build_student` (seeded, reference energies fit first).
    progress : bool
        Show a progress bar over epochs.
    on_epoch : callable, optional
        Called with each epoch's history row (e.g. to write a log as training goes), after the
        training state of that epoch is saved.
    state_path : path, optional
        Training-state file (:mod:`~mlff_distiller.distillation.training_state`) written atomically
        after every epoch, so that an interrupted training can continue; replaced if it exists.
    resume : bool
        Continue the training saved in ``state_path`` (its weights, optimiser, schedule, epoch, best
        weights, history, random state and time spent); ``student`` is then ignored. Refused, naming
        what differs, when the settings (``threads`` aside), the data or ``run_key`` differ.
    run_key : dict, optional
        What else identifies the run (e.g. the starting checkpoint), stored in the state and compared
        on resume.

    Returns
    -------
    TrainingResult
    """
    from . import training_state
    from .training_parallel import StepWorkers

    settings.check()  # again: attributes may have changed since the settings were made
    if len(dataset) == 0:
        raise DatasetError("the dataset has no frames to train on")
    if resume and state_path is None:
        raise MLFFDError("resume needs the training-state file to continue from")
    wall_start = time.perf_counter()
    dtype = getattr(torch, settings.dtype)
    train_idx, val_idx, test_idx = dataset.split(settings.val_fraction, settings.test_fraction, settings.seed)
    if len(val_idx) == 0:
        val_idx = train_idx  # tiny datasets: validate on the training frames rather than on nothing
    saved = None
    identity = None
    if state_path is not None:
        identity = training_state.identity(dataset, settings, run_key)
    if resume:
        saved = training_state.load(state_path, identity)
        student = training_state.student_of(saved)
    elif student is None:
        student = build_student(dataset.subset(train_idx), settings)
    check_supported(dataset.elements, student.elements, what="the student")
    student = student.to(dtype).train()
    graphs = [frame_graph(student, frame) for frame in dataset.frames]
    pool = GraphPool([graphs[i] for i in train_idx], dtype)
    pool_atoms = pool.n_atoms.numpy()
    val_graphs = [graphs[i] for i in val_idx]

    weights = list(student.parameters())
    optimizer = torch.optim.AdamW(weights, lr=settings.lr, weight_decay=settings.weight_decay)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=settings.lr_patience)
    budget = None if settings.time_limit_minutes is None else 60.0 * settings.time_limit_minutes
    max_epochs = settings.epochs if settings.epochs is not None or budget is not None else DEFAULT_EPOCHS
    order_rng = np.random.default_rng(settings.seed)
    best = {"val_loss": math.inf, "state": copy.deepcopy(student.state_dict()), "epoch": 0}
    history: list[dict] = []
    epoch, stopped, spent_before = 0, "", 0.0
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
        plateau.load_state_dict(saved["plateau"])
        order_rng.bit_generator.state = saved["order_rng"]
        torch.set_rng_state(saved["torch_rng"])
        best, history = saved["best"], saved["history"]
        epoch, stopped, spent_before = saved["epoch"], saved["stopped"], saved["seconds"]
    started = wall_start - spent_before
    steps_per_epoch = math.ceil(len(pool) / settings.batch_size)

    def schedule_progress(steps_done: int) -> float:
        """Share of the cosine schedule spent: the larger of time and (when capped) epochs."""
        share = (time.perf_counter() - started) / budget
        if max_epochs is not None:
            share = max(share, (epoch - 1 + steps_done / steps_per_epoch) / max_epochs)
        return share

    threads = settings.threads or available_cores()
    workers = min(threads, settings.batch_size, len(pool))
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread per process: the cores go to data-parallel processes
    bar = tqdm(initial=epoch, total=max_epochs, desc="training", unit="epoch", disable=not progress)
    try:
        with StepWorkers(student, pool, settings, workers - 1 if not stopped else 0) as helpers:
            while not stopped:
                epoch += 1
                student.train()
                order = order_rng.permutation(len(pool))
                losses = []
                for step, begin in enumerate(range(0, len(order), settings.batch_size)):
                    if budget is not None:  # the learning rate follows a cosine over the time or epochs left
                        share = schedule_progress(step + 1)
                        for group in optimizer.param_groups:
                            group["lr"] = cosine_lr(settings, share)
                        if share >= 1.0 and (time.perf_counter() - started) >= budget:
                            stopped = "time limit"
                            break
                    frames = order[begin : begin + settings.batch_size]
                    parts = split_frames(frames, pool_atoms, helpers.count + 1)
                    n_atoms = int(pool_atoms[frames].sum())
                    optimizer.zero_grad()
                    helpers.start(parts[1:], len(frames), n_atoms)
                    loss = batch_loss(student, pool.batch(parts[0]), settings, len(frames), n_atoms)
                    add_loss_gradient(loss, weights)
                    total = loss.item() + helpers.collect(student)
                    optimizer.step()
                    losses.append(total)
                student.eval()
                row = {
                    "epoch": epoch,
                    "lr": optimizer.param_groups[0]["lr"],
                    "train_loss": float(np.mean(losses)) if losses else math.nan,
                    **_validate(student, val_graphs, settings, dtype),
                    "seconds": time.perf_counter() - started,
                }
                history.append(row)
                if budget is None:
                    plateau.step(row["val_loss"])
                if row["val_loss"] < best["val_loss"]:
                    best = {"val_loss": row["val_loss"], "state": copy.deepcopy(student.state_dict()), "epoch": epoch}
                if budget is not None and schedule_progress(steps_per_epoch) >= 1.0:
                    stopped = "time limit" if row["seconds"] >= budget else "epochs"
                    for group in optimizer.param_groups:  # the schedule has reached its floor
                        group["lr"] = settings.min_lr
                    row["lr"] = settings.min_lr
                elif epoch - best["epoch"] >= settings.patience:
                    stopped = "patience"
                elif optimizer.param_groups[0]["lr"] < settings.min_lr:
                    stopped = "min_lr"
                elif max_epochs is not None and epoch >= max_epochs:
                    stopped = "epochs"
                if state_path is not None:
                    training_state.save(
                        state_path,
                        identity,
                        student,
                        optimizer=optimizer,
                        plateau=plateau,
                        order_rng=order_rng,
                        best=best,
                        history=history,
                        epoch=epoch,
                        stopped=stopped,
                        seconds=row["seconds"],
                    )
                if on_epoch:
                    on_epoch(row)
                bar.update(1)
                bar.set_postfix(val_force_rmse=f"{row['val_force_rmse']:.4f}", lr=f"{row['lr']:.1e}")
    finally:
        bar.close()
        torch.set_num_threads(previous_threads)
    student.load_state_dict(best["state"])
    student = student.double().eval()
    test_metrics = evaluate(student, dataset.subset(test_idx)) if len(test_idx) else {}
    split = {"train": train_idx.tolist(), "val": val_idx.tolist(), "test": test_idx.tolist()}
    return TrainingResult(student, history, test_metrics, split, best["epoch"], stopped)
