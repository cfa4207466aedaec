"""Metadata that travels inside an exported TorchScript file (as an extra file)."""

import json
import zipfile
from pathlib import Path
from typing import Dict, Union

import torch

from ..errors import CheckpointError

#: Name of the extra file that holds the metadata JSON inside the TorchScript archive.
METADATA_FILE = "mlffd_metadata.json"


def read_metadata(path: Union[str, Path]) -> Dict:
    """The metadata dict of an exported model; raises :class:`CheckpointError` if it has none."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not an exported model (the file is corrupt or of another kind)")
    extra = {METADATA_FILE: ""}
    try:
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:
        raise CheckpointError(f"{path}: corrupt or foreign TorchScript file ({type(exc).__name__})") from exc
    if not extra[METADATA_FILE]:
        raise CheckpointError(f"{path}: a TorchScript file without mlff-distiller metadata")
    return json.loads(extra[METADATA_FILE])
