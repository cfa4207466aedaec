"""Files that ship with the package: benchmark molecules, a water box, and trained students.

>>> from mlff_distiller.data import bundled_student, bundled_structure
>>> bundled_student("organic-standard")      # path of organic-standard.ckpt
>>> bundled_structure("aspirin")             # path of molecules/aspirin.xyz
>>> bundled_structure("water-32")            # path of systems/water-32.xyz (periodic, 96 atoms)
>>> resolve_structure("aspirin")             # what the CLI does with a STRUCTURE argument: a file, a bundled name or SMILES
>>> resolve_model("organic-standard")        # and with a MODEL argument: a file or a bundled student
"""

import difflib
import re
from pathlib import Path

from ..errors import CheckpointError, MLFFDError, StructureError

DATA_DIR = Path(__file__).resolve().parent
STUDENTS_DIR = DATA_DIR / "students"
STRUCTURE_DIRS = (DATA_DIR / "molecules", DATA_DIR / "systems")


def student_names() -> list[str]:
    """Names of the bundled students (e.g. ``"organic-standard"``, ``"water-standard"``)."""
    return sorted(path.stem for path in STUDENTS_DIR.glob("*.ckpt"))


def structure_names() -> list[str]:
    """Names of the bundled structures: molecules (e.g. ``"aspirin"``) and periodic systems (``"water-32"``)."""
    return sorted(path.stem for folder in STRUCTURE_DIRS for path in folder.glob("*.xyz"))


def bundled_student(name: str) -> Path:
    """Path of a bundled student checkpoint, e.g. ``bundled_student("organic-tiny")``.

    Next to it lie ``<name>.metrics.json`` (test metrics), the test split named in its provenance, and
    ``<name>.log.csv`` (training log) for a distilled student or ``<name>.refine.md`` (the loop's
    report) for one refined with ``mlffd refine``. Raises :class:`MLFFDError` listing the names for an unknown one.
    """
    path = STUDENTS_DIR / f"{name.removesuffix('.ckpt')}.ckpt"
    if not path.is_file():
        raise MLFFDError(f"no bundled student '{name}'; available: {', '.join(student_names()) or 'none'}")
    return path


def bundled_structure(name: str) -> Path:
    """Path of a bundled structure (extended XYZ, Å), e.g. ``bundled_structure("aspirin")``.

    Raises :class:`MLFFDError` listing the names for an unknown one.
    """
    for folder in STRUCTURE_DIRS:
        path = folder / f"{name.removesuffix('.xyz')}.xyz"
        if path.is_file():
            return path
    raise MLFFDError(f"no bundled structure '{name}'; available: {', '.join(structure_names())}")


#: Suffix of a file name (``.xyz``, ``.gro``, ``.ckpt``): text that ends in one and is no SMILES names a missing file.
FILE_SUFFIX = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,5}$")


def resolve_model(text: str) -> Path:
    """The model file ``text`` names: an existing path wins, else a bundled student.

    Parameters
    ----------
    text : str
        A checkpoint (.ckpt) or exported model (.pt) path, or a bundled student's name with or without
        ``.ckpt`` (``"organic-standard"``).

    Raises :class:`CheckpointError` in one line naming ``text``, the closest bundled name and all of them
    when it is neither.
    """
    if Path(text).is_file():
        return Path(text)
    if "/" not in text and text.removesuffix(".ckpt") in student_names():
        return bundled_student(text)
    raise CheckpointError(
        f"{text}: no such file, and not a bundled student; {_closest(text, student_names())}"
        f"bundled students: {', '.join(student_names())}"
    )


def resolve_structure(text: str) -> str:
    """The structure ``text`` names: an existing path wins, else a bundled structure, else a SMILES string.

    Parameters
    ----------
    text : str
        A structure file path (XYZ, PDB, SDF, ...), a bundled structure's name with or without ``.xyz``
        (``"aspirin"``, ``"water-32"``), or a SMILES string (``"CCO"``).

    Returns
    -------
    str
        The path of the file, or the SMILES string unchanged.

    Raises :class:`StructureError` in one line when ``text`` is none of these, with the closest bundled
    name and all of them; text with a file suffix (``aspirn.gro``) is reported as a missing file.
    """
    if Path(text).is_file():
        return text
    if "/" not in text and text.removesuffix(".xyz") in structure_names():
        return str(bundled_structure(text))
    from ..structures import is_smiles

    if is_smiles(text):  # "CCO.O" (ethanol and water) too; no file name parses as SMILES
        return text
    problem = "no such file" if FILE_SUFFIX.search(text) else "no such file, not a valid SMILES string"
    raise StructureError(
        f"{text}: {problem}, and not a bundled structure; {_closest(text, structure_names())}"
        f"bundled structures: {', '.join(structure_names())}"
    )


def _closest(text: str, names: list[str]) -> str:
    """``"did you mean 'aspirin'? "`` for the bundled name closest to ``text`` (suffix and folders ignored), or ``""``."""
    close = difflib.get_close_matches(Path(text).name.split(".")[0], names, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""
