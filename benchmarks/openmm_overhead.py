"""OpenMM's step time with a student TorchForce over the bare TorchScript energy + forces call.

Both are timed in one run, interleaved, on the same system and thread count, for aspirin
(from SMILES) and a periodic box of water. The ratio is what OpenMM adds on top of the
model (integration, copies between OpenMM and PyTorch); the target is at most 1.10. The
platform is the one ``mlffd md`` would pick (Reference without a GPU) unless ``--platform``
says otherwise; the module is the one it would build (the fused kernel where it compiles).

    OMP_NUM_THREADS=1 python benchmarks/openmm_overhead.py [--model student.ckpt] [--size standard] [--platform CPU]
        [--kernel portable] [--waters-per-side 8]
"""

import argparse
import os
import statistics
import time

import torch

import numpy as np
import openmm
from ase import Atoms
from openmm import unit

from mlff_distiller.models import Student, load_checkpoint, preset
from mlff_distiller.plugin.openmm import (
    OpenMMStructure,
    build_system,
    load_force_model,
    select_platform,
    structure_to_openmm,
)
from mlff_distiller.plugin.openmm.md import ns_per_day

TIMESTEP_FS = 0.5


def water_box(per_side: int, seed: int = 0) -> Atoms:
    """``per_side**3`` randomly oriented water molecules on a grid at about 1 g/cm³ (Å)."""
    rng = np.random.default_rng(seed)
    molecule = np.array([[0.0, 0.0, 0.0], [0.9572, 0.0, 0.0], [-0.2400, 0.9266, 0.0]])
    spacing = 29.9 ** (1 / 3)  # Å per molecule at 1 g/cm³
    positions = []
    for index in np.ndindex(per_side, per_side, per_side):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        positions.append(molecule @ q.T + (np.array(index) + 0.5) * spacing)
    side = per_side * spacing
    return Atoms("OH2" * per_side**3, positions=np.concatenate(positions), cell=[side] * 3, pbc=True)


def time_bare(module, positions_nm: torch.Tensor, box_nm, repeats: int) -> float:
    """Seconds per energy + forces call of the scripted OpenMM-target module.

    A module that returns the energy alone gets its forces by autograd, as openmm-torch takes them.
    """
    positions_nm = positions_nm.detach().requires_grad_(True)
    start = time.perf_counter()
    for _ in range(repeats):
        output = module(positions_nm) if box_nm is None else module(positions_nm, box_nm)
        if isinstance(output, torch.Tensor):
            torch.autograd.grad(output, positions_nm)
    return (time.perf_counter() - start) / repeats


def time_openmm(context: openmm.Context, steps: int) -> float:
    """Seconds per MD step (Verlet)."""
    integrator = context.getIntegrator()
    start = time.perf_counter()
    integrator.step(steps)
    context.getState(getEnergy=False)  # make sure the steps finished
    return (time.perf_counter() - start) / steps


def benchmark(
    name: str, structure: OpenMMStructure, student: Student, steps: int, rounds: int, platform_name: str, kernel: str
) -> None:
    force_model = load_force_model(student, student.network.energy_scale.dtype, kernel)
    system = build_system(structure, force_model)
    module = force_model.module  # the very module the TorchForce runs (species set by build_system)
    platform, properties = select_platform(platform_name, model_only=True)
    context = openmm.Context(system, openmm.VerletIntegrator(TIMESTEP_FS * unit.femtoseconds), platform, properties)
    context.setPositions(structure.positions)
    context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    positions = torch.tensor(structure.positions, dtype=torch.float64)
    box = structure.topology.getPeriodicBoxVectors()
    box_nm = None if box is None else torch.tensor(np.array(box.value_in_unit(unit.nanometer)), dtype=torch.float64)
    time_bare(module, positions, box_nm, 5)  # warm-up (TorchScript profiling runs)
    time_openmm(context, 5)
    bare, md = [], []
    for _ in range(rounds):
        bare.append(time_bare(module, positions, box_nm, steps))
        md.append(time_openmm(context, steps))
    bare_s, md_s = statistics.median(bare), statistics.median(md)
    print(
        f"{name:>10}: {structure.positions.shape[0]:4d} atoms | bare energy+forces {bare_s * 1e3:8.3f} ms | "
        f"OpenMM step {md_s * 1e3:8.3f} ms | ratio {md_s / bare_s:5.3f} | "
        f"{ns_per_day(1, TIMESTEP_FS, md_s):7.3f} ns/day at {TIMESTEP_FS} fs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="student checkpoint (default: a random-weight student of --size)")
    parser.add_argument("--size", default="standard", help="student size when no model is given (default: standard)")
    parser.add_argument(
        "--precision", choices=["float32", "float64"], default="float32", help="model dtype (default: float32)"
    )
    parser.add_argument(
        "--waters-per-side", type=int, default=5, help="water box of N³ molecules (default: 5, 375 atoms)"
    )
    parser.add_argument("--steps", type=int, default=50, help="steps (and bare calls) per timed block (default: 50)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved timed blocks; medians are reported (default: 5)"
    )
    parser.add_argument("--platform", default="auto", help="OpenMM platform (default: auto, as mlffd md picks it)")
    parser.add_argument(
        "--kernel", default="auto", help="auto, portable or fused (default: auto, as mlffd md picks it)"
    )
    args = parser.parse_args()

    dtype = torch.float32 if args.precision == "float32" else torch.float64
    if args.model:
        student = load_checkpoint(args.model, dtype=dtype)
    else:
        torch.manual_seed(0)
        student = Student(preset(args.size)).to(dtype).eval()
    print(
        f"student: {args.model or 'random ' + args.size} ({student.parameter_count():,} parameters, {args.precision}), "
        f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
        f"OpenMM {openmm.__version__}, platform {select_platform(args.platform, model_only=True)[0].getName()}, "
        f"kernel {args.kernel}"
    )
    aspirin = structure_to_openmm("CC(=O)Oc1ccccc1C(=O)O")
    benchmark("aspirin", aspirin, student, args.steps, args.rounds, args.platform, args.kernel)
    water = structure_to_openmm(water_box(args.waters_per_side))
    benchmark("water box", water, student, max(args.steps // 5, 5), args.rounds, args.platform, args.kernel)


if __name__ == "__main__":
    main()
