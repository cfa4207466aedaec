"""Portable OpenMM exports on a GPU (or the CPU), with nothing but torch: values, CUDA graphs, ms/step.

Needs only PyTorch (no OpenMM, no mlff-distiller): it loads the files ``gpu_check_prepare.py``
wrote (``NAME.pt``, ``NAME.npz``, ``manifest.json``) with ``torch.jit.load``, as openmm-torch does,
and for each one

1. computes the energy and, by autograd, the forces on the device, from positions in the dtype
   OpenMM would pass (float32 on CUDA in single or mixed precision, float64 on CPU), and compares
   them with the CPU reference values (relative to the largest reference force);
2. tries to capture one energy + forces evaluation in a CUDA graph and replays it (CUDA only), and
   says whether that worked and whether the replay gives the same values;
3. times ``--steps`` evaluations (energy + autograd forces, synchronised), the model's share of an
   MD step, in ms.

    python benchmarks/gpu_check.py FOLDER [--device cuda|cpu] [--only aspirin water-1536] [--steps 20]

Exit status 1 when a file disagrees with its reference by more than ``--tolerance``.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import numpy as np

#: Largest relative disagreement with the float64 reference (relative to the largest force). A
#: float32 file rounds the positions it is given (Å) to float32, an error that grows with the
#: coordinates: measured on CPU 2e-4 on aspirin, 8e-4 on the 1,536-atom box (40 Å wide), so about
#: 2e-3 is expected on the 12,288-atom one (80 Å); a wrong model or neighbour list errs by order one.
DEFAULT_TOLERANCE = 5e-3


def load_case(folder: Path, name: str, device: torch.device, dtype: torch.dtype):
    """The loaded module (species set) and its inputs and reference values on ``device``."""
    module = torch.jit.load(str(folder / f"{name}.pt"), map_location=device)
    data = np.load(folder / f"{name}.npz")
    numbers = torch.as_tensor(data["numbers"], dtype=torch.long, device=device)
    module.set_species(numbers, torch.arange(len(numbers), device=device))
    positions = torch.as_tensor(data["positions"], dtype=dtype, device=device)
    box = torch.as_tensor(data["box"], dtype=dtype, device=device) if "box" in data else None
    return module, positions, box, float(data["energy"]), torch.as_tensor(data["forces"], dtype=torch.float64)


def energy_and_forces(module, positions: torch.Tensor, box: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Energy (kJ/mol) and forces (kJ/mol/nm) as openmm-torch takes them: minus the autograd gradient."""
    leaf = positions.detach().requires_grad_(True)
    energy = module(leaf) if box is None else module(leaf, box)
    (gradient,) = torch.autograd.grad(energy, leaf)
    return energy.detach(), -gradient


def errors(
    energy: torch.Tensor, forces: torch.Tensor, reference_energy: float, reference_forces: torch.Tensor
) -> tuple[float, float]:
    """Relative energy error and force error (relative to the largest reference force)."""
    energy_error = abs(float(energy) - reference_energy) / max(abs(reference_energy), 1e-30)
    force_error = float((forces.cpu().double() - reference_forces).abs().max()) / max(
        float(reference_forces.abs().max()), 1e-30
    )
    return energy_error, force_error


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ms_per_step(step, device: torch.device, steps: int) -> float:
    """Best of three timed blocks of ``steps`` calls of ``step()``, in ms per call."""
    best = float("inf")
    for _ in range(3):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / steps)
    return best * 1e3


def try_cuda_graph(module, positions: torch.Tensor, box: torch.Tensor | None, steps: int) -> dict:
    """Capture one energy + forces evaluation in a CUDA graph; replay it and time it. Never raises."""
    try:
        static = positions.detach().clone().requires_grad_(True)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up on a side stream, as torch.cuda.graphs asks
            for _ in range(3):
                energy = module(static) if box is None else module(static, box)
                torch.autograd.grad(energy, static)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            energy = module(static) if box is None else module(static, box)
            (gradient,) = torch.autograd.grad(energy, static)
        graph.replay()
        synchronize(positions.device)
        return {"captured": True, "energy": energy.detach(), "forces": -gradient.detach(),
                "ms": ms_per_step(graph.replay, positions.device, steps)}  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - any failure of capture is the answer, not a crash
        torch.cuda.synchronize()
        return {"captured": False, "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}


def check(folder: Path, name: str, device: torch.device, dtype: torch.dtype, steps: int, tolerance: float) -> bool:
    """Check and time one file; print one line (and a CUDA-graph line on CUDA). True when it agrees."""
    module, positions, box, reference_energy, reference_forces = load_case(folder, name, device, dtype)
    for _ in range(5):  # TorchScript's profiling runs, CUDA kernels' first launches
        energy, forces = energy_and_forces(module, positions, box)
    energy_error, force_error = errors(energy, forces, reference_energy, reference_forces)
    ok = energy_error <= tolerance and force_error <= tolerance
    ms = ms_per_step(lambda: energy_and_forces(module, positions, box), device, steps)
    print(
        f"{name:>12}: {positions.shape[0]:6d} atoms | energy error {energy_error:.1e}, force error {force_error:.1e} "
        f"({'ok' if ok else 'FAILED'}, tolerance {tolerance:.0e}) | {ms:9.3f} ms/step",
        flush=True,
    )
    if device.type == "cuda":
        graph = try_cuda_graph(module, positions, box, steps)
        if graph["captured"]:
            replay_errors = errors(graph["energy"], graph["forces"], reference_energy, reference_forces)
            print(f"{'':>12}  CUDA graph: captured, replay errors {replay_errors[0]:.1e} / {replay_errors[1]:.1e}, "
                  f"{graph['ms']:.3f} ms/step")  # fmt: skip
        else:
            print(f"{'':>12}  CUDA graph: not captured ({graph['reason']})")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="folder written by gpu_check_prepare.py")
    parser.add_argument("--device", default="auto", help="cuda, cpu or auto (default: cuda where available)")
    parser.add_argument(
        "--only", nargs="*", help="names to check (default: all of the manifest), e.g. aspirin water-1536"
    )
    parser.add_argument("--steps", type=int, default=20, help="evaluations per timed block (default: 20)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="relative tolerance (default: 5e-3)")
    parser.add_argument(
        "--input-dtype",
        choices=["float32", "float64"],
        help="positions' dtype (default: float32 on CUDA, float64 on CPU)",
    )
    args = parser.parse_args()

    device = torch.device(
        "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device.replace("auto", "cpu")
    )
    dtype = {"float32": torch.float32, "float64": torch.float64}.get(args.input_dtype or "", None)
    dtype = dtype or (torch.float32 if device.type == "cuda" else torch.float64)
    manifest = json.loads((args.folder / "manifest.json").read_text())
    names = args.only or list(manifest["cases"])
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} on {where}; files {manifest['precision']} (exported with torch "
          f"{manifest['torch_version']}), positions {str(dtype).removeprefix('torch.')}")  # fmt: skip
    results = [check(args.folder, name, device, dtype, args.steps, args.tolerance) for name in names]
    print("mlff_distiller imported:", "mlff_distiller" in sys.modules)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
