"""Where the per-atom cost of a student step goes from ~1,000 to ~16,000 atoms: neighbour search vs model.

For replicated water boxes (1,152, 4,608 and 16,128 atoms; cutoff 5 Å) and each student size, every
measurement runs in its own process (one thread) so that its peak memory is its own:

* the neighbour search alone (``cell_list`` under ``torch.no_grad``, TorchScript-compiled), µs/atom;
* forward + backward (forces by autograd) of the TorchScript-compiled student, float32, µs/atom/step;
* candidate pairs the cell list checks per real neighbour (``padded`` counts the padding of every cell
  to the fullest one, where the search pads), and the peak resident memory (MB).

Two variants are interleaved round by round: ``package`` (the cell list of
:mod:`mlff_distiller.models.neighbors`) and ``legacy`` (the padded 27-cell list it replaced, kept here
only). Times are CPU times of the measuring process (least of the timed calls), robust to other
load on the machine. The spread of a size is max/min µs/atom/step over the boxes (target: at most 1.5).
The standard student is left out at 16,128 atoms by default: its autograd step needs about 25 GB.

    OMP_NUM_THREADS=1 python benchmarks/neighbor_scaling.py [--rounds 2] [--sizes tiny] [--json out.json]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from mlff_distiller.models.neighbors import _wrap, all_pairs, plane_spacings

#: Replications of the 96-atom water box (9.86 Å) per lattice direction, by atom count.
BOXES: Dict[int, Tuple[int, int, int]] = {1152: (2, 2, 3), 4608: (4, 4, 3), 16128: (6, 7, 4)}
CUTOFF = 5.0
VARIANTS = ["legacy", "package"]


def legacy_cell_list(positions: Tensor, cell: Tensor, pbc: Tensor, cutoff: float) -> Tuple[Tensor, Tensor, Tensor]:
    """The cell list before the sort-based one: 27 cells >= ``cutoff`` wide, each padded to the fullest."""
    periodic = bool(torch.any(pbc))
    if periodic and not bool(torch.all(pbc)):
        return all_pairs(positions, cell, pbc, cutoff)
    pos = positions.detach()
    cell = cell.detach()
    n_atoms = pos.shape[0]
    device = pos.device
    dtype = pos.dtype
    if periodic:
        n_bins = torch.floor(plane_spacings(cell) / cutoff).to(torch.long)
        if bool(torch.any(n_bins < 3)):
            return all_pairs(positions, cell, pbc, cutoff)
        frac, offset, pos = _wrap(pos, cell, pbc)
    else:
        lower = pos.min(0).values
        extent = pos.max(0).values - lower
        n_bins = torch.clamp(torch.floor(extent / cutoff).to(torch.long), min=1)
        frac = (pos - lower) / torch.clamp(extent, min=1e-12)
        offset = torch.zeros_like(pos)
    bins = torch.minimum(torch.clamp(torch.floor(frac * n_bins.to(frac.dtype)).to(torch.long), min=0), n_bins - 1)
    strides = torch.stack([n_bins[1] * n_bins[2], n_bins[2], torch.ones_like(n_bins[2])])
    bin_id = (bins * strides).sum(-1)
    n_total = int(n_bins.prod())
    occupancy = torch.bincount(bin_id, minlength=n_total)
    max_per_bin = int(occupancy.max())
    order = torch.argsort(bin_id)
    first = torch.cumsum(occupancy, 0) - occupancy
    sorted_bins = bin_id[order]
    rank = torch.arange(n_atoms, device=device) - first[sorted_bins]
    table = torch.full((n_total, max_per_bin), -1, dtype=torch.long, device=device)
    table[sorted_bins, rank] = order
    steps = torch.arange(-1, 2, device=device)
    stencil = torch.cartesian_prod(steps, steps, steps)
    neighbour_bins = bins[:, None, :] + stencil[None, :, :]
    wraps = torch.div(neighbour_bins, n_bins, rounding_mode="floor")
    inside = torch.ones(neighbour_bins.shape[:2], dtype=torch.bool, device=device)
    if not periodic:
        inside = (wraps == 0).all(-1)
    neighbour_bins = neighbour_bins - wraps * n_bins
    neighbour_id = (neighbour_bins * strides).sum(-1)
    candidates = table[neighbour_id]
    valid = (candidates >= 0) & inside[:, :, None]
    src_all = torch.arange(n_atoms, device=device)[:, None, None].expand_as(candidates)
    shift = wraps.to(dtype)[:, :, None, :].expand(n_atoms, 27, max_per_bin, 3)
    src = src_all[valid]
    dst = candidates[valid]
    shift = shift[valid]
    vectors = pos[dst] - pos[src] + (shift @ cell if periodic else shift)
    keep = ((vectors * vectors).sum(-1) < cutoff * cutoff) & ~((src == dst) & (shift.abs().sum(-1) == 0))
    src, dst, shift = src[keep], dst[keep], shift[keep]
    images = shift - offset[dst] + offset[src]
    return src, dst, images


def candidate_counts(variant: str, positions: Tensor, cell: Tensor) -> Tuple[int, int]:
    """Pairs the variant's cell list compares (periodic box): ``(padded, checked)``.

    ``padded`` includes the padding slots of cells emptier than the fullest one (legacy only: the
    package's search has no padding and checks each pair of atoms once, so both numbers agree there).
    """
    per_cutoff = 1 if variant == "legacy" else 2
    n_bins = torch.floor(plane_spacings(cell) * per_cutoff / CUTOFF).to(torch.long)
    frac, _, _ = _wrap(positions, cell, torch.ones(3, dtype=torch.bool))
    bins = torch.minimum(torch.floor(frac * n_bins.to(frac.dtype)).to(torch.long), n_bins - 1)
    occupancy = torch.zeros(n_bins.tolist(), dtype=torch.long)
    occupancy.index_put_((bins[:, 0], bins[:, 1], bins[:, 2]), torch.ones(len(bins), dtype=torch.long), accumulate=True)
    span = range(-per_cutoff, per_cutoff + 1)
    around = sum(torch.roll(occupancy, (i, j, k), (0, 1, 2)) for i in span for j in span for k in span)
    checked = int(around[bins[:, 0], bins[:, 1], bins[:, 2]].sum())  # every atom against the whole stencil
    if variant == "legacy":
        return len(bins) * len(span) ** 3 * int(occupancy.max()), checked
    half = (checked - len(bins)) // 2  # each unordered pair once, no atom with itself
    return half, half


def water_box(n_atoms: int):
    from ase.io import read

    from mlff_distiller.data import bundled_structure

    return read(bundled_structure("water-32")).repeat(BOXES[n_atoms])


def time_calls(call, min_seconds: float, min_calls: int = 2) -> float:
    """Least CPU time (s, user + system, this process) of repeated calls, after two warm-up calls.

    TorchScript profiles the first runs. CPU time rather than wall time: on a shared machine other
    processes stretch the wall time of a one-thread run but hardly its CPU time.
    """
    call()
    call()
    times: List[float] = []
    while len(times) < min_calls or sum(times) < min_seconds:
        start = time.process_time()
        call()
        times.append(time.process_time() - start)
    return min(times)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(variant: str, n_atoms: int, size: str, seconds: float) -> Dict:
    """One measurement, in a fresh process: neighbour search, then the model step."""
    torch.set_num_threads(1)
    import mlff_distiller.models.neighbors as neighbors

    if variant == "legacy":  # before anything is scripted: neighbor_list then compiles the legacy search
        neighbors.cell_list = legacy_cell_list
    from mlff_distiller.benchmark.contenders import benchmark_student

    atoms = water_box(n_atoms)
    import_mb = peak_mb()
    positions = torch.tensor(atoms.positions, dtype=torch.float32)
    cell = torch.tensor(atoms.cell.array, dtype=torch.float32)
    pbc = torch.ones(3, dtype=torch.bool)
    search = torch.jit.script(neighbors.cell_list)

    def neighbour_search():
        with torch.no_grad():
            return search(positions, cell, pbc, CUTOFF)

    n_edges = int(neighbour_search()[0].shape[0])
    search_s = time_calls(neighbour_search, seconds / 2)
    search_mb = peak_mb()
    padded, checked = candidate_counts(variant, positions.double(), cell.double())

    student = benchmark_student(size, torch.float32)
    model = torch.jit.script(student.requires_grad_(False))
    species = student.species([int(z) for z in atoms.numbers])

    def step():
        leaf = positions.detach().requires_grad_(True)
        torch.autograd.grad(model(leaf, species, cell, pbc), leaf)

    step_s = time_calls(step, seconds)
    return {
        "variant": variant,
        "atoms": n_atoms,
        "size": size,
        "edges": n_edges,
        "search_us_per_atom": search_s / n_atoms * 1e6,
        "step_us_per_atom": step_s / n_atoms * 1e6,
        "padded_per_edge": padded / n_edges,
        "checked_per_edge": checked / n_edges,
        "import_peak_mb": import_mb,
        "search_peak_mb": search_mb,
        "step_peak_mb": peak_mb(),
    }


def spread(values: List[float]) -> float:
    return max(values) / min(values)


def report(results: List[Dict], sizes: List[str]) -> None:
    best: Dict[Tuple[str, int, str], Dict] = {}
    for r in results:  # fastest round of each timing
        key = (r["variant"], r["atoms"], r["size"])
        if key in best:
            for name in ("search_us_per_atom", "step_us_per_atom"):
                best[key][name] = min(best[key][name], r[name])
        else:
            best[key] = dict(r)
    atoms = sorted(BOXES)
    print("\n| size | variant | " + " | ".join(f"{n} atoms: step µs/atom (search µs/atom, share)" for n in atoms) + " | spread |")
    print("|---|---|" + "---|" * (len(atoms) + 1))
    for size in sizes:
        for variant in VARIANTS:
            rows = [best.get((variant, n, size)) for n in atoms]
            measured = [r for r in rows if r is not None]
            if not measured:
                continue
            cells = [
                "-" if r is None else
                f"{r['step_us_per_atom']:.1f} ({r['search_us_per_atom']:.1f}, {r['search_us_per_atom'] / r['step_us_per_atom']:.0%})"
                for r in rows
            ]
            print(f"| {size} | {variant} | " + " | ".join(cells) + f" | {spread([r['step_us_per_atom'] for r in measured]):.2f} |")
    print("\n| variant | atoms | edges | candidates/edge (padded, checked) | peak MB: search, step (largest, its size) |")
    print("|---|---|---|---|---|")
    for variant in VARIANTS:
        for n in atoms:
            rows = [best[(variant, n, s)] for s in sizes if (variant, n, s) in best]
            if not rows:
                continue
            largest = max(rows, key=lambda r: r["step_peak_mb"])
            print(
                f"| {variant} | {n} | {rows[0]['edges']} | {rows[0]['padded_per_edge']:.1f}, {rows[0]['checked_per_edge']:.1f} "
                f"| {min(r['search_peak_mb'] for r in rows):.0f}, {largest['step_peak_mb']:.0f} ({largest['size']}) |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default: 2)")
    parser.add_argument("--sizes", nargs="+", default=["standard", "tiny", "ultra-tiny"], help="student sizes")
    parser.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS, help="variants to time")
    parser.add_argument("--atoms", nargs="+", type=int, default=sorted(BOXES), choices=sorted(BOXES), help="boxes")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per step measurement (default: 3)")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=["standard:16128"],
        metavar="SIZE:ATOMS",
        help="measurements to leave out (default: standard:16128, whose step needs about 25 GB)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw measurements here")
    parser.add_argument("--worker", nargs=3, metavar=("VARIANT", "ATOMS", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        variant, n_atoms, size = args.worker
        print(json.dumps(worker(variant, int(n_atoms), size, args.seconds)))
        return
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    results: List[Dict] = []
    for _ in range(args.rounds):
        for n_atoms in args.atoms:
            for size in args.sizes:
                if f"{size}:{n_atoms}" in args.skip:
                    continue
                for variant in args.variants:
                    command = [sys.executable, __file__, "--seconds", str(args.seconds), "--worker", variant, str(n_atoms), size]
                    run = subprocess.run(command, env=env, capture_output=True, text=True)
                    if run.returncode != 0:
                        print(f"{variant} {n_atoms} {size} failed:\n{run.stderr[-2000:]}", flush=True)
                        continue
                    results.append(json.loads(run.stdout.strip().splitlines()[-1]))
                    print(json.dumps(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    report(results, args.sizes)


if __name__ == "__main__":
    main()
