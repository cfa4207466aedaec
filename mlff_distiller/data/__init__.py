"""Files that ship with the package: benchmark molecules, a water box, and trained students.

>>> from mlff_distiller.data import bundled_student, bundled_structure
>>> bundled_student("organic-standard")      # path of organic-standard.ckpt
>>> bundled_structure("aspirin")             # path of molecules/aspirin.xyz
>>> bundled_structure("water-32")            # path of systems/water-32.xyz (periodic, 96 atoms)
"""

from pathlib import Path
from typing import List

from ..errors import MLFFDError

DATA_DIR = Path(__file__).resolve().parent
STUDENTS_DIR = DATA_DIR / "students"
STRUCTURE_DIRS = (DATA_DIR / "molecules", DATA_DIR / "systems")


def student_names() -> List[str]:
    """Names of the bundled students (e.g. ``"organic-standard"``, ``"water-standard"``)."""
    return sorted(path.stem for path in STUDENTS_DIR.glob("*.ckpt"))


def structure_names() -> List[str]:
    """Names of the bundled structures: molecules (e.g. ``"aspirin"``) and periodic systems (``"water-32"``)."""
    return sorted(path.stem for folder in STRUCTURE_DIRS for path in folder.glob("*.xyz"))


def bundled_student(name: str) -> Path:
    """Path of a bundled student checkpoint, e.g. ``bundled_student("organic-tiny")``.

    Next to it lie ``<name>.metrics.json`` (test metrics), ``<name>.log.csv`` (training log) and the
    test split named in its provenance. Raises :class:`MLFFDError` listing the names for an unknown one.
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
