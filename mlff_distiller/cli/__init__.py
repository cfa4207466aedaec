"""The ``mlffd`` command line: a thin layer over the package's API.

Each command lives in its own module in this package, exposing ``ORDER`` (an int:
where ``mlffd --help`` lists it) and ``register(subparsers)``, which adds sub-parsers
whose ``func`` default takes the parsed arguments and returns an exit code. Modules
are discovered, so adding a command means adding a module.
"""

import argparse
import importlib
import pkgutil
import sys
from types import ModuleType
from typing import List, Optional

from .. import __version__
from ..errors import MLFFDError

EPILOG = """\
units: lengths in Å, energies in eV, forces in eV/Å, time in ps (time steps in fs),
temperatures in K. Exported OpenMM models use nm and kJ/mol.
exit codes: 0 success, 1 a run stopped for a physical reason (explosion, failed audit)
or a failed verdict, 2 a user error (bad input, missing file), 130 interrupted.
"""


def command_modules() -> List[ModuleType]:
    """Every command module of this package, in ``ORDER``."""
    modules = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    ]
    return sorted((m for m in modules if hasattr(m, "register")), key=lambda m: getattr(m, "ORDER", 100))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``mlffd`` with ``argv``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MLFFDError as exc:
        print(f"mlffd: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlffd: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
