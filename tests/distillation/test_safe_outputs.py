"""``mlffd new``, ``distill``, ``evaluate`` and ``sample`` write safely: never over an input, no partial files."""

import hashlib
import json
import shutil

import pytest

from mlff_distiller.data import resolve_model, resolve_structure
from mlff_distiller.distillation import Dataset

WATER_TEST = resolve_model("water-standard").with_name("water-standard.test.h5")


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_refused(result, fragment) -> None:
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlffd: error: ") and "Traceback" not in result.err, result.err
    assert fragment in lines[0], lines[0]


def partials(folder) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".partial" in p.name]


@pytest.fixture
def data(tmp_path):
    return shutil.copy(WATER_TEST, tmp_path / "D.h5")


@pytest.mark.parametrize(
    "extra",
    [["-o", "D.h5"], ["-o", "./D.h5"], ["-o", "D.ckpt", "--test-output", "D.h5"], ["-o", "sub/../D.h5"]],
    ids=["same", "dot", "test-output", "parent"],
)
def test_distill_refuses_its_dataset_as_an_output(mlffd, data, tmp_path, monkeypatch, extra):
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    before = sha256(data)
    assert_refused(mlffd("distill", "D.h5", "--size", "ultra-tiny", *extra, "--overwrite", "--quiet"), "is the input")
    assert sha256(data) == before and partials(tmp_path) == []


def test_distill_refuses_a_test_split_over_another_output(mlffd, data, tmp_path):
    result = mlffd("distill", data, "-o", tmp_path / "S.ckpt", "--test-output", tmp_path / "S.ckpt", "--quiet")
    assert_refused(result, "would overwrite another output")


def test_distill_writes_every_output_whole(mlffd, data, tmp_path):
    student = tmp_path / "new" / "S.ckpt"
    args = ("distill", data, "--size", "ultra-tiny", "--epochs", "1", "--batch-size", "4", "-o", student, "--quiet")
    assert mlffd(*args).code == 0
    written = sorted(p.name for p in student.parent.iterdir())
    assert written == ["S.ckpt", "S.curve.png", "S.log.csv", "S.metrics.json", "S.test.h5"]
    assert_refused(mlffd(*args), "--overwrite")
    assert partials(tmp_path) == []


def test_evaluate_json_refusals(mlffd, data, tmp_path):
    before = sha256(data)
    assert_refused(mlffd("evaluate", "water-standard", data, "--json", data, "--overwrite"), "is the input")
    assert sha256(data) == before
    (tmp_path / "folder.json").mkdir()
    assert_refused(mlffd("evaluate", "water-standard", data, "--json", tmp_path / "folder.json"), "is a directory")
    result = mlffd("evaluate", "water-standard", data, "--json", tmp_path / "metrics.json")
    assert result.code == 0, result.err
    assert json.loads((tmp_path / "metrics.json").read_text())["frames"] == len(Dataset.load(data))
    assert_refused(mlffd("evaluate", "water-standard", data, "--json", tmp_path / "metrics.json"), "--overwrite")
    assert partials(tmp_path) == []


def test_new_refusals(mlffd, make_checkpoint, tmp_path):
    checkpoint = make_checkpoint("ultra-tiny")
    before = sha256(checkpoint)
    assert_refused(mlffd("new", "-o", checkpoint), "--overwrite")
    (tmp_path / "folder.ckpt").mkdir()
    assert_refused(mlffd("new", "-o", tmp_path / "folder.ckpt", "--overwrite"), "is a directory")
    (tmp_path / "file").write_text("x")
    assert_refused(mlffd("new", "-o", tmp_path / "file" / "s.ckpt"), "is a file, not a folder")
    assert sha256(checkpoint) == before
    assert mlffd("new", "-o", checkpoint, "--overwrite").code == 0
    assert sha256(checkpoint) != before and partials(tmp_path) == []


def test_sample_refuses_its_structure_as_output(mlffd, tmp_path):
    structure = shutil.copy(resolve_structure("ethanol"), tmp_path / "ethanol.xyz")
    before = sha256(structure)
    assert_refused(
        mlffd("sample", structure, "-o", structure, "--overwrite"),
        "is the input",
    )
    assert sha256(structure) == before
