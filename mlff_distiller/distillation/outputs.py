"""What a training run leaves on disk: training log (CSV), learning curve (PNG), test metrics (JSON)."""

import csv
import json
from pathlib import Path


def write_log(path: Path, history: list[dict]) -> Path:
    """The per-epoch history as CSV (losses dimensionless weighted sums; force RMSE eV/Å; energy MAE meV/atom)."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(history[0]) if history else ["epoch"])
        writer.writeheader()
        writer.writerows(history)
    return path


def write_learning_curve(path: Path, history: list[dict], title: str) -> Path:
    """Training loss, validation loss and validation force RMSE against epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.semilogy(epochs, [row["train_loss"] for row in history], label="training loss")
    left.semilogy(epochs, [row["val_loss"] for row in history], label="validation loss")
    left.set_xlabel("epoch")
    left.set_ylabel("weighted loss")
    left.legend()
    right.semilogy(epochs, [row["val_force_rmse"] for row in history], color="C2")
    right.set_xlabel("epoch")
    right.set_ylabel("validation force RMSE (eV/Å)")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_metrics(path: Path, metrics: dict) -> Path:
    """Metrics as indented JSON."""
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    return path
