"""``mlffd distill`` and ``mlffd evaluate``: train a student on labelled data and measure one against data."""

import argparse
import json
import shlex
import signal
import sys
import threading
from pathlib import Path

from ..data import resolve_model
from ..inputs import COUNT, FRACTION_BELOW_ONE, LEARNING_RATE, LOSS_WEIGHT, MINUTES, PATIENCE, SEED
from . import LazyChoices
from .arguments import add_label_units, distinct, element

ORDER = 20

SIZES = LazyChoices("..models", "PRESETS")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "distill",
        help="train a student on labelled datasets (from mlffd sample) and write its checkpoint and reports",
        description=(
            "Train a student on one or more datasets (or fine-tune one with --init). Per-element reference energies "
            "are fit by least squares first, then AdamW minimises energy_weight x mean((ΔE/N)²) + force_weight x "
            "mean(ΔF²) [+ angular_weight x mean(1 - cos(F_pred, F_ref))] over batches split across --threads "
            "processes, halving the learning rate on validation plateaus and stopping early; with --time-limit the "
            "learning rate follows one cosine down to its floor at the end of the budget (or of --epochs, whichever "
            "comes first). The best validation weights are kept and measured on a held-out test split. "
            "Writes STUDENT.ckpt, STUDENT.log.csv, STUDENT.curve.png, STUDENT.metrics.json and STUDENT.test.h5; "
            "STUDENT.training.pt holds the training state after every epoch (removed at the end): after an "
            "interruption (Ctrl-C, SIGTERM) run the same command with --resume. See docs/training.md."
        ),
    )
    parser.add_argument(
        "data",
        nargs="+",
        type=Path,
        help="labelled data: datasets of mlffd sample (.h5), extended XYZ, ASE .traj or ASE database files "
        "(docs/datasets.md)",
    )
    parser.add_argument("-o", "--output", required=True, type=Path, help="student checkpoint to write (.ckpt)")
    parser.add_argument(
        "--size",
        choices=SIZES,
        metavar="SIZE",
        help="student size: %(choices)s (default: standard, or the size of --init)",
    )
    parser.add_argument(
        "--init",
        metavar="CKPT",
        help="fine-tune this checkpoint or bundled student: its architecture, elements, weights and reference "
        "energies are the start (refused if the data has elements it lacks)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted training of this -o from its STUDENT.training.pt (same data and options)",
    )
    parser.add_argument(
        "--teacher-student",
        type=resolve_model,
        metavar="BIG.ckpt",
        help="learn from this (larger) student's labels instead of the dataset's teacher",
    )
    parser.add_argument(
        "--elements",
        nargs="+",
        type=element,
        metavar="SYMBOL",
        help="elements the student supports (default: those in the data)",
    )
    parser.add_argument(
        "--epochs",
        type=COUNT,
        help="most passes over the training frames (default: 200; no limit with --time-limit)",
    )
    parser.add_argument(
        "--time-limit",
        type=MINUTES,
        metavar="MINUTES",
        help="wall-clock budget in minutes: the learning rate decays along one cosine to its floor at the end of "
        "the budget (or of --epochs if given and reached first), then training stops keeping the best weights",
    )
    parser.add_argument(
        "--threads",
        type=COUNT,
        help="CPU cores to train on, one process each (default: the cores this process may use, or OMP_NUM_THREADS)",
    )
    parser.add_argument(
        "--energy-weight",
        type=LOSS_WEIGHT,
        default=100.0,
        help="weight of the squared energy error per atom, (eV/atom)² (default: 100)",
    )
    parser.add_argument(
        "--force-weight", type=LOSS_WEIGHT, default=1.0, help="weight of the squared force error, (eV/Å)² (default: 1)"
    )
    parser.add_argument(
        "--angular-weight", type=LOSS_WEIGHT, default=0.0, help="weight of 1 - cos between force vectors (default: 0)"
    )
    parser.add_argument("--lr", type=LEARNING_RATE, default=1e-3, help="initial AdamW learning rate (default: 1e-3)")
    parser.add_argument("--batch-size", type=COUNT, default=16, help="frames per step (default: 16)")
    parser.add_argument(
        "--patience",
        type=PATIENCE,
        default=25,
        help="epochs without validation improvement before stopping (default: 25)",
    )
    parser.add_argument("--seed", type=SEED, default=0, help="seed of weights, split and frame order (default: 0)")
    parser.add_argument(
        "--val-fraction", type=FRACTION_BELOW_ONE, default=0.1, help="share of frames for validation (default: 0.1)"
    )
    parser.add_argument(
        "--test-fraction",
        type=FRACTION_BELOW_ONE,
        default=0.1,
        help="share of frames held out for the test (default: 0.1)",
    )
    parser.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default="float32",
        help="training arithmetic; float32 is about 1.2-2x faster on CPU (default: float32; checkpoints are float64)",
    )
    parser.add_argument("--test-output", type=Path, help="where to write the test frames (default: STUDENT.test.h5)")
    add_label_units(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_distill)

    evaluate = subparsers.add_parser(
        "evaluate",
        help="measure a student against labelled datasets (energy MAE, force RMSE/MAE/R², angles, per element and molecule)",
        description="Evaluate a student checkpoint on dataset files and print (or write) its accuracy against their labels.",
    )
    evaluate.add_argument("checkpoint", type=resolve_model, help="student checkpoint (.ckpt) or bundled student")
    evaluate.add_argument(
        "data", nargs="+", type=Path, help="labelled data: .h5 datasets, extended XYZ, ASE .traj or database files"
    )
    add_label_units(evaluate)
    evaluate.add_argument("--json", type=Path, help="also write the metrics to this JSON file")
    evaluate.add_argument("--overwrite", action="store_true", help="replace an existing JSON file")
    evaluate.set_defaults(func=run_evaluate)


def run_distill(args: argparse.Namespace) -> int:
    from ..distillation import TrainingSettings, distill
    from ..distillation.pipeline import output_paths, size_of
    from ..elements import numbers_from_symbols
    from ..models import load_checkpoint

    size = args.size
    if size is None and args.init is not None:
        size = size_of(load_checkpoint(resolve_model(args.init))) or "standard"
    settings = TrainingSettings(
        size=size or "standard",
        elements=numbers_from_symbols(distinct(args.elements, "--elements")) if args.elements else None,
        epochs=args.epochs,
        energy_weight=args.energy_weight,
        force_weight=args.force_weight,
        angular_weight=args.angular_weight,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        patience=args.patience,
        time_limit_minutes=args.time_limit,
        dtype=args.dtype,
        threads=args.threads,
    )
    command = "mlffd " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[0].endswith("mlffd") else ""
    state = output_paths(args.output, args.test_output)["state"]
    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there only
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        provenance = distill(
            args.data,
            args.output,
            settings,
            teacher_student=args.teacher_student,
            test_split=args.test_output,
            command=command,
            overwrite=args.overwrite,
            progress=not args.quiet,
            init=args.init,
            resume=args.resume,
            energy_unit=args.energy_unit,
            force_unit=args.force_unit,
        )
    except KeyboardInterrupt as exc:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut this message short
        how = "terminated" if isinstance(exc, Terminated) else "interrupted"
        if state.is_file():
            print(
                f"mlffd distill: {how}; the training state is in {state}: run the same command with --resume to continue",
                file=sys.stderr,
            )
        else:
            print(f"mlffd distill: {how} before the first epoch ended; nothing to resume", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    metrics = provenance["test_metrics"]
    print(
        f"wrote {args.output}: {settings.size} student, best epoch {provenance['best_epoch']} of "
        f"{provenance['epochs_run']} ({provenance['stopped']})"
    )
    if metrics:
        print(_summary(metrics))
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the training like Ctrl-C so that it stops the same way."""


def _terminated(signum, frame) -> None:
    raise Terminated()


def run_evaluate(args: argparse.Namespace) -> int:
    from ..distillation import Dataset, evaluate
    from ..models import load_checkpoint
    from ..safe_write import check_output, safe_write

    inputs = [args.checkpoint, *args.data]
    if args.json:
        check_output(args.json, inputs=inputs, overwrite=args.overwrite)
    data = Dataset.load(args.data, energy_unit=args.energy_unit, force_unit=args.force_unit)
    metrics = evaluate(load_checkpoint(args.checkpoint), data)
    print(_summary(metrics))
    for name, row in metrics["per_molecule"].items():
        print(
            f"  {name}: {row['frames']} frames, energy MAE {row['energy_mae_mev_per_atom']:.2f} meV/atom, "
            f"force RMSE {row['force_rmse']:.4f} eV/Å"
        )
    for symbol, row in metrics["per_element"].items():
        print(f"  {symbol}: force RMSE {row['force_rmse']:.4f} eV/Å, MAE {row['force_mae']:.4f} eV/Å")
    if args.json:
        text = json.dumps(metrics, indent=2) + "\n"
        safe_write(args.json, lambda staged: staged.write_text(text), inputs=inputs, overwrite=args.overwrite)
    return 0


def _summary(metrics: dict) -> str:
    return (
        f"test ({metrics['frames']} frames): energy MAE {metrics['energy_mae_mev_per_atom']:.2f} meV/atom, "
        f"force RMSE {metrics['force_rmse']:.4f} eV/Å, MAE {metrics['force_mae']:.4f} eV/Å, "
        f"R² {metrics['force_r2']:.4f}, angle mean {metrics['angle_mean_deg']:.1f}° "
        f"median {metrics['angle_median_deg']:.1f}°"
    )
