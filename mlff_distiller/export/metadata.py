"""Metadata that travels inside an exported TorchScript file (as an extra file).

Both engines (OpenMM, LAMMPS) build it with :func:`build_metadata` and write it with
:func:`save_with_metadata`; :func:`read_metadata` reads it back (``mlffd info`` uses it).
"""

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import torch

from ..elements import symbols
from ..errors import CheckpointError
from ..models.checkpoint import check_archive, check_weights, file_sha256, weights_sha256
from ..models.student import Student

#: Name of the extra file that holds the metadata JSON inside the TorchScript archive.
METADATA_FILE = "mlffd_metadata.json"

#: Units each engine's exported model takes and returns.
ENGINE_UNITS: dict[str, dict[str, str]] = {
    "openmm": {"length": "nm", "energy": "kJ/mol", "force": "kJ/mol/nm"},
    "lammps": {"length": "angstrom", "energy": "eV", "force": "eV/angstrom"},
}

#: Precisions an exported model can be written in.
PRECISIONS: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}


def build_metadata(
    student: Student,
    engine: str,
    precision: str,
    checkpoint: str | Path | None = None,
    periodic: bool = True,
    species: Sequence[int] | None = None,
    **extra,
) -> dict:
    """The metadata dict of an exported model.

    Parameters
    ----------
    student : Student
        The exported student (its elements, cutoff in Å and parameter count are recorded).
    engine : str
        Target engine, a key of :data:`ENGINE_UNITS` (``"openmm"`` or ``"lammps"``).
    precision : str
        ``"float32"`` or ``"float64"``: the dtype the model computes in.
    checkpoint : str or Path, optional
        Source checkpoint file; its path and SHA-256 are recorded.
    periodic : bool
        Whether the model accepts periodic boxes.
    species : sequence of int, optional
        Atomic numbers of every atom when a topology is baked into the file (self-contained export).
    **extra
        Further JSON-ready engine-specific entries (e.g. ``pair_style`` for LAMMPS).
    """
    from .. import __version__

    if engine not in ENGINE_UNITS:
        raise ValueError(f"unknown engine '{engine}'; choose one of {', '.join(ENGINE_UNITS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}")
    metadata = {
        "format": "mlff-distiller-export",
        "engine": engine,
        "units": dict(ENGINE_UNITS[engine]),
        "precision": precision,
        "elements": symbols(student.elements),
        "atomic_numbers": list(student.elements),
        "cutoff_angstrom": student.cutoff,
        "parameters": student.parameter_count(),
        "periodic": bool(periodic),
        "source_checkpoint": str(checkpoint) if checkpoint is not None else None,
        "source_checkpoint_sha256": file_sha256(checkpoint) if checkpoint is not None else None,
        "package_version": __version__,
        "torch_version": torch.__version__,
        "species": [int(z) for z in species] if species is not None else None,
        "atoms": len(species) if species is not None else None,
    }
    if engine == "openmm":  # portable: the energy alone (openmm-torch's autograd); fused: (energy, forces)
        metadata["outputs_forces"] = extra.get("kernel") == "fused"
    metadata.update(extra)
    return metadata


def usage_lines(metadata: dict, path: str | Path) -> list[str]:
    """The lines a plain OpenMM script or LAMMPS input needs to run the exported file at ``path``.

    Parameters
    ----------
    metadata : dict
        The file's metadata (:func:`read_metadata`).
    path : str or Path
        The file as the script should name it.
    """
    name = str(path)
    if metadata.get("engine") == "lammps":
        style = metadata["pair_style"].split()[:2]  # "pair_style NAME FILE" as written at export time
        return [
            " ".join([*style, name]),
            f"pair_coeff * * ELEMENT...  # one symbol per atom type, in type order, of {' '.join(metadata['elements'])}",
        ]
    fused = metadata.get("kernel") == "fused"
    lines = ["import torch  # first, before openmm and openmmtorch", "from openmmtorch import TorchForce"]
    if fused:
        lines += ["import mlff_distiller", "mlff_distiller.load_kernel()  # the file calls the fused C++ kernel"]
    if metadata.get("species") is not None:
        lines.append(f'force = TorchForce("{name}")')
    else:  # the atoms the model applies to are set at run time
        lines += [
            f'model = torch.jit.load("{name}")',
            "model.set_species(torch.tensor(atomic_numbers), torch.tensor(atom_indices))  # the ML atoms",
            "force = TorchForce(model)",
        ]
    if fused:
        lines.append("force.setOutputsForces(True)  # the fused file returns (energy, forces)")
    if metadata.get("periodic"):
        lines.append("force.setUsesPeriodicBoundaryConditions(True)  # only for a periodic box")
    return lines + ["system.addForce(force)"]


def save_with_metadata(scripted: torch.jit.ScriptModule, path: str | Path, metadata: dict) -> Path:
    """Save a scripted module to ``path`` with ``metadata`` embedded as :data:`METADATA_FILE`.

    The SHA-256 of the module's weights (:func:`~mlff_distiller.models.checkpoint.weights_sha256`)
    is added to ``metadata`` as ``weights_sha256``; :func:`load_exported` verifies it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata["weights_sha256"] = weights_sha256(scripted.state_dict())
    scripted.save(str(path), _extra_files={METADATA_FILE: json.dumps(metadata, indent=2)})
    return path


def read_metadata(path: str | Path) -> dict:
    """The metadata dict of an exported model; raises :class:`CheckpointError` if it has none."""
    return load_exported(path)[1]


def load_exported(path: str | Path):
    """The scripted module (on CPU) and metadata dict of an exported model.

    Raises :class:`CheckpointError` for missing, corrupt or foreign files, and for weights that
    fail their checksums (the archive's CRC-32, the ``weights_sha256`` of newer files) or are not finite.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not an exported model (the file is corrupt or of another kind)")
    check_archive(path)
    metadata = _archive_metadata(path)
    if metadata.get("kernel") == "fused":  # the file calls torch.ops.mlffd.painn_forces
        from ..models.kernel import load_kernel

        load_kernel()
    extra = {METADATA_FILE: ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:
        raise CheckpointError(f"{path}: corrupt or foreign TorchScript file ({type(exc).__name__})") from exc
    if not extra[METADATA_FILE]:
        raise CheckpointError(f"{path}: a TorchScript file without mlff-distiller metadata")
    metadata = json.loads(extra[METADATA_FILE])
    check_weights(module.state_dict(), path, metadata.get("weights_sha256"))
    return module, metadata


def _archive_metadata(path: Path) -> dict:
    """The metadata read straight from the archive, before torch loads it (``{}`` if absent or unreadable)."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith(f"/extra/{METADATA_FILE}")), None)
            return json.loads(archive.read(name)) if name else {}
    except (zipfile.BadZipFile, OSError, ValueError):
        return {}
