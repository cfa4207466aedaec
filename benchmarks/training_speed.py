"""Training speed: frame-gradients per second for each student size on aspirin, before and after, in one run.

A frame-gradient is one frame whose loss gradient was computed and applied in an optimisation
step; the rate is over the wall-clock time of the training steps only (validation excluded):
for every epoch after the first, the time from the end of the previous epoch's validation to
the start of this epoch's validation, summed, divides the training frames of those epochs.

The frames are the real GFN2-xTB-labelled aspirin frames (C9H8O4) of the bundled test split
``mlff_distiller/data/students/organic-test.h5``, repeated to make epochs long enough to time
(no teacher is needed).

- before: the training as it was at commit d0763bd, loaded from git (``git show
  d0763bd:mlff_distiller/distillation/{training,graphs}.py``) into temporary modules and run as
  the bundled students' recipe ran it (``train_students.sh``): one thread
  (``OMP_NUM_THREADS=1``), batches of 8 frames collated per step, float32.
- after: :func:`mlff_distiller.distillation.train` with its defaults (every core this process
  may use, precollated batches of the default size, float32).

The two alternate (before, after, before, after, ...) and the best of ``--rounds`` is reported,
since other jobs may share the machine; each run also reports the cores it actually got (CPU
seconds of the training process and its helpers over the run's wall-clock seconds, validation
included): on a shared machine that, not the code, often sets the rate.

    python benchmarks/training_speed.py [--sizes standard tiny ultra-tiny] [--rounds 2] [--json out.json]
"""

import argparse
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from mlff_distiller.distillation import Dataset, TrainingSettings
from mlff_distiller.distillation.training import available_cores

ROOT = Path(__file__).resolve().parents[1]
BEFORE_COMMIT = "d0763bd"
TEST_SPLIT = ROOT / "mlff_distiller/data/students/organic-test.h5"


def aspirin_frames(repeat: int) -> Dataset:
    """The bundled test split's aspirin frames, each ``repeat`` times."""
    data = Dataset.load(TEST_SPLIT)
    frames = [f for f in data.frames if f.atoms().get_chemical_formula() == "C9H8O4"]
    return Dataset(frames * repeat, data.attrs)


def load_before() -> object:
    """Today's (d0763bd) ``training`` module, with its own ``graphs`` module, from git."""
    package = "mlff_distiller.distillation"
    modules = {}
    for name in ("graphs", "training"):
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{BEFORE_COMMIT}:mlff_distiller/distillation/{name}.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        source = source.replace("from .graphs import", "from ._before_graphs import")
        spec = importlib.util.spec_from_loader(f"{package}._before_{name}", loader=None)
        module = importlib.util.module_from_spec(spec)
        module.__package__ = package
        sys.modules[spec.name] = module
        exec(compile(source, f"{BEFORE_COMMIT}:{name}.py", "exec"), module.__dict__)
        modules[name] = module
    return modules["training"]


def timed(module, dataset: Dataset, settings, **kwargs) -> dict:
    """Run ``module.train`` and time its training steps (everything between validations)."""
    marks = []
    validate = module._validate

    def timed_validate(*args, **kw):
        marks.append(("start", time.perf_counter()))
        row = validate(*args, **kw)
        marks.append(("end", time.perf_counter()))
        return row

    module._validate = timed_validate
    cpu_before = _cpu_seconds()
    try:
        started = time.perf_counter()
        result = module.train(dataset, settings, progress=False, **kwargs)
    finally:
        module._validate = validate
    total = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    starts = [t for kind, t in marks if kind == "start"]
    ends = [t for kind, t in marks if kind == "end"]
    steps = sum(starts[i] - ends[i - 1] for i in range(1, len(starts)))
    frames = len(result.split["train"]) * (len(starts) - 1)
    return {
        "frame_gradients_per_s": frames / steps,
        "frames": frames,
        "step_seconds": steps,
        "total_seconds": total,
        "cpu_seconds": cpu,
        "cpu_share": cpu / total,
        "epochs": len(result.history),
    }


def _cpu_seconds() -> float:
    """CPU seconds used by this process and its finished children (the training helpers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["standard", "tiny", "ultra-tiny"])
    parser.add_argument("--rounds", type=int, default=2, help="interleaved before/after rounds (default: 2)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run; the first is not timed (default: 4)")
    parser.add_argument("--repeat", type=int, default=4, help="copies of each aspirin frame (default: 4)")
    parser.add_argument(
        "--one-process",
        action="store_true",
        help="also time today's path with --threads 1 (separates the code path from the second core)",
    )
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args()

    dataset = aspirin_frames(args.repeat)
    before = load_before()
    common = dict(epochs=args.epochs, val_fraction=0.05, test_fraction=0.0, patience=1000, seed=0)
    runs = {size: {"before": [], "after": [], "after, 1 process": []} for size in args.sizes}
    for round_ in range(args.rounds):
        for size in args.sizes:
            torch.set_num_threads(1)  # the recipe's OMP_NUM_THREADS=1
            old = before.TrainingSettings(size=size, batch_size=8, dtype="float32", **common)
            runs[size]["before"].append(timed(before, dataset, old))
            torch.set_num_threads(available_cores())
            new = TrainingSettings(size=size, **common)
            runs[size]["after"].append(timed(sys.modules["mlff_distiller.distillation.training"], dataset, new))
            if args.one_process:
                alone = TrainingSettings(size=size, threads=1, **common)
                runs[size]["after, 1 process"].append(
                    timed(sys.modules["mlff_distiller.distillation.training"], dataset, alone)
                )
                print(
                    f"round {round_ + 1} {size}: after, 1 process "
                    f"{runs[size]['after, 1 process'][-1]['frame_gradients_per_s']:.1f} frame-gradients/s",
                    flush=True,
                )
            b, a = runs[size]["before"][-1], runs[size]["after"][-1]
            print(
                f"round {round_ + 1} {size}: before {b['frame_gradients_per_s']:.1f}, "
                f"after {a['frame_gradients_per_s']:.1f} frame-gradients/s "
                f"(cores used: before {b['cpu_share']:.2f}, after {a['cpu_share']:.2f})",
                flush=True,
            )

    defaults = TrainingSettings()
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores_usable": available_cores(),
        "os_cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "torch": torch.__version__,
    }
    print(
        f"\naspirin frames: {len(dataset)} ({args.repeat} copies of the test split's "
        f"{len(dataset) // args.repeat}); {args.epochs} epochs per run, first untimed; best of {args.rounds}"
    )
    print(
        f"before: {BEFORE_COMMIT}, 1 thread, batch 8; after: threads {available_cores()}, batch {defaults.batch_size}"
    )
    print(f"{'size':<12}{'before (frames/s)':>20}{'after (frames/s)':>20}{'after/before':>14}")
    table = {}
    for size in args.sizes:
        best_before = max(r["frame_gradients_per_s"] for r in runs[size]["before"])
        best_after = max(r["frame_gradients_per_s"] for r in runs[size]["after"])
        table[size] = {"before": best_before, "after": best_after, "ratio": best_after / best_before}
        print(f"{size:<12}{best_before:>20.1f}{best_after:>20.1f}{best_after / best_before:>13.2f}x")
        if runs[size]["after, 1 process"]:
            alone = max(r["frame_gradients_per_s"] for r in runs[size]["after, 1 process"])
            table[size]["after, 1 process"] = alone
            print(f"{'':<12}{'after, 1 process:':>20}{alone:>20.1f}{alone / best_before:>13.2f}x")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (other jobs may share the cores)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": machine, "best": table, "runs": runs, "arguments": vars(args)}, indent=2, default=str
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
