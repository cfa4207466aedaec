"""``mlffd export`` writes safely: never over its input, never a failed file over a good one."""

import hashlib

import pytest

from mlff_distiller.export import lammps, openmm
from mlff_distiller.export.verify import ExportVerificationError


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_one_error_line(result, *fragments) -> None:
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlffd: error: ") and "Traceback" not in result.err, result.err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def checkpoint(make_checkpoint):
    return make_checkpoint("ultra-tiny", elements=["H", "C", "O"])


def partials(folder) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".partial" in p.name]


@pytest.mark.parametrize("engine", ["openmm", "lammps"])
@pytest.mark.parametrize("spelling", ["same", "dot", "symlink"])
def test_export_refuses_its_own_checkpoint_as_output(mlffd, checkpoint, tmp_path, monkeypatch, engine, spelling):
    before = sha256(checkpoint)
    monkeypatch.chdir(tmp_path)
    output = {"same": checkpoint, "dot": "./student.ckpt", "symlink": tmp_path / "link.pt"}[spelling]
    if spelling == "symlink":
        (tmp_path / "link.pt").symlink_to(checkpoint)
    result = mlffd("export", checkpoint, "--engine", engine, "-o", output, "--overwrite")
    assert_one_error_line(result, "is the input")
    assert sha256(checkpoint) == before
    assert partials(tmp_path) == []


@pytest.mark.parametrize("engine", ["openmm", "lammps"])
def test_export_refuses_a_directory_and_an_existing_file(mlffd, checkpoint, tmp_path, engine):
    (tmp_path / "folder.pt").mkdir()
    assert_one_error_line(
        mlffd("export", checkpoint, "--engine", engine, "-o", tmp_path / "folder.pt"), "is a directory"
    )
    (tmp_path / "old.pt").write_bytes(b"old")
    assert_one_error_line(mlffd("export", checkpoint, "--engine", engine, "-o", tmp_path / "old.pt"), "--overwrite")
    assert (tmp_path / "old.pt").read_bytes() == b"old"
    (tmp_path / "file").write_text("not a folder")
    assert_one_error_line(
        mlffd("export", checkpoint, "--engine", engine, "-o", tmp_path / "file" / "model.pt"), "is a file, not a folder"
    )


@pytest.mark.parametrize("engine", ["openmm", "lammps"])
def test_failed_verification_leaves_the_previous_export(mlffd, checkpoint, tmp_path, monkeypatch, engine):
    good = tmp_path / "model.pt"
    assert mlffd("export", checkpoint, "--engine", engine, "-o", good).code == 0
    before = sha256(good)

    def reject(path, *args):
        assert path.exists() and path.parent == good.parent and path != good  # written beside the output
        raise ExportVerificationError(f"{good}: the exported model disagrees with the student")

    monkeypatch.setattr(*{"openmm": (openmm, "verify_openmm"), "lammps": (lammps, "verify_lammps")}[engine], reject)
    result = mlffd("export", checkpoint, "--engine", engine, "-o", good, "--overwrite")
    assert_one_error_line(result, "disagrees")
    assert sha256(good) == before
    assert partials(tmp_path) == []
