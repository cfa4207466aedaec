"""Options of the commands that run MD and validate it on bundled systems (``mlffd demo``, ``mlffd study``)."""

import argparse

from ..inputs import COUNT, SECONDS_OR_NONE, TEMPERATURE_K, TIME_PS, TIMESTEP_FS, WARMUP_PS
from ..reference_md import REFERENCE_BUDGET_S, REFERENCE_TIME_PS

#: OpenMM platforms a run may ask for; ``auto`` picks the fastest available.
PLATFORMS = ["auto", "CUDA", "OpenCL", "CPU", "Reference"]


def add_run_options(parser: argparse.ArgumentParser, production: str, frames: str) -> None:
    """Add the MD and validation options: time, warm-up, time step, temperature, frames, reference, platform.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser.
    production : str
        What one production is called in the help ("the production", "each production").
    frames : str
        Help text of ``--frames``.
    """
    parser.add_argument("--time", type=TIME_PS, default=10.0, help=f"NVE length of {production} in ps")
    parser.add_argument(
        "--equilibrate", type=WARMUP_PS, default=2.0, metavar="PS", help=f"Langevin warm-up before {production} in ps"
    )
    parser.add_argument("--timestep", type=TIMESTEP_FS, default=0.5, help="time step in fs")
    parser.add_argument("--temperature", type=TEMPERATURE_K, default=300.0, help="initial and warm-up temperature in K")
    parser.add_argument("--frames", type=COUNT, default=20, help=frames)
    parser.add_argument(
        "--reference-time",
        type=TIME_PS,
        default=REFERENCE_TIME_PS,
        metavar="PS",
        help="length in ps of the teacher MD (fixed steps and seed) whose bonds and angles a molecule's run must "
        f"stay inside (default: {REFERENCE_TIME_PS:g}; aspirin with GFN2-xTB: under a minute)",
    )
    parser.add_argument(
        "--reference-budget",
        type=SECONDS_OR_NONE,
        default=REFERENCE_BUDGET_S,
        metavar="S",
        help=f"wall-time safety cap in s of that teacher MD (default: {REFERENCE_BUDGET_S:g}); a reference it cuts "
        "short is not used and the criterion reads 'not measured' (0: no such comparison; boxes get none)",
    )
    parser.add_argument("--platform", default="auto", choices=PLATFORMS, help="OpenMM platform")
