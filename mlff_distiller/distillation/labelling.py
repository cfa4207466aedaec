"""Labelling a user's own configurations with a teacher (``mlffd sample --label FILE``).

Every configuration of the file is labelled (energy, forces and, for periodic boxes, stress) and
appended to an HDF5 dataset as it goes (kind ``"user"``, ``frame_id`` its index in the file). With
the teacher's label cache (see :func:`~mlff_distiller.teachers.load_teacher`), an interrupted run
resumes without paying twice, and a run limited to the first frames can be extended later.
"""

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from ..inputs import COUNT
from ..structures import check_structure
from ..teachers import Teacher, load_teacher
from .dataset import Dataset, Frame
from .labelled_files import read_configurations
from .sampling import FrameWriter, open_output


def label_configurations(
    source: str | Path | Sequence[Atoms],
    output: str | Path,
    teacher: Teacher | str = "gfn2-xtb",
    frames: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Dataset:
    """Label every configuration of ``source`` with ``teacher`` and write them to the HDF5 dataset ``output``.

    Parameters
    ----------
    source : str or Path or sequence of ase.Atoms
        A file ASE reads (extended XYZ, XYZ, ``.traj``, ASE database, PDB, ...), a dataset of this
        package (relabelled), or configurations (positions in Å; cell in Å for periodic boxes).
    output : str or Path
        Dataset file to write.
    teacher : Teacher or str
        The teacher, or its name for :func:`~mlff_distiller.teachers.load_teacher` (then its label
        cache is ``OUTPUT.labels.sqlite``, as ``mlffd sample`` keeps it).
    frames : int, optional
        Label only the first ``frames`` configurations (default: all).
    resume : bool
        Continue an existing ``output`` made from the same configurations by the same teacher,
        labelling only the frames it lacks (``frames`` may grow between runs).
    overwrite : bool
        Replace an existing ``output``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Dataset
        Every frame of ``output``.

    Raises
    ------
    DatasetError
        An unreadable or empty source file.
    StructureError, UnsupportedElementError
        A configuration with non-finite or overlapping positions, an unusable cell, or an element
        the teacher does not support (checked for every configuration before the teacher starts).
    OverwriteError
        An existing ``output`` without ``resume`` or ``overwrite``, or one made from other
        configurations or by another teacher.
    """
    output = Path(output)
    name = Path(source).name if isinstance(source, (str, Path)) else "configurations"
    configurations = read_configurations(source) if isinstance(source, (str, Path)) else list(source)
    if frames is not None:
        COUNT.check(frames, "frames")
    selected = configurations[:frames]
    if isinstance(teacher, str):
        teacher = load_teacher(teacher, cache=output.with_name(output.name + ".labels.sqlite"))
    for index, atoms in enumerate(selected):
        check_structure(atoms, f"{name} frame {index}")
        teacher.check_elements(atoms.numbers)
    from .. import __version__

    attrs = {
        "teacher": teacher.name,
        "settings": json.dumps({"source": name, "source_hash": _configurations_hash(configurations)}),
        "structure": name,
        "package_version": __version__,
    }
    done = open_output(output, attrs, resume, overwrite)
    writer = FrameWriter(output, done, len(selected), progress)
    try:
        for index, atoms in enumerate(selected):
            if writer.wanted(index):
                writer.add(Frame.from_labels(atoms, teacher.compute(atoms), kind="user", frame_id=index))
    finally:  # keep what was labelled when the teacher fails or the run is interrupted
        writer.close()
    return Dataset.load(output)


def _configurations_hash(configurations: Sequence[Atoms]) -> str:
    """SHA-256 of every configuration's atomic numbers, positions, cell and periodicity."""
    digest = hashlib.sha256()
    for atoms in configurations:
        for array in (atoms.numbers.astype(np.int64), atoms.positions, atoms.cell[:], atoms.pbc.astype(bool)):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
