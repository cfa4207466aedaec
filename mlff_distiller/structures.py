"""Reading structures: files (XYZ, extended XYZ, PDB, SDF/MOL, CIF, ...) or SMILES strings, as ASE Atoms."""

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

from .errors import StructureError

#: Suffixes read with ASE; SDF/MOL files go through RDKit to keep their hydrogens and bonds.
RDKIT_SUFFIXES = {".sdf", ".mol"}


def molecule_from_smiles(smiles: str, seed: int = 0) -> Atoms:
    """A 3D molecule (Å) from a SMILES string, hydrogens added, embedded by RDKit's ETKDG and relaxed with MMFF.

    Parameters
    ----------
    smiles : str
        The molecule, e.g. ``"CC(=O)Oc1ccccc1C(=O)O"`` for aspirin.
    seed : int
        Seed of the conformer embedding (deterministic for a given seed).
    """
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise StructureError(f"'{smiles}' is not a valid SMILES string")
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    if AllChem.EmbedMolecule(mol, params) != 0:
        raise StructureError(f"RDKit could not build 3D coordinates for '{smiles}'")
    if AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMolecule(mol)
    return _atoms_from_rdkit(mol)


def _atoms_from_rdkit(mol) -> Atoms:
    numbers = [atom.GetAtomicNum() for atom in mol.GetAtoms()]
    positions = mol.GetConformer().GetPositions()
    return Atoms(numbers=numbers, positions=positions)


def is_smiles(text: str) -> bool:
    """Whether RDKit parses ``text`` as a SMILES string (no 3D embedding)."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    return bool(text.strip()) and Chem.MolFromSmiles(text) is not None


def read_structure(source: str | Path, seed: int = 0) -> Atoms:
    """A structure from a file path, a bundled structure's name (``"aspirin"``) or a SMILES string.

    ``source`` is resolved by :func:`mlff_distiller.data.resolve_structure`: an existing file wins.
    Raises :class:`StructureError` for missing or unreadable files, invalid SMILES, empty structures and
    non-finite positions. Periodic files keep their cell and periodicity.
    """
    from .data import resolve_structure

    text = resolve_structure(str(source))
    path = Path(text)
    if path.is_file():
        try:
            if path.suffix.lower() in RDKIT_SUFFIXES:
                atoms = _read_with_rdkit(path)
            else:
                atoms = read(str(path))
        except StructureError:
            raise
        except Exception as exc:  # ASE raises many kinds of parse errors
            raise StructureError(f"{path}: cannot read structure ({type(exc).__name__}: {exc})") from exc
    else:
        atoms = molecule_from_smiles(text, seed=seed)
    check_structure(atoms, str(source))
    return atoms


def _read_with_rdkit(path: Path) -> Atoms:
    from rdkit import Chem

    mol = Chem.MolFromMolFile(str(path), removeHs=False)
    if mol is None:
        raise StructureError(f"{path}: RDKit cannot parse this SDF/MOL file")
    return _atoms_from_rdkit(mol)


def check_structure(atoms: Atoms, name: str = "structure") -> None:
    """Raise :class:`StructureError` if ``atoms`` is empty, has non-finite positions or a degenerate periodic cell."""
    if len(atoms) == 0:
        raise StructureError(f"{name}: the structure has no atoms")
    if not np.all(np.isfinite(atoms.positions)):
        bad = np.where(~np.isfinite(atoms.positions).all(1))[0]
        raise StructureError(f"{name}: non-finite positions for atom(s) {', '.join(map(str, bad[:10]))}")
    if atoms.pbc.any() and abs(np.linalg.det(atoms.cell[:])) < 1e-6:
        raise StructureError(f"{name}: periodic structure with a zero-volume cell")
