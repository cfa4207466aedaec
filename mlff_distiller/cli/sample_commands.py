"""``mlffd sample``: generate and label training configurations with a teacher."""

import argparse
from pathlib import Path

from ..data import resolve_structure
from ..inputs import (
    COUNT,
    DISPLACEMENT_A,
    FRACTION,
    FRICTION_PER_FS,
    INTERVAL_STEPS,
    POSITIVE_TEMPERATURE_K,
    SEED,
    STEPS,
    TIMESTEP_FS,
)
from ..teachers import DEFAULT_TEACHER, TEACHERS

ORDER = 10


def register(subparsers) -> None:
    teachers = "; ".join(f"{name}: {text}" for name, text in TEACHERS.items())
    parser = subparsers.add_parser(
        "sample",
        help="generate configurations by teacher MD and displacements, and label them (HDF5 dataset)",
        description=(
            "Generate configurations of one structure by teacher-driven Langevin MD at each temperature, "
            "random Gaussian displacements of MD frames and samples of the teacher's harmonic (normal-mode) "
            "distribution, and label energies (eV), forces (eV/Å) and, for periodic boxes, stress (eV/Å³). "
            "Frames are written as they are labelled; teacher calls are cached in OUTPUT.labels.sqlite, "
            "so an interrupted run continues with --resume without paying twice."
        ),
        epilog=f"teachers: {teachers}; or 'package.module:function' returning an ASE calculator.",
    )
    parser.add_argument(
        "structure",
        type=resolve_structure,
        help="structure file (XYZ, extended XYZ with cell, PDB, SDF), bundled structure or a SMILES string",
    )
    parser.add_argument("-o", "--output", required=True, type=Path, help="dataset file to write (.h5)")
    parser.add_argument(
        "--teacher", default=DEFAULT_TEACHER, help=f"teacher that labels and drives the MD (default: {DEFAULT_TEACHER})"
    )
    parser.add_argument("--threads", type=COUNT, default=1, help="threads of the gfn2-xtb teacher (default: 1)")
    parser.add_argument("--frames", type=COUNT, default=500, help="frames to label in total (default: 500)")
    parser.add_argument(
        "--temperatures",
        type=POSITIVE_TEMPERATURE_K,
        nargs="+",
        default=[300.0, 600.0],
        metavar="K",
        help="MD temperatures in K, frames shared equally (default: 300 600)",
    )
    parser.add_argument(
        "--random-fraction",
        type=FRACTION,
        default=0.15,
        help="share of frames made by random displacements of MD frames (default: 0.15)",
    )
    parser.add_argument(
        "--normal-mode-fraction",
        type=FRACTION,
        default=0.2,
        help="share of frames drawn from the teacher's normal modes; molecules only (default: 0.2)",
    )
    parser.add_argument(
        "--displacement",
        type=DISPLACEMENT_A,
        default=0.02,
        help="random displacement standard deviation in Å (default: 0.02)",
    )
    parser.add_argument("--timestep", type=TIMESTEP_FS, default=0.5, help="MD time step in fs (default: 0.5)")
    parser.add_argument("--stride", type=INTERVAL_STEPS, default=10, help="MD steps between kept frames (default: 10)")
    parser.add_argument(
        "--equilibration", type=STEPS, default=100, help="MD steps discarded per temperature (default: 100)"
    )
    parser.add_argument(
        "--friction", type=FRICTION_PER_FS, default=0.01, help="Langevin friction in 1/fs (default: 0.01)"
    )
    parser.add_argument(
        "--seed", type=SEED, default=0, help="seed of the SMILES embedding, velocities and displacements (default: 0)"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue an interrupted run with the same settings")
    group.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_sample)


def run_sample(args: argparse.Namespace) -> int:
    from ..distillation import SamplingSettings, sample
    from ..errors import OverwriteError
    from ..safe_write import check_output
    from ..structures import read_structure
    from ..teachers import load_teacher

    if args.output.exists() and not (args.resume or args.overwrite):
        raise OverwriteError(f"{args.output} exists; pass --resume to continue it or --overwrite to replace it")
    check_output(args.output, inputs=[args.structure], overwrite=True)  # same file as the structure, a folder, ...
    settings = SamplingSettings(
        frames=args.frames,
        temperatures=list(args.temperatures),
        random_fraction=args.random_fraction,
        normal_mode_fraction=args.normal_mode_fraction,
        timestep_fs=args.timestep,
        stride=args.stride,
        equilibration_steps=args.equilibration,
        friction_per_fs=args.friction,
        displacement=args.displacement,
        seed=args.seed,
    )
    structure = read_structure(args.structure, seed=args.seed)
    settings.plan(bool(structure.pbc.any()))  # enough MD frames for the temperatures, before the teacher starts
    options = {"threads": args.threads} if args.teacher == "gfn2-xtb" else {}
    teacher = load_teacher(args.teacher, cache=args.output.with_name(args.output.name + ".labels.sqlite"), **options)
    dataset = sample(
        structure, teacher, args.output, settings, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet
    )
    print(
        f"wrote {args.output}: {len(dataset)} frames of {structure.get_chemical_formula()} "
        f"labelled by {teacher.name} ({teacher.calls} new teacher calls)"
    )
    return 0
