"""``mlffd bench``: time students in OpenMM, LAMMPS and ASE against the teacher; write a Markdown report."""

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from ..inputs import COUNT, GIGABYTES, SECONDS, THREADS, TIMESTEP_FS
from . import LazyChoices

ORDER = 70

SYSTEMS = LazyChoices("..benchmark", "SYSTEM_NAMES")
SIZES = LazyChoices("..models", "PRESETS")
ENGINES = LazyChoices("..benchmark", "ENGINES")

DESCRIPTION = """\
Time MD steps of the students (each size) in OpenMM, LAMMPS (1 and 2 MPI ranks), ASE and mlffd md
(with and without its reporters), the bare model (forward + backward, with its achieved GFLOP/s
against the core's measured float32 matrix-product peak), and the teachers driving ASE MD
(GFN2-xTB, and SevenNet-0, a foundation MLIP, with the sevenn extra), on aspirin and water boxes
of 96 to 24,576 atoms, at one or more thread counts (--threads 1 2). Everything is measured in
one run, contenders interleaved, and reported as ms/step, ns/day at the time step and
µs/atom/step, with speed-ups over each teacher at the same thread count, the thread scaling, the
project's speed targets (ratios), the machine, threads and versions. Contenders that would
exceed the time budget or the memory limit on a system are recorded as skipped, with the reason.

Writes a Markdown report (-o) and two PNG plots (--images): speed-up over each teacher per system,
and µs/atom/step against atoms (log-log). A full run takes 30-60 minutes on 2 cores; --quick runs
a tiny configuration in seconds. Set OMP_NUM_THREADS=1 for comparable figures.
"""


def register(subparsers) -> None:
    bench = subparsers.add_parser(
        "bench",
        help="benchmark the students against the teacher in OpenMM, LAMMPS and ASE",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("benchmarks.md"),
        help="Markdown report to write (default: benchmarks.md)",
    )
    bench.add_argument("--images", type=Path, help="folder for the PNG plots (default: img/ next to the report)")
    bench.add_argument("--json", type=Path, help="also write the raw measurements as JSON")
    bench.add_argument("--from-json", type=Path, help="write the report from saved measurements instead of measuring")
    bench.add_argument("--overwrite", action="store_true", help="replace existing report, plots and JSON")
    bench.add_argument(
        "--quick",
        action="store_true",
        help="tiny configuration for tests and CI (ultra-tiny student, aspirin and 96 atoms, seconds)",
    )
    bench.add_argument(
        "--systems", nargs="+", choices=SYSTEMS, metavar="SYSTEM", help="systems (default: all): %(choices)s"
    )
    bench.add_argument(
        "--sizes", nargs="+", choices=SIZES, metavar="SIZE", help="student sizes (default: all): %(choices)s"
    )
    bench.add_argument(
        "--engines", nargs="+", choices=ENGINES, metavar="ENGINE", help="contenders (default: all): %(choices)s"
    )
    bench.add_argument(
        "--teachers", nargs="+", metavar="NAME", help="teachers for the 'teacher' engine (default: gfn2-xtb sevenn-0)"
    )
    bench.add_argument("--ranks", nargs="+", type=COUNT, metavar="N", help="LAMMPS MPI ranks (default: 1 2)")
    bench.add_argument(
        "--lammps-systems",
        nargs="+",
        choices=SYSTEMS,
        metavar="SYSTEM",
        help="systems LAMMPS runs on (default: every periodic one; each block starts a process)",
    )
    bench.add_argument(
        "--md-systems",
        nargs="+",
        choices=SYSTEMS,
        metavar="SYSTEM",
        help="systems the md and md-no-reporters engines (mlffd md with and without its reporters) run on "
        "(default: every one)",
    )
    bench.add_argument(
        "--platform",
        choices=["auto", "CPU", "CUDA", "Reference"],
        help="OpenMM platform (default: auto = CUDA if a GPU is present, else Reference)",
    )
    bench.add_argument(
        "--kernel",
        choices=["auto", "fused", "portable"],
        help="how the students compute on CPU in OpenMM, bare and ASE (default: auto = the fused C++ kernel where it compiles)",
    )
    bench.add_argument("--precision", choices=["float32", "float64"], help="student dtype (default: float32)")
    bench.add_argument("--timestep", type=TIMESTEP_FS, metavar="FS", help="MD time step in fs (default: 0.5)")
    bench.add_argument(
        "--threads",
        nargs="+",
        type=THREADS,
        metavar="N",
        help="thread counts of torch, the fused kernel, OpenMM's CPU platform and the teachers: every contender "
        "but LAMMPS is measured at each, in the same run (default: 1)",
    )
    bench.add_argument("--rounds", type=COUNT, help="interleaved timed blocks per contender (default: 3)")
    bench.add_argument(
        "--teacher-rounds",
        type=COUNT,
        metavar="N",
        help="timed blocks per teacher, the first N rounds (default: --rounds)",
    )
    bench.add_argument("--block", type=SECONDS, metavar="S", help="seconds per timed block (default: 2)")
    bench.add_argument(
        "--budget",
        type=SECONDS,
        metavar="S",
        help="seconds a contender may spend per system; beyond, it is skipped as too slow (default: 120)",
    )
    bench.add_argument("--teacher-budget", type=SECONDS, metavar="S", help="the same for teachers (default: 600)")
    bench.add_argument(
        "--memory-limit", type=GIGABYTES, metavar="GB", help="skip students estimated to need more memory (default: 10)"
    )
    bench.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    from ..benchmark import QUICK_PLAN, BenchmarkPlan, BenchmarkResult, run_plan, write_report
    from ..benchmark.report import SCALING_PLOT, SPEEDUP_PLOT
    from ..safe_write import check_output, safe_write_text

    images = args.images or args.output.parent / "img"
    outputs = [args.output, images / SPEEDUP_PLOT, images / SCALING_PLOT] + ([args.json] if args.json else [])
    for path in outputs:  # every refusal before the measurements
        check_output(path, inputs=[args.from_json], overwrite=args.overwrite)
    if args.from_json:
        result = BenchmarkResult.from_dict(json.loads(args.from_json.read_text()))
    else:
        settings = {
            "systems": args.systems,
            "sizes": args.sizes,
            "engines": args.engines,
            "teachers": args.teachers,
            "lammps_ranks": args.ranks,
            "lammps_systems": args.lammps_systems,
            "md_systems": args.md_systems,
            "platform": args.platform,
            "kernel": args.kernel,
            "precision": args.precision,
            "timestep_fs": args.timestep,
            "threads": args.threads,
            "rounds": args.rounds,
            "teacher_rounds": args.teacher_rounds,
            "block_seconds": args.block,
            "budget_seconds": args.budget,
            "teacher_budget_seconds": args.teacher_budget,
            "memory_limit_gb": args.memory_limit,
        }
        plan = replace(
            QUICK_PLAN if args.quick else BenchmarkPlan(), **{k: v for k, v in settings.items() if v is not None}
        )
        result = run_plan(plan)
        if args.json:
            safe_write_text(args.json, json.dumps(result.to_dict(), indent=2), overwrite=args.overwrite)
    arguments = [a for a in sys.argv[1:] if a != "--overwrite"] if sys.argv[0].endswith("mlffd") else ["bench"]
    command = f"OMP_NUM_THREADS={result.machine['omp_num_threads'] or 1} mlffd {shlex.join(arguments)} --overwrite"
    for path in write_report(result, args.output, images, command):
        print(f"wrote {path}")
    return 0
