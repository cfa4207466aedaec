"""What each MD engine adds to the student: OpenMM and ASE steps over the bare model, in one run.

The bare model is the very TorchScript module OpenMM's TorchForce runs (energy and forces,
no integrator). Targets: OpenMM step / bare <= 1.10; ASE step / OpenMM step >= 2 on aspirin.

    OMP_NUM_THREADS=1 python benchmarks/engine_overhead.py [--systems aspirin water-192] [--json out.json]
"""

import argparse
from pathlib import Path

from mlff_distiller.benchmark import SYSTEM_NAMES, BenchmarkPlan, run_plan
from mlff_distiller.benchmark.report import print_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=SYSTEM_NAMES,
        default=["aspirin", "water-192"],
        help="systems (default: aspirin water-192)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed blocks (default: 5)")
    parser.add_argument("--json", type=Path, help="also write the raw measurements here")
    args = parser.parse_args()
    plan = BenchmarkPlan(systems=args.systems, engines=["bare", "openmm", "ase"], rounds=args.rounds)
    result = run_plan(plan)
    print_result(result, args.json)


if __name__ == "__main__":
    main()
