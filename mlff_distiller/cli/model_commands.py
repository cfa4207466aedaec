"""``mlffd new`` and ``mlffd info``: create students and describe model files."""

import argparse
import json
from pathlib import Path

from ..data import resolve_model
from ..inputs import CUTOFF_A, SEED
from . import LazyChoices
from .arguments import distinct, element

ORDER = 90

SIZES = LazyChoices("..models", "PRESETS")


def register(subparsers) -> None:
    new = subparsers.add_parser(
        "new",
        help="create a student with random weights (for tests, benchmarks, or to train later)",
        description="Create a student of a given size with random weights and save it as a checkpoint.",
    )
    new.add_argument(
        "--size",
        choices=SIZES,
        default="standard",
        metavar="SIZE",
        help="student size: %(choices)s (default: %(default)s)",
    )
    new.add_argument(
        "--elements",
        nargs="+",
        type=element,
        metavar="SYMBOL",
        help="supported elements (default: H C N O F P S Cl Br I)",
    )
    new.add_argument("--cutoff", type=CUTOFF_A, help="interaction range in Å (default: 5.0)")
    new.add_argument("--seed", type=SEED, default=0, help="random seed for the weights (default: 0)")
    new.add_argument("-o", "--output", required=True, type=Path, help="checkpoint file to write")
    new.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    new.set_defaults(func=run_new)

    info = subparsers.add_parser(
        "info",
        help="print what a checkpoint or exported model contains",
        description="Print the metadata of a student checkpoint or an exported TorchScript model.",
    )
    info.add_argument("file", type=resolve_model, help="checkpoint (.ckpt), bundled student or exported model (.pt)")
    info.add_argument("--json", action="store_true", help="print machine-readable JSON")
    info.set_defaults(func=run_info)


def run_new(args: argparse.Namespace) -> int:
    import torch

    from ..elements import numbers_from_symbols
    from ..models import Student, preset, read_checkpoint, save_checkpoint
    from ..safe_write import check_output, staged_file

    check_output(args.output, overwrite=args.overwrite)
    overrides = {}
    if args.elements:
        overrides["elements"] = numbers_from_symbols(distinct(args.elements, "--elements"))
    if args.cutoff is not None:
        overrides["cutoff"] = args.cutoff
    torch.manual_seed(args.seed)
    student = Student(preset(args.size, **overrides))
    provenance = {"origin": "random weights", "seed": args.seed, "size": args.size}
    with staged_file(args.output, overwrite=args.overwrite) as staged:
        read_checkpoint(
            save_checkpoint(student, staged, provenance=provenance)
        )  # renamed into place once it reads back
    print(f"wrote {args.output}: {args.size} student, {student.parameter_count():,} parameters, random weights")
    return 0


def describe(path: Path) -> dict:
    """Metadata of a checkpoint or exported model as a JSON-ready dict."""
    from ..elements import symbols
    from ..errors import CheckpointError
    from ..export import read_metadata  # exported models carry their metadata as extra files
    from ..export.metadata import usage_lines
    from ..models import read_checkpoint

    try:
        payload = read_checkpoint(path)
    except CheckpointError as exc:
        if "exported TorchScript" not in str(exc):
            raise
        metadata = read_metadata(path)
        return {"kind": "exported model", **metadata, "usage": usage_lines(metadata, path)}
    return {
        "kind": "checkpoint",
        "format_version": payload["format_version"],
        "parameters": payload.get("parameter_count"),
        "elements": symbols(payload["elements"]),
        "cutoff_angstrom": payload["cutoff"],
        "units": payload.get("units"),
        "architecture": payload["config"],
        "provenance": payload.get("provenance", {}),
    }


def run_info(args: argparse.Namespace) -> int:
    data = describe(args.file)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for key, value in data.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for sub, subvalue in value.items():
                print(f"  {sub}: {subvalue}")
        elif key == "usage":  # the lines that load the file, one per line
            print("usage:\n" + "\n".join(f"    {line}" for line in value))
        else:
            print(f"{key}: {value}")
    return 0
