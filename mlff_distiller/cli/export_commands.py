"""``mlffd export``: a student checkpoint as a verified TorchScript file for an MD engine."""

import argparse
from pathlib import Path

from ..data import resolve_model, resolve_structure
from . import LazyChoices

ORDER = 30

ENGINES = LazyChoices("..export", "EXPORTERS")
#: ``--precision`` when not given: OpenMM's CPU and Reference platforms pass float64 positions and
#: integrate in double; LAMMPS runs float32 about four times faster on its example box.
DEFAULT_PRECISION = {"openmm": "float64", "lammps": "float32"}


def register(subparsers) -> None:
    export = subparsers.add_parser(
        "export",
        help="export a checkpoint as TorchScript for OpenMM or LAMMPS (verified, metadata embedded)",
        description=(
            "Export a student checkpoint as a TorchScript file for an MD engine. The file carries its "
            "metadata (see 'mlffd info') and is reloaded and checked against the student before this "
            "command succeeds, then the lines that load it are printed. OpenMM files take positions in nm "
            "and return the energy in kJ/mol; openmm-torch takes the forces by autograd, so TorchForce's "
            "defaults apply (--kernel fused files return (energy, forces) and need setOutputsForces(True)). "
            "With --topology they are self-contained: a plain OpenMM script loads them with TorchForce('OUT.pt')."
        ),
    )
    export.add_argument(
        "checkpoint", type=resolve_model, help="student checkpoint (.ckpt) or bundled student (e.g. organic-standard)"
    )
    export.add_argument(
        "--engine", required=True, choices=ENGINES, metavar="ENGINE", help="target MD engine: %(choices)s"
    )
    export.add_argument(
        "--topology",
        type=resolve_structure,
        metavar="FILE",
        help="structure file (PDB, XYZ, SDF), bundled structure or SMILES whose atoms are baked in (OpenMM: a self-contained file for that system)",
    )
    export.add_argument(
        "--precision",
        choices=["float32", "float64"],
        help="dtype the model computes in (default: float64 for openmm, float32 for lammps)",
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
    export.add_argument(
        "-o", "--output", required=True, type=Path, metavar="OUT.pt", help="TorchScript file to write (.pt)"
    )
    export.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    export.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from ..errors import MLFFDError
    from ..export import EXPORTERS, read_metadata
    from ..export.metadata import usage_lines

    options = {"precision": args.precision or DEFAULT_PRECISION[args.engine], "periodic": args.periodic}
    options["overwrite"] = args.overwrite
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
    print("to use it:\n" + "\n".join(f"    {line}" for line in usage_lines(metadata, path)))
    return 0
