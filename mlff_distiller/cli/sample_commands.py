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
#: Options (argparse destinations) that shape generated configurations, meaningless with ``--label``.
SAMPLING_ONLY = (
    "temperatures",
    "random_fraction",
    "normal_mode_fraction",
    "displacement",
    "timestep",
    "stride",
    "equilibration",
    "friction",
    "seed",
)
#: Frames generated when ``--frames`` is not given.
DEFAULT_FRAMES = 500


def register(subparsers) -> None:
    teachers = "; ".join(f"{name}: {text}" for name, text in TEACHERS.items())
    parser = subparsers.add_parser(
        "sample",
        help="generate configurations by teacher MD and displacements (or take yours: --label), and label them",
        description=(
            "Generate configurations of one structure by teacher-driven Langevin MD at each temperature, "
            "random Gaussian displacements of MD frames and samples of the teacher's harmonic (normal-mode) "
            "distribution, and label energies (eV), forces (eV/Å) and, for periodic boxes, stress (eV/Å³). "
            "With --label FILE, label every configuration of FILE instead of generating any. "
            "Frames are written as they are labelled; teacher calls are cached in OUTPUT.labels.sqlite, "
            "so an interrupted run continues with --resume without paying twice."
        ),
        epilog=f"teachers: {teachers}; or 'package.module:function' returning an ASE calculator.",
    )
    parser.add_argument(
        "structure",
        nargs="?",
        type=resolve_structure,
        help="structure file (XYZ, extended XYZ with cell, PDB, SDF), bundled structure or a SMILES string",
    )
    parser.add_argument(
        "--label",
        type=Path,
        metavar="FILE",
        help="label every configuration of FILE (extended XYZ, XYZ, .traj, ASE database, PDB, a dataset .h5) "
        "instead of generating configurations; frames keep their index in FILE",
    )
    parser.add_argument("-o", "--output", required=True, type=Path, help="dataset file to write (.h5)")
    parser.add_argument(
        "--teacher", default=DEFAULT_TEACHER, help=f"teacher that labels and drives the MD (default: {DEFAULT_TEACHER})"
    )
    parser.add_argument("--threads", type=COUNT, default=1, help="threads of the gfn2-xtb teacher (default: 1)")
    parser.add_argument(
        "--frames", type=COUNT, help="frames to label in total (default: 500; with --label, every frame of FILE)"
    )
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
    parser.set_defaults(func=run_sample, sampling_defaults={dest: parser.get_default(dest) for dest in SAMPLING_ONLY})


def run_sample(args: argparse.Namespace) -> int:
    from ..distillation import SamplingSettings, sample
    from ..errors import MLFFDError, OverwriteError
    from ..safe_write import check_output
    from ..structures import read_structure
    from ..teachers import load_teacher

    if (args.structure is None) == (args.label is None):
        raise MLFFDError("give a structure to sample, or --label FILE to label your own configurations (not both)")
    if args.output.exists() and not (args.resume or args.overwrite):
        raise OverwriteError(f"{args.output} exists; pass --resume to continue it or --overwrite to replace it")
    # same file as the structure, a folder, ...
    check_output(args.output, inputs=[args.structure, args.label], overwrite=True)
    options = {"threads": args.threads} if args.teacher == "gfn2-xtb" else {}
    if args.label is not None:
        return run_label(args, options)
    settings = SamplingSettings(
        frames=DEFAULT_FRAMES if args.frames is None else args.frames,
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
    teacher = load_teacher(args.teacher, cache=args.output.with_name(args.output.name + ".labels.sqlite"), **options)
    dataset = sample(
        structure, teacher, args.output, settings, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet
    )
    print(
        f"wrote {args.output}: {len(dataset)} frames of {structure.get_chemical_formula()} "
        f"labelled by {teacher.name} ({teacher.calls} new teacher calls)"
    )
    return 0


def run_label(args: argparse.Namespace, options: dict) -> int:
    """``mlffd sample --label FILE``: the teacher labels the user's configurations."""
    from ..distillation import label_configurations
    from ..errors import MLFFDError
    from ..teachers import load_teacher

    given = [dest for dest in SAMPLING_ONLY if getattr(args, dest) != args.sampling_defaults[dest]]
    if given:
        names = ", ".join("--" + dest.replace("_", "-") for dest in given)
        raise MLFFDError(f"{names} shape(s) generated configurations; with --label the file's configurations are used")
    teacher = load_teacher(args.teacher, cache=args.output.with_name(args.output.name + ".labels.sqlite"), **options)
    dataset = label_configurations(
        args.label,
        args.output,
        teacher,
        frames=args.frames,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(
        f"wrote {args.output}: {len(dataset)} frames of {args.label.name} labelled by {teacher.name} "
        f"({teacher.calls} new teacher calls)"
    )
    return 0
