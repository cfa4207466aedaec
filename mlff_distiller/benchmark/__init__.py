"""Benchmarks: students in OpenMM, LAMMPS and ASE against their teacher, measured in one run.

>>> from mlff_distiller.benchmark import QUICK_PLAN, run_plan, write_report
>>> result = run_plan(QUICK_PLAN)
>>> write_report(result, "benchmarks.md", "img", "mlffd bench --quick -o benchmarks.md")
"""

from .machine import machine_info
from .report import write_report
from .suite import ENGINES, QUICK_PLAN, BenchmarkPlan, BenchmarkResult, run_plan
from .systems import SYSTEM_NAMES, benchmark_system
from .targets import TargetCheck, check_targets
from .timing import Measurement

__all__ = [
    "ENGINES",
    "QUICK_PLAN",
    "SYSTEM_NAMES",
    "BenchmarkPlan",
    "BenchmarkResult",
    "Measurement",
    "TargetCheck",
    "benchmark_system",
    "check_targets",
    "machine_info",
    "run_plan",
    "write_report",
]
