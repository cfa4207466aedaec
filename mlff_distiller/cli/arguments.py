"""What ``mlffd`` options accept: its parser (one-line usage errors) and argument types beyond numbers.

Numbers take the rules of :mod:`mlff_distiller.inputs` as their ``type`` (``type=TIME_PS``), the
same rules the Python API applies to the same quantities. A value an option does not accept ends
the command with one line on standard error, naming the option, the value and what is accepted,
and exit code 2::

    mlffd md: error: argument --time: 'inf' is not accepted; give a finite time in ps greater than 0
"""

import argparse
import re

#: What a negative number looks like on the command line.
NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE)


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are one line (``PROG: error: MESSAGE``) and exit code 2.

    Sub-parsers take the class of their parent, so every ``mlffd`` command is one. Values such as
    ``-1e-3``, ``-inf`` and ``-nan`` are read as (negative) numbers, not as options, so that their
    option's rule names them (argparse itself only knows ``-3`` and ``-0.5``).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_NUMBER

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def element(text: str) -> str:
    """A chemical symbol (any case), as the periodic table writes it: ``"cl"`` -> ``"Cl"``."""
    from ..elements import atomic_number, symbol
    from ..errors import UnsupportedElementError

    try:
        return symbol(atomic_number(text))
    except UnsupportedElementError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def distinct(values: list, option: str) -> list:
    """``values`` of an option that takes several, refused (one line, exit code 2) when one is given twice."""
    from ..errors import MLFFDError

    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise MLFFDError(f"{option} lists {', '.join(map(str, repeated))} more than once")
    return values


def add_label_units(parser: argparse.ArgumentParser) -> None:
    """``--energy-unit`` and ``--force-unit``: the units of labelled files ASE reads (extended XYZ, ``.traj``,
    ASE databases); this package's HDF5 datasets are always eV and eV/Å."""
    parser.add_argument(
        "--energy-unit",
        metavar="UNIT",
        help="unit of the energies in extended XYZ, .traj or ASE database files: eV, meV, kcal/mol, kJ/mol, "
        "Hartree (default: eV, as ASE writes)",
    )
    parser.add_argument(
        "--force-unit",
        metavar="UNIT",
        help="unit of their forces: eV/Å, meV/Å, kcal/mol/Å, kJ/mol/Å, kJ/mol/nm, Hartree/Bohr (default: eV/Å)",
    )
