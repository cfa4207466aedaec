"""Copy a trained or refined student into mlff_distiller/data/students/ under its bundled name.

Usage: python ship_student.py CANDIDATE.ckpt NAME SHIPPED_TEST_NAME TEST_SPLIT.h5 [TEST_SPLIT.h5 ...]

A student from ``mlffd distill``: copies CANDIDATE.ckpt and its .log.csv, .metrics.json and .curve.png
as NAME.*, and TEST_SPLIT.h5 as SHIPPED_TEST_NAME; the checkpoint's ``provenance.test_split_file`` is
set to SHIPPED_TEST_NAME (its hash, recorded at training, is unchanged: the bytes are the same).

A student from ``mlffd refine`` (CANDIDATE is the run folder's student.ckpt) has no test split of its
own: the loop trains on all of its seed data. The TEST_SPLIT files must then be frames it never trained
on (fresh teacher MD); they are joined into SHIPPED_TEST_NAME, evaluated here and recorded as the checkpoint's ``test_metrics`` with
their hash, written to NAME.metrics.json, and the loop's report (refine.md, refine.png, refine.json)
ships as NAME.refine.*. A previous NAME.log.csv and NAME.curve.png (another training's) are removed.
Weights and every other provenance field are kept.
"""

import json
import shutil
import sys
from pathlib import Path

import torch

from mlff_distiller.data import STUDENTS_DIR
from mlff_distiller.distillation import Dataset, evaluate
from mlff_distiller.models import load_checkpoint
from mlff_distiller.models.checkpoint import read_checkpoint

TRAINING_FILES = (".log.csv", ".metrics.json", ".curve.png")
REFINE_REPORT = ("refine.md", "refine.png", "refine.json")


def ship(candidate: Path, name: str, shipped_test_name: str, test_splits: list[Path]) -> None:
    """Write NAME.ckpt (provenance pointing at the shipped test split) and its side files."""
    payload = read_checkpoint(candidate)
    provenance = payload["provenance"]
    provenance["test_split_file"] = shipped_test_name
    refined = provenance.get("origin") == "mlffd refine"
    if refined:
        test = Dataset.concatenate([Dataset.load(path) for path in test_splits])
        test.save(STUDENTS_DIR / shipped_test_name)
        provenance["test_split_hash"] = test.content_hash()
        provenance["test_metrics"] = evaluate(load_checkpoint(candidate), test)
    else:
        (test_split,) = test_splits
        shutil.copyfile(test_split, STUDENTS_DIR / shipped_test_name)
    torch.save(payload, STUDENTS_DIR / f"{name}.ckpt")
    if refined:
        metrics = {"test_metrics": provenance["test_metrics"], "test_split_file": shipped_test_name}
        (STUDENTS_DIR / f"{name}.metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        for suffix in (".log.csv", ".curve.png"):
            (STUDENTS_DIR / f"{name}{suffix}").unlink(missing_ok=True)
        for report in REFINE_REPORT:
            shutil.copyfile(candidate.parent / report, STUDENTS_DIR / f"{name}.{report}")
        report = STUDENTS_DIR / f"{name}.refine.md"
        report.write_text(report.read_text().replace("(refine.png)", f"({name}.refine.png)"))
        return
    for suffix in TRAINING_FILES:
        shutil.copyfile(candidate.with_suffix(suffix), STUDENTS_DIR / f"{name}{suffix}")


if __name__ == "__main__":
    candidate, name, shipped, *test_splits = sys.argv[1:]
    ship(Path(candidate), name, shipped, [Path(path) for path in test_splits])
