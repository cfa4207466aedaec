"""Corrupt and empty files on read: one clean line and exit code 2, with nothing printed above it.

MDAnalysis readers whose constructor fails on a corrupt file are collected later, and their
``__del__`` raises on the file handle they never opened: Python prints "Exception ignored in ...
Traceback ..." on stderr. validate opens files inside a guard that collects them silently.
"""

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest
from MDAnalysisTests.datafiles import DCD, PSF

from mlff_distiller.errors import MLFFDError, TrajectoryError
from mlff_distiller.validation import open_run
from mlff_distiller.validation.trajectory import half_built_readers_quiet

MLFFD = str(Path(sys.executable).parent / "mlffd")

#: Files whose reader fails half-way, as MDAnalysis's readers fail on them.
CORRUPT = {
    "broken.dcd": b"\x00\x01not a dcd file" * 10,
    "truncated.dcd": Path(DCD).read_bytes()[:150],
    "bad.xtc": b"\x00" * 100,
    "bad.trr": b"\x07" * 100,
    "bad.h5md": b"not HDF5 at all",
}


@pytest.fixture
def corrupt(tmp_path) -> dict[str, Path]:
    paths = {}
    for name, data in CORRUPT.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    return paths


def test_the_console_shows_one_line(corrupt, tmp_path):
    """Through the real console script: stderr is exactly the error line (no "Exception ignored" above it)."""
    for name in ("broken.dcd", "bad.xtc"):
        result = subprocess.run(
            [MLFFD, "validate", str(corrupt[name]), "--top", PSF, "--teacher", "none", "-o", str(tmp_path / "r")],
            capture_output=True,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            timeout=300,
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"mlffd: error: cannot read {corrupt[name]}")
        assert "Exception ignored" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("name", list(CORRUPT))
def test_no_unraisable_error_escapes(corrupt, name, monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    with pytest.raises(TrajectoryError, match=f"cannot read {corrupt[name]}"):
        open_run(corrupt[name], PSF)
    gc.collect()
    assert seen == []


def test_the_guard_passes_on_other_unraisable_errors(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)

    class Leaky:
        def __del__(self):
            raise RuntimeError("not from MDAnalysis")

    with half_built_readers_quiet():
        Leaky()
    assert len(seen) == 1 and isinstance(seen[0].exc_value, RuntimeError)
    assert sys.unraisablehook == seen.append  # restored


@pytest.mark.parametrize("name", ["empty.dcd", "empty.traj", "empty.xyz"])
def test_empty_files(tmp_path, name, mlffd):
    path = tmp_path / name
    path.write_bytes(b"")
    top = ["--top", PSF] if name.endswith(".dcd") else ["--frame-interval", "0.01"]
    result = mlffd("validate", path, *top, "--teacher", "none", "-o", tmp_path / "r")
    assert result.code == 2 and result.err.strip() == f"mlffd: error: {path} is empty (0 bytes)"


def test_emptied_files_of_a_run_directory(tmp_path, mlffd):
    from validation_systems import lj_fluid_run

    lj = lj_fluid_run(tmp_path / "lj", timestep_fs=5.0, steps=20, report_every=10)
    (tmp_path / "lj" / "empty.csv").write_bytes(b"")
    result = mlffd(
        "validate",
        lj["dcd"],
        "--top",
        lj["pdb"],
        "--energies",
        tmp_path / "lj" / "empty.csv",
        "--teacher",
        "none",
        "-o",
        tmp_path / "r",
    )
    assert result.code == 2 and result.err.strip().endswith("empty.csv is empty (0 bytes)")
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("trajectory.h5md", "topology.pdb"):
        (folder / name).write_text("stand-in")
    for name, text in (("energies.csv", ""), ("settings.json", "[1]")):
        (folder / name).write_text(text)
        result = mlffd("validate", folder, "--teacher", "none", "-o", tmp_path / "r")
        assert result.code == 2 and result.err.count("\n") == 1, result.err
        assert ("is empty (0 bytes): the run directory is damaged" if not text else "holds a JSON list") in result.err
        (folder / name).unlink()


def test_thresholds_that_are_no_file(tmp_path, mlffd):
    from mlff_distiller.validation import Thresholds

    with pytest.raises(MLFFDError, match="is a directory"):
        Thresholds.from_toml(tmp_path)


def test_frames_without_atoms_or_with_placeholder_atoms(tmp_path, mlffd):
    (tmp_path / "none.xyz").write_text("0\n\n0\n\n")
    (tmp_path / "x.xyz").write_text("2\n\nX 0 0 0\nH 0.74 0 0\n")
    for name, words in (("none.xyz", "hold no atoms"), ("x.xyz", "element X")):
        result = mlffd(
            "validate", tmp_path / name, "--frame-interval", "0.01", "--teacher", "none", "-o", tmp_path / "r"
        )
        assert result.code == 2 and words in result.err and result.err.count("\n") == 1
