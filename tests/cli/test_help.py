"""``mlffd --help`` through the console script, every command's help, and building the parser stays light."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlff_distiller.cli import LazyChoices, build_parser

MLFFD = str(Path(sys.executable).parent / "mlffd")
HEAVY = ("torch", "openmm", "MDAnalysis")


def _commands() -> list:
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(subparsers.choices)


def test_help_exits_zero():
    result = subprocess.run(
        [MLFFD, "--help"], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr
    assert "commands" in result.stdout


def test_building_the_parser_imports_no_heavy_module():
    probe = (
        "import sys\n"
        "from mlff_distiller.cli import build_parser\n"
        "build_parser()\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.split() == []


@pytest.mark.parametrize("command", _commands())
def test_command_help_exits_zero(command, mlffd):
    result = mlffd(command, "--help")
    assert result.code == 0
    assert command in result.out


def test_lazy_choices_are_the_package_values():
    from mlff_distiller.benchmark import ENGINES, SYSTEM_NAMES
    from mlff_distiller.export import EXPORTERS
    from mlff_distiller.models import PRESETS

    assert list(LazyChoices("..models", "PRESETS")) == list(PRESETS)
    assert list(LazyChoices("mlff_distiller.export", "EXPORTERS")) == list(EXPORTERS)
    assert list(LazyChoices("..benchmark", "SYSTEM_NAMES")) == list(SYSTEM_NAMES)
    assert "tiny" in LazyChoices("..models", "PRESETS") and len(LazyChoices("..benchmark", "ENGINES")) == len(ENGINES)


def test_a_lazy_choice_is_still_checked(mlffd):
    result = mlffd("new", "--size", "huge", "-o", "never-written.ckpt")
    assert result.code == 2
    assert "invalid choice: 'huge'" in result.err
