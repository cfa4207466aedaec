"""The ``mlffd`` command line: a thin layer over the package's API.

Each command lives in its own module in this package, exposing ``ORDER`` (an int:
where ``mlffd --help`` lists it) and ``register(subparsers)``, which adds sub-parsers
whose ``func`` default takes the parsed arguments and returns an exit code. Modules
are discovered, so adding a command means adding a module.

Building the parser must stay cheap (``mlffd --help`` builds every sub-parser): command
modules import torch, OpenMM and MDAnalysis inside their command functions, and options whose
allowed values live in such modules take a :class:`LazyChoices`. Arguments naming a structure or
a model take ``type=resolve_structure`` or ``type=resolve_model`` (:mod:`mlff_distiller.data`): a path,
a bundled name (``mlffd md aspirin --model organic-standard``) or, for structures, SMILES. Numbers take
the rules of :mod:`mlff_distiller.inputs` as their type (``type=TIME_PS``); usage errors are one line
(:class:`~.arguments.Parser`).
"""

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Iterator
from types import ModuleType

from .. import __version__
from ..errors import MLFFDError
from .arguments import Parser

EPILOG = """\
units: lengths in Å, energies in eV, forces in eV/Å, time in ps (time steps in fs),
temperatures in K. Exported OpenMM models use nm and kJ/mol.
exit codes: 0 success, 1 a run stopped for a physical reason (explosion, failed audit)
or a failed verdict, 2 a user error (bad input, missing file), 130 interrupted (SIGINT),
143 terminated (SIGTERM), 141 output pipe closed.
"""


class LazyChoices:
    """The allowed values of an option, read from a module attribute when first needed.

    argparse lists choices when it builds an option without a ``metavar``, so pass one, and
    write ``%(choices)s`` in the help to list the values there: the module is then imported only
    when an argument is checked or the command's help is printed.

    Parameters
    ----------
    module : str
        Module holding the values, relative to this package (e.g. ``"..models"``) or absolute.
    attribute : str
        Name of the values in ``module``: an iterable of str (a dict gives its keys, in order).
    """

    def __init__(self, module: str, attribute: str):
        self.module = module
        self.attribute = attribute
        self._values: list[str] | None = None

    def values(self) -> list[str]:
        """The allowed values (imports the module on the first call)."""
        if self._values is None:
            self._values = list(getattr(importlib.import_module(self.module, __name__), self.attribute))
        return self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self.values())

    def __contains__(self, value: object) -> bool:
        return value in self.values()

    def __len__(self) -> int:
        return len(self.values())


def command_modules() -> list[ModuleType]:
    """Every command module of this package, in ``ORDER``."""
    modules = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    ]
    return sorted((m for m in modules if hasattr(m, "register")), key=lambda m: getattr(m, "ORDER", 100))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mlffd",
        description="Distilled student force fields as production MD tools.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mlff-distiller {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in command_modules():
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``mlffd`` with ``argv``; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)  # file arguments are resolved here and raise MLFFDError
        if not hasattr(args, "func"):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except MLFFDError as exc:
        print(f"mlffd: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlffd: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of the output left (mlffd info ... | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
