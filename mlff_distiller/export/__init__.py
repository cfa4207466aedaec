"""Export students to TorchScript for OpenMM (nm, kJ/mol) and LAMMPS (Å, eV), metadata embedded.

:data:`EXPORTERS` maps an engine name to its export function; ``mlffd export --engine``
takes its choices from it.
"""

from collections.abc import Callable

from .lammps import LammpsStudent, export_lammps, lammps_module
from .metadata import (
    ENGINE_UNITS,
    METADATA_FILE,
    PRECISIONS,
    build_metadata,
    load_exported,
    read_metadata,
    save_with_metadata,
)
from .openmm import OpenMMStudent, export_openmm, openmm_module
from .verify import ExportVerificationError

#: Engine name -> export function
#: ``f(checkpoint, output, *, precision="float64", periodic=True, overwrite=False, topology=None) -> Path``
#: (``mlffd export`` passes ``topology`` only when given); each writes its metadata with
#: :func:`build_metadata` / :func:`save_with_metadata` and verifies the file before returning.
EXPORTERS: dict[str, Callable] = {"openmm": export_openmm, "lammps": export_lammps}

__all__ = [
    "ENGINE_UNITS",
    "EXPORTERS",
    "ExportVerificationError",
    "LammpsStudent",
    "METADATA_FILE",
    "OpenMMStudent",
    "PRECISIONS",
    "build_metadata",
    "export_lammps",
    "export_openmm",
    "lammps_module",
    "load_exported",
    "openmm_module",
    "read_metadata",
    "save_with_metadata",
]
