"""The committee of an active-distillation run: how its members are made and retrained, and how they score frames.

Members are made as DP-GEN makes them, from different seeds, with one shortcut when a trained
student is given: member 0 is that student, unchanged; member k >= 1 is a copy whose readout (the
two layers that turn features into atomic energies) is re-initialised from seed k and then
fine-tuned on the seed data with its own seed (its own validation split and frame order). The
copies share the student's learned features, so they agree on configurations like the data and
disagree away from it (tests/distillation/test_refine.py measures it). Without a student,
every member is trained from scratch on the data from its own seed. Each round fine-tunes every
member from its current weights (a warm start) on all the data.
"""

import copy

import torch

import numpy as np
from ase import Atoms

from ..models import PRESETS, Committee, Student, force_deviation
from .dataset import Dataset
from .refine_settings import RefineSettings
from .training import TrainingSettings, train

#: Learning rate of members trained from scratch (the training default).
SCRATCH_LR = 1e-3


def size_of(student: Student) -> str:
    """The preset a student's width and depth match ("standard" when none does)."""
    for name, config in PRESETS.items():
        if (config.features, config.layers) == (student.config.features, student.config.layers):
            return name
    return "standard"


def fine_tune(student: Student | None, dataset: Dataset, settings: RefineSettings, seed: int) -> Student:
    """Train ``student`` (warm start; None: a new ``settings.size`` student) on every frame of ``dataset``.

    Training follows ``settings`` (``epochs``, ``train_minutes``, ``lr``, ``batch_size``), validates
    on a tenth of the frames drawn with ``seed`` (the best weights are kept) and holds out no test
    split: the run measures its models on held-out MD frames instead.
    """
    lr = settings.lr if student is not None else SCRATCH_LR
    training = TrainingSettings(
        size=size_of(student) if student is not None else settings.size,
        elements=None if student is None else list(student.elements),
        epochs=settings.epochs,
        lr=lr,
        min_lr=min(1e-5, lr),
        batch_size=settings.batch_size,
        seed=seed,
        val_fraction=0.1,
        test_fraction=0.0,
        time_limit_minutes=settings.train_minutes,
    )
    return train(dataset, training, student=student, progress=False).student


def reset_readout(student: Student, seed: int) -> Student:
    """A copy of ``student`` whose readout layers are re-initialised from ``seed`` (PyTorch's default initialisation)."""
    member = copy.deepcopy(student)
    torch.manual_seed(seed)
    for layer in member.network.readout:
        if isinstance(layer, torch.nn.Linear):
            layer.reset_parameters()
    return member


def new_member(student: Student | None, dataset: Dataset, settings: RefineSettings, index: int) -> Student:
    """Committee member ``index``: the student itself (0), a re-initialised readout fine-tuned on ``dataset``, or,
    without a student, a student trained from scratch; seeds ``settings.seed + index``."""
    seed = settings.seed + index
    if student is None:
        return fine_tune(None, dataset, settings, seed)
    if index == 0:
        return copy.deepcopy(student)
    return fine_tune(reset_readout(student, seed), dataset, settings, seed)


def committee_scores(members: list[Student], configurations: list[Atoms]) -> np.ndarray:
    """Largest per-atom force deviation (eV/Å) of the committee on each configuration (see :func:`force_deviation`)."""
    committee = Committee(members)
    return np.array([float(force_deviation(committee.forces(atoms))[0]) for atoms in configurations])
