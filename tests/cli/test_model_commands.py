"""``mlffd --help``, ``mlffd new`` and ``mlffd info`` through the real console script."""

import json
import os
import subprocess
import sys
from pathlib import Path

MLFFD = str(Path(sys.executable).parent / "mlffd")


def run(*args, check=True):
    result = subprocess.run([MLFFD, *map(str, args)], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_help_lists_the_commands():
    out = run("--help").stdout
    for command in ("new", "info"):
        assert command in out
    assert "exit codes" in out


def test_new_then_info(tmp_path):
    path = tmp_path / "ultra.ckpt"
    assert "parameters" in run("new", "--size", "ultra-tiny", "-o", path).stdout
    data = json.loads(run("info", path, "--json").stdout)
    assert data["kind"] == "checkpoint"
    assert data["parameters"] == 21143
    assert data["elements"][:4] == ["H", "C", "N", "O"]


def test_refuses_to_overwrite(tmp_path):
    path = tmp_path / "s.ckpt"
    run("new", "--size", "ultra-tiny", "-o", path)
    before = path.read_bytes()
    result = run("new", "--size", "ultra-tiny", "--seed", "3", "-o", path, check=False)
    assert result.returncode == 2
    assert "--overwrite" in result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_bytes() == before


def test_info_on_garbage_is_one_line(tmp_path):
    path = tmp_path / "junk.ckpt"
    path.write_bytes(b"\x00" * 100)
    result = run("info", path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "Traceback" not in result.stderr
