"""Safe writes: every refusal of :mod:`mlff_distiller.safe_write`, atomic replacement, no leftovers."""

import os
from pathlib import Path

import pytest

from mlff_distiller.errors import MLFFDError, OverwriteError
from mlff_distiller.safe_write import check_output, output_folder, safe_write, staged_file

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def write_text(text: str):
    return lambda path: Path(path).write_text(text)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".partial" in p.name)


def test_writes_new_file_and_creates_missing_folders(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    assert safe_write(target, write_text("new")) == target
    assert target.read_text() == "new"
    assert leftovers(tmp_path) == []


def test_temporary_is_beside_the_output_with_its_suffix(tmp_path):
    with staged_file(tmp_path / "model.pt") as temporary:
        assert temporary.parent == tmp_path and temporary.suffix == ".pt" and not temporary.exists()
        temporary.write_bytes(b"x")
    assert (tmp_path / "model.pt").read_bytes() == b"x"


@pytest.mark.parametrize("spelling", ["absolute", "relative", "dot", "symlink", "hardlink"])
def test_refuses_an_input_whatever_overwrite_says(tmp_path, monkeypatch, spelling):
    source = tmp_path / "in.ckpt"
    source.write_bytes(b"precious")
    monkeypatch.chdir(tmp_path)
    output = {
        "absolute": source,
        "relative": Path("in.ckpt"),
        "dot": Path("./sub/../in.ckpt"),
        "symlink": tmp_path / "link.ckpt",
        "hardlink": tmp_path / "hard.ckpt",
    }[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "symlink":
        output.symlink_to(source)
    if spelling == "hardlink":
        os.link(source, output)
    with pytest.raises(MLFFDError, match="is the input") as caught:
        safe_write(output, write_text("clobbered"), inputs=[None, "./in.ckpt"], overwrite=True)
    assert not isinstance(caught.value, OverwriteError)
    assert source.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []


def test_refuses_an_existing_output_without_overwrite(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(OverwriteError, match="--overwrite"):
        safe_write(target, write_text("new"))
    assert target.read_text() == "old"
    safe_write(target, write_text("new"), overwrite=True)
    assert target.read_text() == "new"


def test_failed_verification_leaves_previous_output_byte_identical(tmp_path):
    target = tmp_path / "out.pt"
    target.write_bytes(b"good model")

    def write_then_fail(path: Path) -> None:
        path.write_bytes(b"broken model")
        raise ValueError("verification failed")

    with pytest.raises(ValueError, match="verification failed"):
        safe_write(target, write_then_fail, overwrite=True)
    assert target.read_bytes() == b"good model"
    assert leftovers(tmp_path) == []


def test_directory_where_a_file_is_expected(tmp_path):
    (tmp_path / "out.pt").mkdir()
    with pytest.raises(MLFFDError, match="is a directory"):
        safe_write(tmp_path / "out.pt", write_text("x"), overwrite=True)


def test_file_where_a_folder_is_expected(tmp_path):
    (tmp_path / "report").write_text("a file")
    with pytest.raises(MLFFDError, match="is a file"):
        output_folder(tmp_path / "report", overwrite=True)
    with pytest.raises(MLFFDError, match="is a file, not a folder"):
        safe_write(tmp_path / "report" / "deeper" / "out.txt", write_text("x"))
    assert (tmp_path / "report").read_text() == "a file"


def test_folder_output_refuses_non_empty_without_overwrite(tmp_path):
    folder = tmp_path / "run"
    assert output_folder(folder) == folder and folder.is_dir()
    assert output_folder(folder) == folder  # empty: fine
    (folder / "results.csv").write_text("1")
    with pytest.raises(OverwriteError, match="not empty"):
        output_folder(folder)
    assert output_folder(folder, overwrite=True) == folder


def test_folder_output_refuses_an_input_folder(tmp_path):
    with pytest.raises(MLFFDError, match="is the input"):
        check_output(tmp_path, inputs=[tmp_path], overwrite=True, folder=True)


@pytest.mark.skipif(AS_ROOT, reason="root writes in read-only folders")
def test_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(MLFFDError, match="permission denied"):
            safe_write(locked / "out.txt", write_text("x"))
        with pytest.raises(MLFFDError, match="permission denied"):
            safe_write(locked / "new" / "out.txt", write_text("x"))
    finally:
        locked.chmod(0o755)
    assert list(locked.iterdir()) == []


def test_file_system_refusal_while_writing_is_one_line(tmp_path):
    def refuse(path: Path) -> None:
        raise OSError(28, "No space left on device", str(path))

    with pytest.raises(MLFFDError, match=r"cannot write .*out.txt: No space left on device"):
        safe_write(tmp_path / "out.txt", refuse)
    assert leftovers(tmp_path) == []


def test_unwritable_folder_as_reported_by_access(tmp_path, monkeypatch):
    """The same refusal where chmod cannot block (root): the folder reported unwritable."""
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(MLFFDError, match=f"cannot write in {tmp_path}: permission denied"):
        safe_write(tmp_path / "new" / "out.txt", write_text("x"))
    assert list(tmp_path.iterdir()) == []
