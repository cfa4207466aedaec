"""Fixtures shared across the test suite."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

from mlff_distiller.models import PRESETS, Student, preset


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(params=list(PRESETS))
def any_student(request) -> Student:
    """Each preset with seeded random weights, float64, eval mode."""
    torch.manual_seed(7)
    student = Student(preset(request.param)).double().eval()
    _randomise_buffers(student)
    return student


@pytest.fixture
def tiny_student() -> Student:
    torch.manual_seed(3)
    student = Student(preset("tiny")).double().eval()
    _randomise_buffers(student)
    return student


def _randomise_buffers(student: Student) -> None:
    """Give the energy scale and reference energies non-trivial values, as after training."""
    with torch.no_grad():
        student.network.energy_scale.fill_(0.7)
        student.network.reference_energies.copy_(torch.linspace(-13.0, -2.0, len(student.elements)))
