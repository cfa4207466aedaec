"""How close the fused kernel comes to one core's peak: achieved GFLOP/s of a step, and where it goes.

For each student size on aspirin (the bundled organic student, in vacuum) and on a periodic box
of 1,536 water atoms (random weights), float32, one thread: the floating-point operations of an
energy-and-forces step (:func:`mlff_distiller.benchmark.flops.step_flops`, forward and reverse,
from the architecture and the edge count), the time of a call of the frozen module OpenMM runs
(:func:`mlff_distiller.benchmark.contenders.bare_model`), and the achieved GFLOP/s as a fraction
of the core's measured peak, a 1536-square float32 ``torch.mm`` on the same core in the same run
(measured before and after the systems; the first is the reference). Targets of issue 18:
standard on water-1536 >= 50 % of peak, on aspirin >= 35 %.

The breakdown of each step comes from the kernel's own timers (``torch.ops.mlffd.phase_seconds``):
call overhead (the module's unit and dtype conversions and the kernel's reading of its weights),
the kernel's neighbour search, the edges' geometry, the layers forward and the reverse pass; next
to it the project's TorchScript neighbour search (used for partly periodic cells) timed alone, and
the bytes the loops touch per step against the measured copy bandwidth
(:func:`~mlff_distiller.benchmark.flops.bound_summary`).

    python benchmarks/kernel_efficiency.py [--sizes standard tiny ultra-tiny] [--seconds 2]
"""

import argparse
import time

import torch

from mlff_distiller.benchmark import benchmark_system
from mlff_distiller.benchmark.contenders import benchmark_student
from mlff_distiller.benchmark.flops import (
    bound_summary,
    count_edges,
    measure_copy_bandwidth,
    measure_peak_gflops,
    profile_kernel,
)

#: Fraction of peak issue 18 asks of the standard student, by system.
TARGETS = {"aspirin": 0.35, "water-1536": 0.50}


def neighbour_search_seconds(student, atoms, seconds: float) -> float:
    """Fastest call of the student's own (TorchScript-able) neighbour search on ``atoms``, s."""
    positions = torch.tensor(atoms.positions, dtype=torch.float32)
    cell = torch.tensor(atoms.cell.array, dtype=torch.float32)
    pbc = torch.tensor(atoms.pbc)
    best, deadline = float("inf"), time.perf_counter() + seconds
    while best == float("inf") or time.perf_counter() < deadline:
        start = time.perf_counter()
        student.edges(positions, cell, pbc)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["standard", "tiny", "ultra-tiny"])
    parser.add_argument("--systems", nargs="+", default=["aspirin", "water-1536"])
    parser.add_argument("--seconds", type=float, default=2.0, help="timing per system and size (default 2)")
    args = parser.parse_args()

    peak, bandwidth = measure_peak_gflops(1), measure_copy_bandwidth(1)
    print(f"one thread: peak {peak:.1f} GFLOP/s (float32 torch.mm 1536^3), copy bandwidth {bandwidth:.1f} GB/s")
    print(f"{'system':<11} {'size':<11} {'atoms':>6} {'edges':>7} {'GFLOP':>7} {'ms':>8} {'GFLOP/s':>8} {'peak':>6}")
    summaries = []
    for name in args.systems:
        atoms = benchmark_system(name)
        for size in args.sizes:
            student = benchmark_student(size, torch.float32, molecule=name == "aspirin")
            profile = profile_kernel(student, atoms, 1, args.seconds, peak, bandwidth)
            target = TARGETS.get(name) if size == "standard" else None
            verdict = (
                ""
                if target is None
                else f"  target {target:.0%}: {'met' if profile.fraction_of_peak >= target else 'missed'}"
            )
            print(
                f"{name:<11} {size:<11} {len(atoms):>6} {count_edges(student, atoms):>7} "
                f"{profile.flops.total / 1e9:>7.3f} {profile.step_seconds * 1e3:>8.3f} "
                f"{profile.achieved_gflops:>8.1f} {profile.fraction_of_peak:>6.1%}{verdict}"
            )
            search = neighbour_search_seconds(student, atoms, min(args.seconds, 1.0))
            summaries.append(
                f"{name} {size}: {bound_summary(profile)}; the project's TorchScript neighbour search "
                f"alone {search * 1e3:.3g} ms ({search / profile.step_seconds:.0%} of the step)"
            )
    print(f"peak again at the end: {measure_peak_gflops(1):.1f} GFLOP/s")
    print("\nwhere the time goes")
    for line in summaries:
        print(line)


if __name__ == "__main__":
    main()
