"""Cost per atom from 768 to 24,576 atoms (replicated water boxes), in one run: is it linear?

OpenMM MD steps and the bare model for one student size, optionally LAMMPS on 1 and 2 MPI ranks.
Targets: µs/atom/step within 1.5x from 1,000 to 16,000 atoms; LAMMPS 2 ranks >= 1.7x over 1 rank
from 4,000 atoms. Large systems are skipped (with the reason) beyond the time budget or memory limit.

    OMP_NUM_THREADS=1 python benchmarks/scaling.py [--size ultra-tiny] [--lammps] [--json out.json]
"""

import argparse
from pathlib import Path

from mlff_distiller.benchmark import BenchmarkPlan, run_plan
from mlff_distiller.benchmark.report import print_result
from mlff_distiller.benchmark.systems import WATER_REPEATS
from mlff_distiller.models import PRESETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--size", choices=list(PRESETS), default="ultra-tiny", help="student size (default: ultra-tiny)"
    )
    parser.add_argument("--lammps", action="store_true", help="also run LAMMPS on 1 and 2 ranks")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds per contender and system (default: 300)")
    parser.add_argument("--memory-limit", type=float, default=12.0, help="GB a student may use (default: 12)")
    parser.add_argument("--json", type=Path, help="also write the raw measurements here")
    args = parser.parse_args()
    plan = BenchmarkPlan(
        systems=[f"water-{n}" for n in WATER_REPEATS if n >= 768],
        sizes=[args.size],
        engines=["bare", "openmm"] + (["lammps"] if args.lammps else []),
        rounds=2,
        budget_seconds=args.budget,
        memory_limit_gb=args.memory_limit,
    )
    result = run_plan(plan)
    print_result(result, args.json)


if __name__ == "__main__":
    main()
