"""The student checkpoint: one file with weights, architecture, units, elements and provenance."""

import hashlib
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from ..errors import CheckpointError
from .student import Student, StudentConfig, config_problem

#: Written into every checkpoint so that foreign files are recognised.
FORMAT_NAME = "mlff-distiller-checkpoint"
#: Bumped whenever the layout changes; newer files are refused with a clear message.
FORMAT_VERSION = 1
#: Units of every checkpoint: models take Å and return eV.
UNITS = {"length": "angstrom", "energy": "eV", "force": "eV/angstrom"}


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 hex digest of a state dict: each tensor's name, dtype, shape and bytes, in name order.

    Recorded at save and export time and recomputed at load, so that damaged weights are refused.
    """
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def check_archive(path: Path) -> None:
    """Raise :class:`CheckpointError` if a member of the zip archive ``path`` fails its CRC-32.

    Torch writes a CRC-32 of every member (weights, pickle) but does not check it when loading,
    so a file with flipped bytes would otherwise load with wrong weights.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path} is damaged: the archive cannot be read ({type(exc).__name__})") from exc
    if bad is not None:
        what = "its weights do" if "/data/" in bad or "/constants/" in bad else f"its member {bad} does"
        raise CheckpointError(f"{path} is damaged: {what} not match the checksum recorded when it was saved")


def check_weights(state: Mapping[str, torch.Tensor], path: str | Path, recorded: str | None) -> None:
    """Raise :class:`CheckpointError` for weights that differ from the ``recorded`` checksum or are not finite.

    ``recorded`` is None for files written before checksums were recorded (they are checked by CRC).
    """
    if not isinstance(state, Mapping) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise CheckpointError(f"{path}: corrupt checkpoint (its weights are not a table of tensors)")
    if recorded is not None and weights_sha256(state) != recorded:
        raise CheckpointError(f"{path} is damaged: its weights do not match the checksum recorded when it was saved")
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path}: the model is unusable: its weights {name} hold NaN or inf")


def save_checkpoint(student: Student, path: str | Path, provenance: dict | None = None) -> Path:
    """Write ``student`` to ``path`` with its config, units and training provenance.

    Parameters
    ----------
    student : Student
        The model; its weights are stored in float64 whatever dtype it runs in.
    path : str or Path
        Output file (conventionally ``*.ckpt``).
    provenance : dict, optional
        How the model was made: teacher, data hash, metrics, command. JSON-like values only.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().to("cpu", torch.float64) if v.is_floating_point() else v.cpu()
        for k, v in student.state_dict().items()
    }
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config": student.config.to_dict(),
        "units": dict(UNITS),
        "elements": list(student.elements),
        "cutoff": student.cutoff,
        "parameter_count": student.parameter_count(),
        "state_dict": state,
        "weights_sha256": weights_sha256(state),
        "provenance": provenance or {},
    }
    torch.save(payload, path)
    return path


def read_checkpoint(path: str | Path) -> dict:
    """The raw checkpoint dictionary, validated; raises :class:`CheckpointError` with the reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a checkpoint (the file is corrupt or of another kind)")
    if _is_torchscript(path):
        raise CheckpointError(f"{path}: this is an exported TorchScript model, not a checkpoint")
    check_archive(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged archives
        raise CheckpointError(f"{path}: corrupt checkpoint ({type(exc).__name__})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: not an mlff-distiller checkpoint")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} is newer than this mlff-distiller "
            f"understands ({FORMAT_VERSION}); upgrade the package"
        )
    missing = [key for key in ("config", "state_dict", "elements", "cutoff") if key not in payload]
    if missing:
        raise CheckpointError(f"{path}: corrupt checkpoint (missing {', '.join(missing)})")
    check_config(payload["config"], path)
    check_weights(payload["state_dict"], path, payload.get("weights_sha256"))
    return payload


def check_config(config: object, path: str | Path) -> None:
    """Raise :class:`CheckpointError` for an architecture that makes no sense (see :func:`config_problem`)."""
    problem = config_problem(config)
    if problem is not None:
        raise CheckpointError(f"{path}: {problem}")


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("constants.pkl") for name in archive.namelist())
    except zipfile.BadZipFile:
        return False


def load_checkpoint(path: str | Path, dtype: torch.dtype = torch.float64) -> Student:
    """The :class:`Student` stored in ``path``, in ``dtype``, in eval mode.

    Its provenance is attached as ``student.provenance``.
    """
    payload = read_checkpoint(path)
    try:
        student = Student(StudentConfig.from_dict(payload["config"])).to(torch.float64)
        student.load_state_dict(payload["state_dict"])
    except (TypeError, RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint (weights do not match the architecture)") from exc
    student.provenance = payload.get("provenance", {})
    return student.to(dtype).eval()
