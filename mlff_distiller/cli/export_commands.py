"""``mlffd export``: a student checkpoint as a verified TorchScript file for an MD engine."""

import argparse
from pathlib import Path

from . import LazyChoices

ORDER = 30

ENGINES = LazyChoices("..export", "EXPORTERS")


def register(subparsers) -> None:
    export = subparsers.add_parser(
        "export",
        help="export a checkpoint as TorchScript for OpenMM or LAMMPS (verified, metadata embedded)",
        description=(
            "Export a student checkpoint as a TorchScript file for an MD engine. The file carries its "
            "metadata (see 'mlffd info') and is reloaded and checked against the student before this "
            "command succeeds. OpenMM files take positions in nm and return the energy (kJ/mol) and the "
            "forces (kJ/mol/nm): call setOutputsForces(True) on the TorchForce. With --topology they are "
            "self-contained: a plain OpenMM script can load them with TorchForce('OUT.pt')."
        ),
    )
    export.add_argument("checkpoint", type=Path, help="student checkpoint (.ckpt)")
    export.add_argument("--engine", required=True, choices=ENGINES, metavar="ENGINE", help="target MD engine: %(choices)s")
    export.add_argument(
        "--topology",
        type=Path,
        metavar="FILE",
        help="structure file (PDB, XYZ, SDF) whose atoms are baked in (OpenMM: a self-contained file for that system)",
    )
    export.add_argument(
        "--precision", choices=["float32", "float64"], default="float64", help="dtype the model computes in (default: float64)"
    )
    export.add_argument(
        "--periodic",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="accept periodic boxes (default: yes); --no-periodic makes the model refuse them",
    )
    export.add_argument(
        "--kernel",
        choices=["portable", "fused"],
        default="portable",
        help=(
            "OpenMM only. portable (default): TorchScript operations, the file loads in any OpenMM script. "
            "fused: on CPU the student runs as one compiled C++ kernel, several times faster on small "
            "molecules; a plain script must call mlff_distiller.load_kernel() before TorchForce "
            "(mlffd md does it)"
        ),
    )
    export.add_argument("-o", "--output", required=True, type=Path, metavar="OUT.pt", help="TorchScript file to write (.pt)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    export.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from ..errors import MLFFDError
    from ..export import EXPORTERS, read_metadata

    options = {"precision": args.precision, "periodic": args.periodic, "overwrite": args.overwrite}
    if args.topology is not None:
        options["topology"] = args.topology
    if args.kernel != "portable":
        if args.engine != "openmm":
            raise MLFFDError("--kernel fused applies to --engine openmm only")
        options["kernel"] = args.kernel
    path = EXPORTERS[args.engine](args.checkpoint, args.output, **options)
    metadata = read_metadata(path)
    system = f"{metadata['atoms']} atoms baked in" if metadata.get("atoms") else "species set at run time"
    kernel = f", {metadata['kernel']} kernel" if "kernel" in metadata else ""
    print(
        f"wrote {path}: {args.engine} model, {metadata['precision']}, cutoff {metadata['cutoff_angstrom']} Å, "
        f"{'periodic' if metadata['periodic'] else 'non-periodic'}, {system}{kernel}; verified against the checkpoint"
    )
    return 0
