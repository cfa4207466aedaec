"""What ``mlffd md``'s reporting costs: its run with and without reporters, in interleaved timed blocks.

With reporters the run writes what ``mlffd md`` writes at its default intervals (an H5MD frame and
a CSV row every 100 steps, a checkpoint every 1,000); without, the same dynamics writes nothing
(:func:`mlff_distiller.benchmark.reporting.md_advance`). Each block holds a whole number of
checkpoint intervals, so every block does the same reporting. The overhead is the ns/day lost,
1 - (ns/day with) / (ns/day without), from the median and from the fastest block of each, in
wall-clock and in CPU time (on a shared machine the fastest block is the least disturbed), and
the in-run share: the part of the run with reporters spent outside its integrator, which other
processes cannot tilt as they tilt two runs' times. Target: <= 3 % on aspirin with the bundled
organic-ultra-tiny (the cheapest step), float32, one thread.

    OMP_NUM_THREADS=1 python benchmarks/reporting_overhead.py [--rounds 11] [--block 2] [--json out.json]
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from mlff_distiller.benchmark.contenders import benchmark_student
from mlff_distiller.benchmark.reporting import md_advance
from mlff_distiller.benchmark.systems import SYSTEM_NAMES, benchmark_system
from mlff_distiller.benchmark.timing import steps_for

#: Steps between checkpoints at ``mlffd md``'s defaults: blocks are a multiple of it.
CHECKPOINT_INTERVAL = 1000


def ns_per_day(seconds_per_step: float, timestep_fs: float) -> float:
    return timestep_fs * 1e-6 * 86400.0 / seconds_per_step


class SteppingClock:
    """Wall-clock seconds a run's :class:`~mlff_distiller.plugin.openmm.phases.PhasedIntegrator` spends stepping.

    Wraps its ``step``: the rest of a run's time is its reporting, measured inside the same blocks.
    """

    def __init__(self, phases):
        self.seconds = 0.0
        self.step = phases.step
        phases.step = self

    def __call__(self, start: int, count: int) -> None:
        begin = time.perf_counter()
        self.step(start, count)
        self.seconds += time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", choices=SYSTEM_NAMES, default="aspirin", help="system (default: aspirin)")
    parser.add_argument("--size", default="ultra-tiny", help="bundled organic student size (default: ultra-tiny)")
    parser.add_argument("--timestep", type=float, default=0.5, help="time step in fs (default: 0.5)")
    parser.add_argument("--threads", type=int, default=1, help="threads of the fused kernel (default: 1)")
    parser.add_argument("--rounds", type=int, default=11, help="interleaved pairs of timed blocks (default: 11)")
    parser.add_argument("--block", type=float, default=2.0, help="seconds per timed block (default: 2)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    student = benchmark_student(args.size, torch.float32, molecule=args.system == "aspirin")
    atoms = benchmark_system(args.system)
    with tempfile.TemporaryDirectory() as folder:
        advances = {
            reporters: md_advance(student, atoms, args.timestep, Path(folder) / str(reporters), args.threads, reporters)
            for reporters in (True, False)
        }
        for advance in advances.values():  # warm-up: TorchScript optimises on its first calls
            advance(CHECKPOINT_INTERVAL)
        integration = SteppingClock(advances[True].run.phases)
        seconds = advances[False](CHECKPOINT_INTERVAL) / CHECKPOINT_INTERVAL
        blocks = max(1, steps_for(seconds, args.block, 10**7) // CHECKPOINT_INTERVAL)
        steps = blocks * CHECKPOINT_INTERVAL
        wall: dict[bool, list[float]] = {True: [], False: []}
        cpu: dict[bool, list[float]] = {True: [], False: []}
        for round_ in range(args.rounds):
            for reporters in (True, False) if round_ % 2 == 0 else (False, True):
                begin = time.process_time()
                wall[reporters].append(advances[reporters](steps) / steps)
                cpu[reporters].append((time.process_time() - begin) / steps)
        reporting_share = 1.0 - integration.seconds / (sum(wall[True]) * steps)
    figures = {
        "system": args.system,
        "atoms": len(atoms),
        "student": f"organic-{args.size}",
        "dtype": "float32",
        "threads": args.threads,
        "timestep_fs": args.timestep,
        "steps_per_block": steps,
        "rounds": args.rounds,
    }
    print(
        f"{args.system} ({len(atoms)} atoms), organic-{args.size} float32, {args.threads} thread(s), "
        f"{args.rounds} interleaved rounds of {steps} steps"
    )
    for clock, times in (("wall", wall), ("cpu", cpu)):
        for statistic, reduce in (("median", statistics.median), ("min", min)):
            with_reporters, without = reduce(times[True]), reduce(times[False])
            key = f"{clock}_{statistic}"
            figures[key] = {
                "ms_per_step_with_reporters": 1e3 * with_reporters,
                "ms_per_step_without_reporters": 1e3 * without,
                "ns_per_day_with_reporters": ns_per_day(with_reporters, args.timestep),
                "ns_per_day_without_reporters": ns_per_day(without, args.timestep),
                "overhead_percent": 100.0 * (1.0 - without / with_reporters),
            }
            print(
                f"  {clock:4s} {statistic:6s}: {figures[key]['ns_per_day_with_reporters']:8.3f} ns/day with reporters, "
                f"{figures[key]['ns_per_day_without_reporters']:8.3f} without: "
                f"overhead {figures[key]['overhead_percent']:5.2f} % of ns/day (target <= 3 %)"
            )
    figures["in_run_reporting_percent"] = 100.0 * reporting_share
    print(
        f"  in-run    : {figures['in_run_reporting_percent']:5.2f} % of the run with reporters is spent outside its "
        "integrator (frames, files, checks)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
