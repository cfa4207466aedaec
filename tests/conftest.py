"""Fixtures shared across the test suite: seeded students, a checkpoint factory and the in-process CLI."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

import numpy as np
import pytest

torch.set_num_threads(1)

from kit import CliResult, randomise_buffers, run_mlffd

from mlff_distiller.data import resolve_model, student_names
from mlff_distiller.elements import numbers_from_symbols
from mlff_distiller.models import PRESETS, Student, preset, save_checkpoint


@pytest.fixture
def mlffd() -> Callable[..., CliResult]:
    """The in-process CLI runner :func:`kit.run_mlffd`: ``mlffd("info", path)`` -> CliResult(code, out, err)."""
    return run_mlffd


@pytest.fixture
def make_checkpoint(tmp_path) -> Callable[..., Path]:
    """Write a student checkpoint into ``tmp_path`` and return its path.

    ``make_checkpoint("tiny")``: a size of :data:`mlff_distiller.models.PRESETS` with seeded random
    weights (float64 on file, as every checkpoint) and the trained-like energy scale and reference
    energies of :func:`kit.randomise_buffers`; ``elements`` (symbols) and ``seed`` change it.
    ``make_checkpoint("organic-ultra-tiny")``: a copy of a bundled student (no other option applies).
    ``name``: the file name in ``tmp_path``.
    """

    def make(size: str, elements: Sequence[str] | None = None, seed: int = 7, name: str = "student.ckpt") -> Path:
        path = tmp_path / name
        if size in student_names():
            return Path(shutil.copy(resolve_model(size), path))
        overrides = {"elements": numbers_from_symbols(list(elements))} if elements else {}
        torch.manual_seed(seed)
        student = Student(preset(size, **overrides)).double().eval()
        randomise_buffers(student)
        return save_checkpoint(student, path, provenance={"origin": "random weights", "seed": seed, "size": size})

    return make


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(params=list(PRESETS))
def any_student(request) -> Student:
    """Each preset with seeded random weights, float64, eval mode."""
    torch.manual_seed(7)
    student = Student(preset(request.param)).double().eval()
    randomise_buffers(student)
    return student


@pytest.fixture
def tiny_student() -> Student:
    torch.manual_seed(3)
    student = Student(preset("tiny")).double().eval()
    randomise_buffers(student)
    return student
