"""``mlffd new`` and ``mlffd info``: a checkpoint with random weights, and what a file contains."""

import json


def test_new_then_info(tmp_path, mlffd):
    path = tmp_path / "ultra.ckpt"
    assert "parameters" in mlffd("new", "--size", "ultra-tiny", "-o", path).out
    data = json.loads(mlffd("info", path, "--json").out)
    assert data["kind"] == "checkpoint"
    assert data["parameters"] == 21143
    assert data["elements"][:4] == ["H", "C", "N", "O"]


def test_refuses_to_overwrite(tmp_path, mlffd):
    path = tmp_path / "s.ckpt"
    assert mlffd("new", "--size", "ultra-tiny", "-o", path).code == 0
    before = path.read_bytes()
    result = mlffd("new", "--size", "ultra-tiny", "--seed", "3", "-o", path)
    assert result.code == 2
    assert "--overwrite" in result.err
    assert "Traceback" not in result.err
    assert path.read_bytes() == before


def test_info_on_garbage_is_one_line(tmp_path, mlffd):
    path = tmp_path / "junk.ckpt"
    path.write_bytes(b"\x00" * 100)
    result = mlffd("info", path)
    assert result.code == 2
    assert result.err.strip().count("\n") == 0
    assert "Traceback" not in result.err
