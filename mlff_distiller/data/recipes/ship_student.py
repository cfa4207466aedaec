"""Copy a trained student into mlff_distiller/data/students/ under its bundled name.

Usage: python ship_student.py CANDIDATE.ckpt NAME TEST_SPLIT.h5 SHIPPED_TEST_NAME

Copies CANDIDATE.ckpt and its .log.csv, .metrics.json and .curve.png as NAME.*, and TEST_SPLIT.h5 as
SHIPPED_TEST_NAME; the checkpoint's ``provenance.test_split_file`` is set to SHIPPED_TEST_NAME (its hash,
recorded at training, is unchanged: the bytes are the same). Weights and every other field are kept.
"""

import shutil
import sys
from pathlib import Path

import torch

from mlff_distiller.data import STUDENTS_DIR
from mlff_distiller.models.checkpoint import read_checkpoint


def ship(candidate: Path, name: str, test_split: Path, shipped_test_name: str) -> None:
    """Write NAME.ckpt (provenance pointing at the shipped test split) and its side files."""
    payload = read_checkpoint(candidate)
    payload["provenance"]["test_split_file"] = shipped_test_name
    torch.save(payload, STUDENTS_DIR / f"{name}.ckpt")
    for suffix in (".log.csv", ".metrics.json", ".curve.png"):
        shutil.copyfile(candidate.with_suffix(suffix), STUDENTS_DIR / f"{name}{suffix}")
    shutil.copyfile(test_split, STUDENTS_DIR / shipped_test_name)


if __name__ == "__main__":
    candidate, name, test_split, shipped = sys.argv[1:5]
    ship(Path(candidate), name, Path(test_split), shipped)
