"""Labelled configurations from the files users already have: extended XYZ, ASE trajectories and databases.

A frame's labels are looked up under the keys MACE, NequIP and ASE write, in order (the first
key a frame has wins, and every frame of a file must use the same key):

* energy: :data:`ENERGY_KEYS`; forces: :data:`FORCE_KEYS`; stress (periodic frames, optional):
  :data:`STRESS_KEYS`, or else stress as -virial/volume from :data:`VIRIAL_KEYS` (MACE's and
  NequIP's sign convention, as ASE's).

Each key is searched in the frame's ASE calculator results (what ``atoms.get_potential_energy()``
returns: extended XYZ ``energy=``/``forces``, ``.traj`` and database rows written with a
calculator), its ``info`` and ``arrays`` (extended XYZ header and columns such as
``REF_energy=`` and ``REF_forces``), and an ASE database row's key-value pairs and ``data``.
Reference keys come first (``REF_``, ``dft_``), then ASE's own slot, then model predictions
(``MACE_``), so a file holding both a reference and a prediction is read as the reference.

Units: ASE writes eV, eV/Å and eV/Å³ (as MACE and NequIP do); other energy and force units are
converted with :data:`mlff_distiller.units.ENERGY_UNITS` and :data:`~mlff_distiller.units.FORCE_UNITS`
(stress takes the energy unit per Å³; lengths are always Å). Which keys were read and which units
were assumed is recorded in the dataset's ``labels`` attribute and printed once to stderr.
"""

import sys
from pathlib import Path

import numpy as np
from ase import Atoms

from ..errors import MLFFDError, first_line
from ..structures import check_structure, unknown_symbol
from ..units import ENERGY_UNITS, FORCE_UNITS, unit_name
from .dataset import Dataset, DatasetError, Frame

#: Keys of a frame's energy, searched in order.
ENERGY_KEYS = ("REF_energy", "dft_energy", "DFT_energy", "energy", "total_energy", "MACE_energy")
#: Keys of a frame's forces, searched in order.
FORCE_KEYS = ("REF_forces", "dft_forces", "DFT_forces", "forces", "MACE_forces")
#: Keys of a periodic frame's stress (Voigt xx yy zz yz xz xy, or a 3x3 tensor), searched in order.
STRESS_KEYS = ("REF_stress", "dft_stress", "DFT_stress", "stress", "MACE_stress")
#: Keys of a periodic frame's virial (3x3, eV), read as stress -virial/volume when no stress key is found.
VIRIAL_KEYS = ("REF_virials", "dft_virials", "DFT_virials", "virials", "virial")
#: Suffixes read as ASE databases (besides any SQLite file).
DATABASE_SUFFIXES = {".db", ".json"}
#: The first bytes of every SQLite file.
SQLITE_MAGIC = b"SQLite format 3\x00"


def read_configurations(path: str | Path) -> list[Atoms]:
    """Every frame of an ASE-readable file (extended XYZ, ``.traj``, ASE database, PDB, ...) as ase.Atoms.

    Frames keep what the file stores with them: calculator results, ``info`` and ``arrays``, and for
    a database row its key-value pairs and data (in ``info``). A dataset of this package (HDF5) gives
    its frames' configurations, without labels.

    Raises
    ------
    DatasetError
        A missing, empty or unreadable file, or one without frames (one line, naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DatasetError(f"{path} is empty (0 bytes)")
    if is_dataset_file(path):
        return [frame.atoms() for frame in Dataset.load(path).frames]
    try:
        frames = _read_database(path) if _is_database(path) else _read_ase(path)
    except MLFFDError:
        raise
    except Exception as exc:  # ASE and sqlite raise many kinds of errors for truncated or foreign files
        symbol = unknown_symbol(exc)
        reason = f"{symbol!r} is not a chemical element" if symbol else first_line(exc)
        raise DatasetError(f"{path}: cannot read it with ASE ({reason})") from None
    if not frames:
        raise DatasetError(f"{path}: the file holds no frames")
    return frames


def read_labelled(
    path: str | Path,
    energy_unit: str | None = None,
    force_unit: str | None = None,
    energy_key: str | None = None,
    forces_key: str | None = None,
) -> Dataset:
    """Labelled frames of an extended XYZ, ``.traj`` or ASE database file, converted to eV, eV/Å and eV/Å³.

    Parameters
    ----------
    path : str or Path
        Any file :func:`read_configurations` reads.
    energy_unit : str, optional
        Unit of the stored energies (a spelling of a key of :data:`~mlff_distiller.units.ENERGY_UNITS`:
        eV, meV, kcal/mol, kJ/mol, Hartree); default eV, as ASE writes. Stress is read in this unit per Å³.
    force_unit : str, optional
        Unit of the stored forces (a spelling of a key of :data:`~mlff_distiller.units.FORCE_UNITS`:
        eV/Å, meV/Å, kcal/mol/Å, kJ/mol/Å, Hartree/Bohr); default eV/Å.
    energy_key, forces_key : str, optional
        Read exactly this key instead of searching :data:`ENERGY_KEYS` / :data:`FORCE_KEYS`.

    Returns
    -------
    Dataset
        One frame per frame of the file (kind ``"file"``, ``frame_id`` its index in the file); attributes
        ``teacher`` (where the labels came from), ``source`` (file, keys and units) and ``labels`` (the
        same in one line, which is also printed once to stderr).

    Raises
    ------
    DatasetError
        A frame without energy or forces (naming the file and frame), keys that differ between frames,
        non-finite labels, forces or stress of the wrong shape, an unreadable file, an unknown unit.
    StructureError, UnsupportedElementError
        A frame with non-finite or overlapping positions, or atoms of no chemical element.
    """
    path = Path(path)
    energy_unit, force_unit = label_units(energy_unit, force_unit)
    configurations = read_configurations(path)
    stores = [_stored_values(atoms) for atoms in configurations]
    periodic = [store if atoms.pbc.all() else {} for atoms, store in zip(configurations, stores, strict=True)]
    keys = {
        "energy": _file_key(path, stores, ENERGY_KEYS, energy_key, "energy"),
        "forces": _file_key(path, stores, FORCE_KEYS, forces_key, "forces"),
        "stress": _file_key(path, periodic, STRESS_KEYS, None, "stress", required=False),
    }
    virial_key = None if keys["stress"] else _file_key(path, periodic, VIRIAL_KEYS, None, "virial", required=False)
    energy_scale = ENERGY_UNITS[energy_unit]
    force_scale = FORCE_UNITS[force_unit]
    frames = []
    for index, (atoms, store) in enumerate(zip(configurations, stores, strict=True)):
        where = f"{path} frame {index}"
        check_structure(atoms, where)
        labels = {
            "energy": _energy(store[keys["energy"]], keys["energy"], where) * energy_scale,
            "forces": _forces(store[keys["forces"]], keys["forces"], len(atoms), where) * force_scale,
        }
        if keys["stress"] in store and atoms.pbc.all():
            labels["stress"] = _stress(store[keys["stress"]], keys["stress"], where) * energy_scale
        elif virial_key in store and atoms.pbc.all():
            labels["stress"] = -_stress(store[virial_key], virial_key, where) * energy_scale / atoms.get_volume()
        frames.append(Frame.from_labels(atoms, labels, kind="file", frame_id=index))
    source = {
        "file": path.name,
        "format": _format_name(path),
        "frames": len(frames),
        "energy_key": keys["energy"],
        "forces_key": keys["forces"],
        "stress_key": keys["stress"],
        "virial_key": virial_key,
        "energy_unit": energy_unit,
        "force_unit": force_unit,
    }
    description = describe(source)
    print(f"mlffd: {description}", file=sys.stderr)
    attrs = {"teacher": f"labels of {path.name}", "source": source, "labels": [description]}
    return Dataset(frames, attrs, path)


def label_units(energy_unit: str | None, force_unit: str | None) -> tuple[str, str]:
    """Energy and force unit names of :mod:`mlff_distiller.units` for what a user typed (None: eV, eV/Å).

    Raises :class:`DatasetError` naming the units known.
    """
    try:
        return unit_name(energy_unit or "eV", ENERGY_UNITS), unit_name(force_unit or "eV/Å", FORCE_UNITS)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None


def describe(source: dict) -> str:
    """One line saying which keys of a file were read and in which units."""
    stress = ", no stress"
    if source["stress_key"]:
        stress = f", stress from '{source['stress_key']}' in {source['energy_unit']}/Å³"
    elif source.get("virial_key"):
        stress = f", stress as -'{source['virial_key']}'/volume, virial in {source['energy_unit']}"
    count = f"{source['frames']} frame{'' if source['frames'] == 1 else 's'}"
    return (
        f"{source['file']}: {count} ({source['format']}); energy from '{source['energy_key']}' "
        f"in {source['energy_unit']}, forces from '{source['forces_key']}' in {source['force_unit']}{stress}"
    )


def is_dataset_file(path: str | Path) -> bool:
    """Whether ``path`` is an HDF5 file (by its content, whatever its suffix): a dataset of this package or none."""
    import h5py

    return Path(path).is_file() and h5py.is_hdf5(path)


def _is_database(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC or path.suffix.lower() in DATABASE_SUFFIXES


def _read_database(path: Path) -> list[Atoms]:
    import ase.db

    with ase.db.connect(str(path), serial=True) as database:
        return [row.toatoms(add_additional_information=True) for row in database.select()]


def _read_ase(path: Path) -> list[Atoms]:
    import ase.io

    return list(ase.io.read(str(path), index=":"))


def _format_name(path: Path) -> str:
    if _is_database(path):
        return "ASE database"
    from ase.io.formats import filetype

    try:
        return filetype(str(path), guess=True)
    except Exception:  # the file was read; the name of its format only labels the report
        return path.suffix.lstrip(".") or "ASE"


def _stored_values(atoms: Atoms) -> dict:
    """Every value stored with a frame by key; calculator results win over ``info``, ``info`` over ``arrays``."""
    values = {key: value for key, value in atoms.arrays.items() if key not in ("numbers", "positions")}
    for place in ("data", "key_value_pairs"):
        values.update(atoms.info.get(place) or {})
    values.update({key: value for key, value in atoms.info.items() if key not in ("data", "key_value_pairs")})
    if atoms.calc is not None:
        values.update(getattr(atoms.calc, "results", {}))
    return {key: value for key, value in values.items() if value is not None}


def _file_key(
    path: Path, stores: list[dict], keys: tuple[str, ...], given: str | None, what: str, required: bool = True
) -> str | None:
    """The key every frame of a file stores ``what`` under (``given``, or the first of ``keys`` that frames use)."""
    if given is not None:
        for index, store in enumerate(stores):
            if given not in store:
                raise DatasetError(f"{path}: frame {index} has no {what} under '{given}'")
        return given
    chosen = [next((key for key in keys if key in store), None) for store in stores]
    found = [(index, key) for index, key in enumerate(chosen) if key is not None]
    if not found:
        if not required:
            return None
        raise DatasetError(f"{path}: frame 0 has no {what} (looked for {', '.join(keys)})")
    first_index, key = found[0]
    for index, other in enumerate(chosen):
        if other is None and required:
            raise DatasetError(f"{path}: frame {index} has no {what} (looked for {', '.join(keys)})")
        if other is not None and other != key:
            raise DatasetError(
                f"{path}: mixed keys: frame {first_index} stores its {what} under '{key}', frame {index} under "
                f"'{other}'; use one key in every frame"
            )
    return key


def _numbers(value, key: str, where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: '{key}' holds {str(value)[:40]!r}, not numbers") from None
    if not np.isfinite(array).all():
        raise DatasetError(f"{where}: '{key}' holds non-finite values (NaN or infinity)")
    return array


def _energy(value, key: str, where: str) -> float:
    array = _numbers(value, key, where)
    if array.size != 1:
        raise DatasetError(f"{where}: the energy '{key}' holds {array.size} numbers, not one")
    return float(array.reshape(-1)[0])


def _forces(value, key: str, n_atoms: int, where: str) -> np.ndarray:
    array = _numbers(value, key, where)
    if array.shape != (n_atoms, 3):
        raise DatasetError(
            f"{where}: the forces '{key}' have shape {array.shape} for {n_atoms} atoms, not ({n_atoms}, 3)"
        )
    return array


def _stress(value, key: str, where: str) -> np.ndarray:
    """Voigt xx yy zz yz xz xy from a Voigt 6-vector (ASE's order) or a 3x3 tensor (flat or not); virials alike."""
    array = _numbers(value, key, where)
    if array.size == 6:
        return array.reshape(6)
    if array.size == 9:
        full = array.reshape(3, 3)
        return full[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    raise DatasetError(f"{where}: the stress '{key}' holds {array.size} numbers, not 6 (Voigt) or 9 (3x3)")
