"""Thread scaling of the fused kernel: time per call at 1 and 2 threads (or others), in one run.

The standard student on aspirin (bundled organic-standard, 21 atoms, in vacuum) and on a periodic
box of 1,536 water atoms (bundled water-standard, water-32 repeated 2 x 2 x 4), float64, through
the scripted ``FusedStudentForces`` that ASE and OpenMM call. Targets on a 2-core machine:
2 threads over 1 >= 1.3x on aspirin, >= 1.7x on water-1536.

Blocks of calls (each at least ``--block`` seconds) alternate between the thread counts for
``--rounds`` rounds, and each count's best block is reported: wall time per call, and the process's
CPU time per call (all threads). Other processes on the same cores slow the threaded runs most (a
block waits for its slowest thread): the load average is printed before and after; compare ratios
only from a quiet machine. On a busy one, the last column estimates the ratio the threads would
give alone: CPU time of the first count over that of the last spread evenly over its threads
(time a thread spends waiting for a partner that has no core counts as CPU only while it spins).

    python benchmarks/threads.py [--threads 1 2] [--rounds 5] [--block 0.5] [--dtype float64]
"""

import argparse
import os
import time

import torch

import numpy as np
from ase.io import read

from mlff_distiller.data import bundled_structure, bundled_student
from mlff_distiller.models import FusedStudentForces, load_checkpoint

#: (name, student, structure, repeats, target of 2 threads over 1)
SYSTEMS = [("aspirin", "organic-standard", "aspirin", (1, 1, 1), 1.3), ("water-1536", "water-standard", "water-32", (2, 2, 4), 1.7)]  # fmt: skip


def module_and_inputs(student_name: str, structure: str, repeats: tuple, dtype: torch.dtype):
    """The scripted fused module of a bundled student and its inputs (positions Å, species, cell Å, pbc)."""
    student = load_checkpoint(bundled_student(student_name), dtype).eval().requires_grad_(False)
    atoms = read(bundled_structure(structure)).repeat(repeats)
    module = torch.jit.script(FusedStudentForces(student, threads=1).eval())
    inputs = (
        torch.tensor(atoms.positions, dtype=dtype),
        student.species(atoms.numbers),
        torch.tensor(np.asarray(atoms.cell), dtype=dtype),
        torch.tensor(atoms.pbc),
    )
    return module, inputs, len(atoms)


def time_block(module, inputs, seconds: float) -> tuple[float, float]:
    """Wall and process CPU time per call (s) over calls lasting at least ``seconds``."""
    calls, wall, cpu = 0, time.perf_counter(), time.process_time()
    while calls == 0 or time.perf_counter() - wall < seconds:
        module(*inputs)
        calls += 1
    return (time.perf_counter() - wall) / calls, (time.process_time() - cpu) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default: 1 2)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved blocks per count (default: 5)")
    parser.add_argument("--block", type=float, default=0.5, help="least seconds per block (default: 0.5)")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    args = parser.parse_args()
    torch.set_num_threads(1)  # torch's own operations around the kernel: a few small tensors
    dtype = getattr(torch, args.dtype)
    print(f"cores available: {len(os.sched_getaffinity(0))}; load average before: {os.getloadavg()[0]:.1f}")
    header = f"{'system':<11} {'atoms':>5} {'student':<17}"
    header += "".join(f" {f'{t} thr ms (cpu)':>17}" for t in args.threads)
    header += f" {f'{args.threads[0]}/{args.threads[-1]}':>6} {'target':>7} {'if alone':>8}"
    print(header)
    for name, student_name, structure, repeats, target in SYSTEMS:
        module, inputs, atoms = module_and_inputs(student_name, structure, repeats, dtype)
        module(*inputs)  # buffers sized, workers started
        best = {t: (float("inf"), float("inf")) for t in args.threads}
        for _ in range(args.rounds):
            for threads in args.threads:
                module.set_threads(threads)
                best[threads] = min(best[threads], time_block(module, inputs, args.block))
        line = f"{name:<11} {atoms:>5} {student_name:<17}"
        line += "".join(f" {best[t][0] * 1e3:>8.2f} ({best[t][1] * 1e3:>6.2f})" for t in args.threads)
        first, last = args.threads[0], args.threads[-1]
        ratio = best[first][0] / best[last][0]
        alone = (best[first][1] / first) / (best[last][1] / last)
        print(line + f" {ratio:>5.2f}x {f'>={target}x':>7} {alone:>7.2f}x", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f} (above 0 means other processes shared the cores)")


if __name__ == "__main__":
    main()
