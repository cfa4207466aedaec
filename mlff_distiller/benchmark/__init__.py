"""Benchmarks: students in OpenMM, LAMMPS, ASE and ``mlffd md`` against their teacher and SevenNet-0, at one
or more thread counts, with the fused kernel's GFLOP/s against the machine's peak, measured in one run.

>>> from mlff_distiller.benchmark import QUICK_PLAN, run_plan, write_report
>>> result = run_plan(QUICK_PLAN)
>>> write_report(result, "benchmarks.md", "img", "mlffd bench --quick -o benchmarks.md")
"""

from .flops import StepFlops, bound_summary, measure_peak_gflops, profile_kernel, step_flops
from .machine import machine_info
from .report import write_report
from .reporting import md_advance
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
    "StepFlops",
    "TargetCheck",
    "benchmark_system",
    "bound_summary",
    "check_targets",
    "machine_info",
    "md_advance",
    "measure_peak_gflops",
    "profile_kernel",
    "run_plan",
    "step_flops",
    "write_report",
]
