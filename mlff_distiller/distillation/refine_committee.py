"""The committee of an active-distillation run: how its members are made and retrained, and how they score frames.

Members are made as DP-GEN makes them, from different seeds, with one shortcut when a trained
student is given: every member starts from that student's weights and is fine-tuned on the seed
data with its own seed (its own validation split and frame order); member 0 (seed ``seed``)
drives the exploration. The members end where their different fine-tuning paths took them: close
together on configurations like the data, apart away from it. Measured on acetic acid (organic-ultra-tiny,
twelve 300 K seed frames, 20 epochs in batches of 2): median largest deviation 0.05 eV/Å on the seed
frames, 0.11 on fresh 300-600 K MD frames, 0.15 on seed frames displaced by 0.15 Å (re-initialising
the readout of members k >= 1 instead gave 0.19, 0.28 and 2.1: more spread far from the data, but a
noise floor four times higher at such budgets). Without a student, every member is trained from
scratch on the data from its own seed. Each round fine-tunes every member from its current weights
(a warm start) on all the data.
"""

import copy

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


def new_member(student: Student | None, dataset: Dataset | None, settings: RefineSettings, index: int) -> Student:
    """Committee member ``index``: ``student`` fine-tuned on ``dataset`` (without data: ``student`` as it is), or
    without a student, a student trained from scratch on ``dataset``; seed ``settings.seed + index``."""
    if dataset is None:
        return copy.deepcopy(student)
    return fine_tune(None if student is None else copy.deepcopy(student), dataset, settings, settings.seed + index)


def committee_scores(members: list[Student], configurations: list[Atoms]) -> np.ndarray:
    """Largest per-atom force deviation (eV/Å) of the committee on each configuration (see :func:`force_deviation`)."""
    committee = Committee(members)
    return np.array([float(force_deviation(committee.forces(atoms))[0]) for atoms in configurations])
