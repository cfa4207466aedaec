"""Labelled configurations in an HDF5 file a user can open with h5py.

Layout (one file, frames of any size; atom-wise arrays are concatenated over frames)::

    /energies      (F,)      float64  eV, teacher energy per frame
    /n_atoms       (F,)      int64    atoms per frame; frame i owns atom rows offsets[i]:offsets[i+1]
    /cells         (F, 3, 3) float64  Å, lattice vectors as rows (zeros for molecules)
    /pbc           (F, 3)    bool
    /stress        (F, 6)    float64  eV/Å³, Voigt xx yy zz yz xz xy (NaN when not labelled)
    /kinds         (F,)      str      how the frame was made ("md", "random", "normal-mode", ...)
    /temperatures  (F,)      float64  K, sampling temperature (NaN when none)
    /frame_ids     (F,)      int64    index in the sampling plan (for resuming)
    /positions     (A, 3)    float64  Å
    /forces        (A, 3)    float64  eV/Å
    /numbers       (A,)      int64    atomic numbers

File attributes: ``format``, ``units`` (JSON), ``teacher``, ``settings`` (JSON), ``seed``,
``package_version``. Frames are committed by writing ``energies`` last, so a file cut short by an
interruption is read up to its last complete frame.

:meth:`Dataset.load` also reads labelled frames from extended XYZ, ASE ``.traj`` and ASE database
files (:mod:`~mlff_distiller.distillation.labelled_files`).
"""

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from ase import Atoms

from ..errors import MLFFDError, first_line

#: Written into every dataset file.
FORMAT_NAME = "mlff-distiller-dataset"
#: Units of every dataset.
UNITS = {"length": "angstrom", "energy": "eV", "force": "eV/angstrom", "stress": "eV/angstrom^3", "temperature": "K"}

FRAME_ARRAYS = {
    "n_atoms": ((), np.int64),
    "cells": ((3, 3), np.float64),
    "pbc": ((3,), bool),
    "stress": ((6,), np.float64),
    "kinds": ((), h5py.string_dtype()),
    "temperatures": ((), np.float64),
    "frame_ids": ((), np.int64),
}
ATOM_ARRAYS = {"positions": ((3,), np.float64), "forces": ((3,), np.float64), "numbers": ((), np.int64)}
#: Suffixes of HDF5 files: always read as datasets of this package, never with ASE.
HDF5_SUFFIXES = {".h5", ".hdf5"}


class DatasetError(MLFFDError):
    """A dataset file that is missing, empty, foreign or inconsistent."""


@dataclass
class Frame:
    """One labelled configuration.

    Attributes
    ----------
    numbers : ndarray (N,) int
        Atomic numbers.
    positions : ndarray (N, 3)
        Å.
    energy : float
        eV.
    forces : ndarray (N, 3)
        eV/Å.
    cell : ndarray (3, 3)
        Å, rows are lattice vectors; zeros for a molecule.
    pbc : ndarray (3,) bool
    stress : ndarray (6,)
        eV/Å³, NaN when not labelled.
    kind : str
        How the frame was made.
    temperature : float
        Sampling temperature in K (NaN when none).
    frame_id : int
        Index in the sampling plan.
    """

    numbers: np.ndarray
    positions: np.ndarray
    energy: float
    forces: np.ndarray
    cell: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    pbc: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=bool))
    stress: np.ndarray = field(default_factory=lambda: np.full(6, np.nan))
    kind: str = "unknown"
    temperature: float = float("nan")
    frame_id: int = -1

    @classmethod
    def from_labels(
        cls, atoms: Atoms, labels: dict, kind: str = "unknown", temperature: float = float("nan"), frame_id: int = -1
    ) -> "Frame":
        """A frame from an ASE configuration and a teacher's labels (see :meth:`Teacher.compute`)."""
        return cls(
            numbers=np.array(atoms.numbers, dtype=np.int64),
            positions=np.array(atoms.positions, dtype=np.float64),
            energy=float(labels["energy"]),
            forces=np.array(labels["forces"], dtype=np.float64),
            cell=np.array(atoms.cell[:], dtype=np.float64) if atoms.pbc.any() else np.zeros((3, 3)),
            pbc=np.array(atoms.pbc, dtype=bool),
            stress=np.array(labels.get("stress", np.full(6, np.nan)), dtype=np.float64),
            kind=kind,
            temperature=float(temperature),
            frame_id=int(frame_id),
        )

    def atoms(self) -> Atoms:
        """The configuration as ASE Atoms (without labels)."""
        return Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)


class Dataset:
    """Labelled frames held in memory, read from and appended to HDF5 files.

    Parameters
    ----------
    frames : list of Frame
    attrs : dict
        Metadata (teacher, settings, seed, package version).
    path : Path, optional
        File the frames were read from.
    """

    def __init__(self, frames: list[Frame] | None = None, attrs: dict | None = None, path: Path | None = None):
        self.frames = list(frames or [])
        self.attrs = dict(attrs or {})
        self.path = path

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> Frame:
        return self.frames[index]

    @property
    def elements(self) -> list[int]:
        """Sorted atomic numbers present in the dataset."""
        return sorted({int(z) for frame in self.frames for z in frame.numbers})

    @property
    def atom_count(self) -> int:
        """Atoms summed over frames."""
        return int(sum(len(frame.numbers) for frame in self.frames))

    def subset(self, indices: Iterable[int]) -> "Dataset":
        """A dataset of the frames at ``indices`` (same metadata)."""
        return Dataset([self.frames[int(i)] for i in indices], self.attrs, self.path)

    def split(
        self, val_fraction: float, test_fraction: float, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Random train, validation and test frame indices (disjoint, each sorted), reproducible with ``seed``."""
        if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
            raise DatasetError("validation and test fractions must be in [0, 1) and sum to less than 1")
        order = np.random.default_rng(seed).permutation(len(self))
        n_test = int(round(test_fraction * len(self)))
        n_val = int(round(val_fraction * len(self)))
        test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
        if len(train) == 0:
            raise DatasetError(f"{len(self)} frames leave nothing to train on after the validation and test splits")
        return np.sort(train), np.sort(val), np.sort(test)

    def content_hash(self) -> str:
        """SHA-256 of every frame's numbers, positions, cell, pbc, energy and forces (metadata excluded)."""
        digest = hashlib.sha256()
        for frame in self.frames:
            for array in (
                frame.numbers.astype(np.int64),
                frame.positions,
                frame.cell,
                frame.pbc.astype(bool),
                np.array([frame.energy]),
                frame.forces,
            ):
                digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    @classmethod
    def load(
        cls,
        paths: str | Path | Sequence[str | Path],
        energy_unit: str | None = None,
        force_unit: str | None = None,
        energy_key: str | None = None,
        forces_key: str | None = None,
    ) -> "Dataset":
        """Frames of one or several files, in order; metadata of the first.

        Each file is a dataset of this package (HDF5, recognised by its content) or labelled frames
        in a file ASE reads: extended XYZ, ``.traj``, an ASE database (see
        :func:`~mlff_distiller.distillation.labelled_files.read_labelled`, whose keys and units
        are recorded in the attribute ``labels``, one line per such file).

        Parameters
        ----------
        paths : path or sequence of paths
        energy_unit, force_unit : str, optional
            Units of the energies and forces stored in the ASE-readable files (default eV and eV/Å,
            as ASE writes): eV, meV, kcal/mol, kJ/mol, Hartree; eV/Å, meV/Å, kcal/mol/Å, kJ/mol/Å,
            Hartree/Bohr. A dataset of this package is always in eV and eV/Å.
        energy_key, forces_key : str, optional
            Read the ASE-readable files' labels under exactly these keys (default: the first of
            :data:`~mlff_distiller.distillation.labelled_files.ENERGY_KEYS` and ``FORCE_KEYS`` found).

        Raises :class:`DatasetError` for missing, foreign, empty or inconsistent files.
        """
        from .labelled_files import is_dataset_file, label_units, read_labelled

        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        units = label_units(energy_unit, force_unit)
        parts = []
        for path in paths:
            path = Path(path)
            if not path.is_file():
                raise DatasetError(f"{path}: no such dataset file")
            if is_dataset_file(path) or path.suffix.lower() in HDF5_SUFFIXES:
                if units != ("eV", "eV/Å"):
                    raise DatasetError(
                        f"{path} is a dataset of this package, in eV and eV/Å; energy and force units "
                        f"({units[0]}, {units[1]}) apply to extended XYZ, .traj and ASE database files only"
                    )
                part = cls(*_read(path), path)
            else:
                part = read_labelled(path, *units, energy_key=energy_key, forces_key=forces_key)
            if not part.frames:
                raise DatasetError(f"{path}: the dataset has no labelled frames")
            parts.append(part)
        return cls.concatenate(parts)

    @classmethod
    def concatenate(cls, parts: Sequence["Dataset"]) -> "Dataset":
        """The frames of ``parts`` in order, with the first part's metadata and the parts' ``labels`` lines
        (how the labels of each file ASE read were found: keys and units), each once."""
        attrs = dict(parts[0].attrs) if parts else {}
        labels = list(dict.fromkeys(line for part in parts for line in part.attrs.get("labels", [])))
        if labels:
            attrs["labels"] = labels
        frames = [frame for part in parts for frame in part.frames]
        return cls(frames, attrs, parts[0].path if len(parts) == 1 else None)

    def save(self, path: str | Path) -> Path:
        """Write all frames to a new file ``path`` (replacing it)."""
        path = Path(path)
        if path.exists():
            path.unlink()
        create(path, self.attrs)
        append(path, self.frames)
        return path


def create(path: str | Path, attrs: dict) -> None:
    """Create an empty dataset file with metadata ``attrs`` (JSON-serialisable values)."""
    with h5py.File(path, "w") as handle:
        handle.attrs["format"] = FORMAT_NAME
        handle.attrs["units"] = json.dumps(UNITS)
        for key, value in attrs.items():
            handle.attrs[key] = value if isinstance(value, (str, int, float)) else json.dumps(value)
        for name, (shape, dtype) in {**FRAME_ARRAYS, **ATOM_ARRAYS}.items():
            handle.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype, chunks=True)
        handle.create_dataset("energies", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=True)


def append(path: str | Path, frames: Sequence[Frame]) -> None:
    """Append ``frames`` to an existing dataset file; ``energies`` is written last as the commit marker."""
    if not frames:
        return
    with h5py.File(path, "a") as handle:
        n_frames = _complete_frames(handle)
        n_atoms = int(np.sum(handle["n_atoms"][:n_frames]))
        new_atoms = sum(len(f.numbers) for f in frames)
        atom_values = {
            "positions": np.concatenate([f.positions for f in frames]),
            "forces": np.concatenate([f.forces for f in frames]),
            "numbers": np.concatenate([f.numbers for f in frames]),
        }
        for name, values in atom_values.items():
            handle[name].resize(n_atoms + new_atoms, axis=0)
            handle[name][n_atoms:] = values
        frame_values = {
            "n_atoms": [len(f.numbers) for f in frames],
            "cells": np.stack([f.cell for f in frames]),
            "pbc": np.stack([f.pbc for f in frames]),
            "stress": np.stack([f.stress for f in frames]),
            "kinds": [f.kind for f in frames],
            "temperatures": [f.temperature for f in frames],
            "frame_ids": [f.frame_id for f in frames],
        }
        for name, values in frame_values.items():
            handle[name].resize(n_frames + len(frames), axis=0)
            handle[name][n_frames:] = values
        handle["energies"].resize(n_frames + len(frames), axis=0)
        handle["energies"][n_frames:] = [f.energy for f in frames]
        handle.flush()


def read_attrs(path: str | Path) -> dict:
    """Metadata attributes of a dataset file (JSON values decoded); :class:`DatasetError` for a foreign or damaged file."""
    try:
        with h5py.File(path, "r") as handle:
            _check_format(handle, Path(path))
            return _attrs(handle)
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable dataset file ({first_line(exc)})") from None


def stored_frame_ids(path: str | Path) -> list[int]:
    """Plan indices of the complete frames in a dataset file; :class:`DatasetError` for a damaged one."""
    try:
        with h5py.File(path, "r") as handle:
            return [int(i) for i in handle["frame_ids"][: _complete_frames(handle)]]
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable dataset file ({first_line(exc)})") from None


def _attrs(handle: h5py.File) -> dict:
    out = {}
    for key, value in handle.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, str) and value[:1] in "{[":
            value = json.loads(value)
        out[key] = value.item() if isinstance(value, np.generic) else value
    return out


def _complete_frames(handle: h5py.File) -> int:
    return min(len(handle["energies"]), *(len(handle[name]) for name in FRAME_ARRAYS))


def _check_format(handle: h5py.File, path: Path) -> None:
    if handle.attrs.get("format") != FORMAT_NAME:
        raise DatasetError(f"{path}: not an mlff-distiller dataset (no '{FORMAT_NAME}' format attribute)")


def _read(path: Path) -> tuple[list[Frame], dict]:
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with handle:
        _check_format(handle, path)
        n_frames = _complete_frames(handle)
        counts = handle["n_atoms"][:n_frames]
        offsets = np.concatenate([[0], np.cumsum(counts)])
        data = {name: handle[name][: offsets[-1]] for name in ATOM_ARRAYS}
        energies = handle["energies"][:n_frames]
        cells, pbc, stress = handle["cells"][:n_frames], handle["pbc"][:n_frames], handle["stress"][:n_frames]
        kinds = [k.decode() if isinstance(k, bytes) else str(k) for k in handle["kinds"][:n_frames]]
        temperatures, frame_ids = handle["temperatures"][:n_frames], handle["frame_ids"][:n_frames]
        attrs = _attrs(handle)
    frames = [
        Frame(
            numbers=data["numbers"][a:b],
            positions=data["positions"][a:b],
            energy=float(energies[i]),
            forces=data["forces"][a:b],
            cell=cells[i],
            pbc=pbc[i],
            stress=stress[i],
            kind=kinds[i],
            temperature=float(temperatures[i]),
            frame_id=int(frame_ids[i]),
        )
        for i, (a, b) in enumerate(zip(offsets[:-1], offsets[1:], strict=False))
    ]
    return frames, attrs
