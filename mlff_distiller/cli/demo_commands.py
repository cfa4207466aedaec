"""``mlffd demo``: the main job on bundled defaults."""

import argparse
from pathlib import Path

from ..data import structure_names, student_names
from .run_options import add_run_options

ORDER = 0


def register(subparsers) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run the demo: bundled student, Langevin warm-up then OpenMM NVE, validation against the teacher, a report",
        description=(
            "Load a bundled student (default: organic-standard), build a bundled system (default: aspirin), "
            "warm it up with Langevin dynamics at --temperature (--equilibrate), then run NVE in OpenMM on the "
            "best available platform, validate the trajectory against GFN2-xTB on sampled frames, write the "
            "report (HTML with plots, Markdown, JSON) and print the verdict."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    demo.add_argument("--system", default="aspirin", choices=structure_names(), help="bundled structure")
    demo.add_argument("--student", default="organic-standard", choices=student_names(), help="bundled student")
    add_run_options(demo, "the production", "frames checked against the teacher")
    demo.add_argument(
        "--precision", default="mixed", choices=["single", "mixed", "double"], help="OpenMM/model precision"
    )
    demo.add_argument("-o", "--output", type=Path, help="output folder (default: a new demo-output/<date-time>)")
    demo.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo, summary_lines

    result = run_demo(
        output=args.output,
        system=args.system,
        student=args.student,
        time_ps=args.time,
        timestep_fs=args.timestep,
        temperature_K=args.temperature,
        equilibrate_ps=args.equilibrate,
        frames=args.frames,
        platform=args.platform,
        precision=args.precision,
        overwrite=args.overwrite,
        progress=not args.quiet,
        reference_time_ps=args.reference_time,
        reference_budget_s=args.reference_budget,
    )
    print("\n".join(summary_lines(result)))
    return 0 if result.md.completed else 1
