"""Students against their teacher, per MD step, in one run: aspirin and the 192-atom water box.

Each student size runs NVE in OpenMM and in ASE (StudentCalculator); the teachers (GFN2-xTB, and
SevenNet-0 when installed) drive ASE's VelocityVerlet. Targets: standard >= 50x GFN2-xTB on the
water box, ultra-tiny >= 10x on aspirin.

    OMP_NUM_THREADS=1 python benchmarks/teacher_speedup.py [--json out.json]
"""

import argparse
from pathlib import Path

from mlff_distiller.benchmark import BenchmarkPlan, run_plan
from mlff_distiller.benchmark.report import print_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--teacher-budget", type=float, default=600.0, help="seconds a teacher may spend per system (default: 600)"
    )
    parser.add_argument("--json", type=Path, help="also write the raw measurements here")
    args = parser.parse_args()
    plan = BenchmarkPlan(
        systems=["aspirin", "water-192"],
        engines=["openmm", "ase", "teacher"],
        teacher_budget_seconds=args.teacher_budget,
    )
    result = run_plan(plan)
    print_result(result, args.json)


if __name__ == "__main__":
    main()
