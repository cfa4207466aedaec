"""``mlffd refine``: active distillation, from the student's own MD back to the teacher and into training."""

import argparse
import shlex
import sys
from pathlib import Path

from ..data import resolve_model, resolve_structure
from ..inputs import (
    COUNT,
    FORCE_EV_PER_A,
    FRACTION,
    INTERVAL_STEPS,
    LEARNING_RATE,
    MINUTES,
    POSITIVE_TEMPERATURE_K,
    SEED,
    STEPS,
    TIME_PS,
    TIMESTEP_FS,
)
from ..teachers import DEFAULT_TEACHER
from . import LazyChoices

ORDER = 25

SIZES = LazyChoices("..models", "PRESETS")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "refine",
        help="active distillation: explore with the student's MD, label where a committee disagrees, retrain; in rounds",
        description=(
            "Refine a student round by round (DP-GEN's explore, select, label, retrain): Langevin MD of the student "
            "from each structure at each temperature; each frame scored by the largest per-atom force deviation of a "
            "committee of students (or, with --select teacher, the teacher's force error); frames inside the trust "
            "window labelled by the teacher (in parallel) and added to the data; every member fine-tuned from its "
            "weights. A few explored frames per round are labelled and never trained on: the error on fresh MD "
            "frames. Stops when the uncertain fraction and that error are below their targets, after --rounds, or "
            "at --time-limit. Writes DIR/student.ckpt, DIR/committee/, DIR/dataset.h5, DIR/heldout.h5, "
            "DIR/provenance.csv and the report DIR/refine.md, refine.json, refine.png. Details: docs/refine.md."
        ),
        epilog="example: mlffd refine ethanol --model student.ckpt --data seed.h5 --rounds 3 -o refined",
    )
    parser.add_argument(
        "structures",
        nargs="+",
        type=resolve_structure,
        metavar="STRUCTURE",
        help="starting structures: files, bundled structures or SMILES",
    )
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="DIR", help="run folder to write")
    parser.add_argument("--model", type=resolve_model, help="student checkpoint or bundled student to refine")
    parser.add_argument(
        "--data", nargs="+", type=Path, default=[], help="seed datasets (committee members train on them)"
    )
    parser.add_argument(
        "--teacher",
        default=DEFAULT_TEACHER,
        help=f"teacher: a built-in name or 'package.module:function' returning an ASE calculator (default: {DEFAULT_TEACHER})",
    )
    parser.add_argument("--rounds", type=COUNT, default=5, help="most rounds (default: 5)")
    parser.add_argument(
        "--temperatures",
        type=POSITIVE_TEMPERATURE_K,
        nargs="+",
        default=[300.0, 450.0, 600.0],
        metavar="K",
        help="exploration temperatures in K (default: 300 450 600)",
    )
    parser.add_argument(
        "--trajectories", type=COUNT, default=2, help="trajectories per structure and temperature (default: 2)"
    )
    parser.add_argument("--time", type=TIME_PS, default=2.0, help="length of each trajectory in ps (default: 2)")
    parser.add_argument("--timestep", type=TIMESTEP_FS, default=0.5, help="MD time step in fs (default: 0.5)")
    parser.add_argument(
        "--frame-interval", type=INTERVAL_STEPS, default=20, help="MD steps between candidate frames (default: 20)"
    )
    parser.add_argument(
        "--temperature-limit",
        type=POSITIVE_TEMPERATURE_K,
        default=5000.0,
        help="a trajectory stops above this temperature in K, keeping its frames (default: 5000)",
    )
    parser.add_argument(
        "--select",
        choices=["committee", "teacher"],
        default="committee",
        help="score frames by the committee's force deviation, or by the teacher's force error (default: committee)",
    )
    parser.add_argument(
        "--committee-size", type=COUNT, default=4, metavar="K", help="students in the committee (default: 4)"
    )
    parser.add_argument(
        "--trust",
        type=FORCE_EV_PER_A,
        nargs=2,
        default=[0.05, 0.5],
        metavar=("LO", "HI"),
        help="trust window in eV/Å: frames scoring in [LO, HI) are labelled (default: 0.05 0.5)",
    )
    parser.add_argument(
        "--per-trajectory", type=COUNT, default=5, help="most frames selected per trajectory and round (default: 5)"
    )
    parser.add_argument(
        "--spacing",
        type=COUNT,
        default=5,
        help="selected frames of a trajectory at least this many frames apart (default: 5)",
    )
    parser.add_argument(
        "--frames-per-round", type=COUNT, default=50, help="most frames labelled for training per round (default: 50)"
    )
    parser.add_argument(
        "--heldout",
        type=STEPS,
        default=10,
        help="explored frames per round labelled and never trained on (default: 10)",
    )
    parser.add_argument(
        "--workers", type=COUNT, help="teacher processes, one thread each (default: the cores available)"
    )
    parser.add_argument(
        "--size",
        choices=SIZES,
        default="tiny",
        metavar="SIZE",
        help="student size when training from --data alone: %(choices)s (default: %(default)s)",
    )
    parser.add_argument(
        "--train-minutes",
        type=MINUTES,
        help="wall-clock budget of each member's training per round in minutes (default: none, --epochs decide: "
        "reproducible, also across a resume)",
    )
    parser.add_argument("--epochs", type=COUNT, default=200, help="most epochs per member and round (default: 200)")
    parser.add_argument("--lr", type=LEARNING_RATE, default=5e-4, help="fine-tuning learning rate (default: 5e-4)")
    parser.add_argument("--batch-size", type=COUNT, default=16, help="frames per step (default: 16)")
    parser.add_argument(
        "--target-uncertain",
        type=FRACTION,
        default=0.05,
        help="stop when at most this share of explored frames scores at or above LO ... (default: 0.05)",
    )
    parser.add_argument(
        "--target-force-rmse",
        type=FORCE_EV_PER_A,
        default=0.05,
        help="... and the held-out force RMSE is at most this, in eV/Å (default: 0.05)",
    )
    parser.add_argument(
        "--time-limit", type=MINUTES, metavar="MINUTES", help="wall-clock budget of the run, checked per round"
    )
    parser.add_argument(
        "--seed", type=SEED, default=0, help="seed of exploration, committee and held-out draw (default: 0)"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue an interrupted run in DIR")
    group.add_argument("--overwrite", action="store_true", help="start again in DIR, replacing a previous run's files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar nor per-round lines")
    parser.set_defaults(func=run_refine)


def run_refine(args: argparse.Namespace) -> int:
    from ..distillation.refine_loop import refine
    from ..distillation.refine_settings import RefineSettings, available_cores
    from ..distillation.refine_signals import Interrupted

    settings = RefineSettings(
        teacher=args.teacher,
        rounds=args.rounds,
        temperatures=list(args.temperatures),
        trajectories=args.trajectories,
        time_ps=args.time,
        timestep_fs=args.timestep,
        frame_interval=args.frame_interval,
        temperature_limit=args.temperature_limit,
        select=args.select,
        committee_size=args.committee_size,
        trust_low=args.trust[0],
        trust_high=args.trust[1],
        per_trajectory=args.per_trajectory,
        spacing=args.spacing,
        frames_per_round=args.frames_per_round,
        heldout_per_round=args.heldout,
        workers=args.workers or available_cores(),
        size=args.size,
        train_minutes=args.train_minutes,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        target_uncertain=args.target_uncertain,
        target_force_rmse=args.target_force_rmse,
        time_limit_minutes=args.time_limit,
        seed=args.seed,
    )
    command = "mlffd " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[0].endswith("mlffd") else ""
    try:
        result = refine(
            args.structures,
            args.output,
            settings,
            model=args.model,
            data=args.data,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=not args.quiet,
            command=command,
        )
    except Interrupted as exc:
        print(
            f"mlffd refine: {exc}; finished stages are kept: continue with --resume -o {args.output}", file=sys.stderr
        )
        return exc.exit_code
    report = result.report
    print(
        f"wrote {result.student}: {len(report['rounds'])} round(s), stopped: {result.stop_reason}; held-out force RMSE "
        f"{report['initial_heldout_force_rmse']:.4f} -> {report['final_heldout_force_rmse']:.4f} eV/Å on "
        f"{report['heldout_frames']} frames; report {result.folder / 'refine.md'}"
    )
    return 0
