"""The README's snippets cannot rot: Python blocks run, and every command line parses.

Python blocks (```python) are executed in order, in one namespace, in a temporary folder.
Shell blocks (```bash): each ``mlffd`` line is parsed by the real argument parser (so every
command and option the README shows exists and accepts the values shown), and each ``make``
line names a target of the Makefile. Running those commands for real is the job of the tests
of each command.
"""

import re
import shlex
from pathlib import Path

import pytest

from mlff_distiller.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(language: str):
    return [body for lang, body in BLOCK.findall(README) if lang == language]


def command_lines(body: str):
    for raw in body.splitlines():
        line = raw.split(" #")[0].strip()
        for part in line.split("&&"):
            words = part.split()
            while words and re.match(r"^[A-Z_]+=", words[0]):  # environment assignments
                words.pop(0)
            if words:
                yield " ".join(words)


def test_readme_has_the_two_commands_on_its_first_screen():
    first_screen = "\n".join(README.splitlines()[:25])
    assert "make demo" in first_screen and "make test" in first_screen


def test_python_snippets_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for body in blocks("python"):
        exec(compile(body, "README.md", "exec"), namespace)


@pytest.mark.parametrize("line", [line for body in blocks("bash") for line in command_lines(body) if line.split()[0] == "mlffd"])
def test_cli_lines_parse(line):
    args = build_parser().parse_args(shlex.split(line)[1:])
    assert hasattr(args, "func"), line


def test_make_lines_name_real_targets():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, re.M))
    for body in blocks("bash"):
        for line in command_lines(body):
            if line.startswith("make "):
                assert line.split()[1] in targets, line
