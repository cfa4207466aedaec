"""Every Python block of docs/openmm.md runs as written, each in its own process, in a folder that
holds what a clone's root holds (the package and its bundled data) and the files the document's
``mlffd export`` block writes there first."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mlff_distiller.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "docs" / "openmm.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
BLOCKS = [text for language, text in BLOCK.findall(DOCUMENT.read_text()) if language == "python"]


@pytest.fixture(scope="module")
def clone_root(tmp_path_factory):
    """A folder with the package (linked) in which the document's export commands have run."""
    folder = tmp_path_factory.mktemp("clone")
    (folder / "mlff_distiller").symlink_to(ROOT / "mlff_distiller")
    exports = next(text for language, text in BLOCK.findall(DOCUMENT.read_text()) if "mlffd export" in text)
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        for line in exports.splitlines():
            words = shlex.split(line, comments=True)
            if words[:2] in (["mlffd", "export"], ["mlffd", "info"]):
                assert main(words[1:]) == 0, line
    finally:
        os.chdir(cwd)
    return folder


def test_the_document_has_python_blocks():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_python_block_runs_as_written(number, clone_root):
    result = subprocess.run(
        [sys.executable, "-c", BLOCKS[number]],
        cwd=clone_root,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert result.returncode == 0, (
        f"docs/openmm.md python block {number + 1}:\n{BLOCKS[number]}\n{result.stderr[-3000:]}"
    )
