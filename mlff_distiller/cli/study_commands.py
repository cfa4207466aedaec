"""``mlffd study``: the production study of the bundled students."""

import argparse
from pathlib import Path

from ..data import structure_names, student_names
from .arguments import distinct
from .run_options import add_run_options

ORDER = 1


def register(subparsers) -> None:
    study = subparsers.add_parser(
        "study",
        help="run the production study: every bundled student, Langevin warm-up and long NVE, validation, speed, comparison",
        description=(
            "For each bundled student (standard, tiny, ultra-tiny) on its systems (organic molecules; the "
            "water box for the water student): a Langevin warm-up at --temperature, NVE in OpenMM, validation "
            "against the teacher, the teacher's cost on the same system, and one comparison with a "
            "recommendation per model. Finished runs and reports are skipped, so re-running resumes an "
            "interrupted study."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    study.add_argument(
        "--systems",
        nargs="+",
        choices=structure_names(),
        metavar="NAME",
        help="bundled systems (default: every bundled molecule and the water box): %(choices)s",
    )
    study.add_argument(
        "--students",
        nargs="+",
        choices=student_names(),
        metavar="NAME",
        help="bundled students (default: all): %(choices)s",
    )
    add_run_options(study, "each production", "frames per run checked against the teacher")
    study.add_argument("--teacher", default="gfn2-xtb", help="teacher for validation and speed")
    study.add_argument(
        "--precision", default="double", choices=["single", "mixed", "double"], help="OpenMM/model precision"
    )
    study.add_argument("-o", "--output", type=Path, required=True, help="study folder (resumed when it exists)")
    study.add_argument("--quiet", action="store_true", help="no progress output")
    study.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import MLFFDError
    from ..study import default_cases, run_study

    cases = default_cases(distinct(args.systems, "--systems") if args.systems else None)
    if args.students:
        cases = [c for c in cases if c.student in distinct(args.students, "--students")]
    if not cases:  # water students run water boxes, organic students molecules
        raise MLFFDError(
            f"no case: the students {', '.join(args.students or student_names())} run none of the systems "
            f"{', '.join(args.systems or structure_names())} (water students run water boxes, organic ones molecules)"
        )
    study = run_study(
        args.output,
        cases,
        time_ps=args.time,
        timestep_fs=args.timestep,
        temperature_K=args.temperature,
        equilibrate_ps=args.equilibrate,
        frames=args.frames,
        teacher=args.teacher,
        precision=args.precision,
        platform=args.platform,
        progress=not args.quiet,
        reference_time_ps=args.reference_time,
        reference_budget_s=args.reference_budget,
    )
    for row in study["rows"]:
        print(
            f"{row['student']:>22s} on {row['system']:<10s} {row['speedup_over_teacher']:7.1f}x teacher  {row['recommendation']}"
        )
    print(f"study: {args.output / 'study.md'}")
    return 0
