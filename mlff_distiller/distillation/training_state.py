"""The state of a training in progress, saved after every epoch so that an interrupted training can continue.

One file (``STUDENT.training.pt`` next to the checkpoint ``mlffd distill`` writes), replaced
atomically (:func:`~mlff_distiller.safe_write.safe_write`) after every epoch: the weights, the
optimiser and learning-rate schedule state, the epoch, the best weights so far, the history, the
random state of the frame order, the seconds spent, and what identifies the run (its settings
without ``threads``, the data's content hash, and a caller's key such as the starting
checkpoint). :func:`load` refuses, naming what differs, a state of another run.
"""

from dataclasses import asdict
from pathlib import Path

import torch

from ..errors import MLFFDError
from ..models import Student, StudentConfig
from ..safe_write import safe_write
from .dataset import Dataset

FORMAT_NAME = "mlff-distiller-training-state"
#: Settings that may change between an interrupted training and its continuation.
FREE_SETTINGS = ("threads",)


def identity(dataset: Dataset, settings, run_key: dict | None = None) -> dict:
    """What a continuation must share with the interrupted run: settings (``threads`` aside), data hash, key."""
    return {
        "settings": {k: v for k, v in asdict(settings).items() if k not in FREE_SETTINGS},
        "data_hash": dataset.content_hash(),
        "key": dict(run_key or {}),
    }


def save(path: str | Path, run: dict, student: Student, **state) -> Path:
    """Replace ``path`` atomically with the state of a training (see the module's description)."""
    payload = {
        "format": FORMAT_NAME,
        "identity": run,
        "config": student.config.to_dict(),
        "student": {k: v.detach().clone() for k, v in student.state_dict().items()},
        "optimizer": state["optimizer"].state_dict(),
        "plateau": state["plateau"].state_dict(),
        "order_rng": state["order_rng"].bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "best": state["best"],
        "history": state["history"],
        "epoch": state["epoch"],
        "stopped": state["stopped"],
        "seconds": state["seconds"],
    }
    return safe_write(path, lambda staged: torch.save(payload, staged), overwrite=True)


def load(path: str | Path, run: dict) -> dict:
    """The saved state at ``path`` of the run ``run`` (see :func:`identity`).

    Raises
    ------
    MLFFDError
        When there is no state, it cannot be read, or it belongs to another run (settings, data or key
        differ; each difference is named).
    """
    path = Path(path)
    if not path.is_file():
        raise MLFFDError(f"{path}: no training state to resume (it is written after each epoch)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a damaged or foreign file
        raise MLFFDError(f"{path}: not a readable training state ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise MLFFDError(f"{path}: not an mlff-distiller training state")
    saved = payload["identity"]
    differences = []
    for name in sorted(set(saved["settings"]) | set(run["settings"])):
        old, new = saved["settings"].get(name), run["settings"].get(name)
        if old != new:
            differences.append(f"{name} {old!r} then, {new!r} now")
    if saved["data_hash"] != run["data_hash"]:
        differences.append(f"the data (hash {saved['data_hash'][:12]} then, {run['data_hash'][:12]} now)")
    for name in sorted(set(saved["key"]) | set(run["key"])):
        old, new = saved["key"].get(name), run["key"].get(name)
        if old != new:
            differences.append(f"{name} {old!r} then, {new!r} now")
    if differences:
        raise MLFFDError(
            f"{path} is the state of another training: {'; '.join(differences)}; "
            "resume with the same data and settings, or start over with --overwrite"
        )
    return payload


def student_of(payload: dict) -> Student:
    """The student of a loaded state, with its saved weights (in their saved dtype)."""
    student = Student(StudentConfig.from_dict(payload["config"]))
    dtype = payload["student"]["network.energy_scale"].dtype
    student = student.to(dtype)
    student.load_state_dict(payload["student"])
    return student


def saved_history(path: str | Path) -> list[dict]:
    """The per-epoch history stored in the training state at ``path`` (empty when unreadable)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
        return list(payload["history"])
    except Exception:  # load() reports a damaged state when the training starts
        return []
