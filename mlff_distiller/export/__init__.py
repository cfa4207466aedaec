"""Export students to TorchScript for OpenMM (nm, kJ/mol) and LAMMPS (Å, eV), metadata embedded."""

from .metadata import METADATA_FILE, read_metadata

__all__ = ["METADATA_FILE", "read_metadata"]
