"""Reading structures: files (XYZ, extended XYZ, PDB, SDF/MOL, CIF, ...) or SMILES strings, as ASE Atoms."""

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

from .elements import PERIODIC_TABLE, check_known
from .errors import StructureError, UnsupportedElementError

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
    Periodic files keep their cell and periodicity. The structure passes :func:`check_structure`.

    Raises
    ------
    StructureError
        Missing or unreadable files, invalid SMILES, and every refusal of :func:`check_structure`.
    UnsupportedElementError
        A symbol or atomic number that is no chemical element (``X``, ``Xx``).
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
            symbol = unknown_symbol(exc)
            if symbol is not None:
                raise UnsupportedElementError(
                    f"{path}: {symbol!r} is not a chemical element; give {PERIODIC_TABLE}"
                ) from None
            raise StructureError(f"{path}: cannot read structure ({type(exc).__name__}: {exc})") from exc
    else:
        atoms = molecule_from_smiles(text, seed=seed)
    check_structure(atoms, str(source))
    return atoms


def unknown_symbol(exc: Exception) -> str | None:
    """The element symbol an ASE reader failed on (it looks symbols up in a table: ``KeyError('Xx')``), or None."""
    key = exc.args[0] if isinstance(exc, KeyError) and exc.args else None
    if isinstance(key, str) and key.isalpha() and len(key) <= 3:
        return key
    return None


def _read_with_rdkit(path: Path) -> Atoms:
    from rdkit import Chem

    mol = Chem.MolFromMolFile(str(path), removeHs=False)
    if mol is None:
        raise StructureError(f"{path}: RDKit cannot parse this SDF/MOL file")
    return _atoms_from_rdkit(mol)


# -- what a structure must be before any work starts -------------------------------------------------
#: Two atoms closer than this (Å) overlap: no bond is shorter (H2's is 0.74 Å), and a model's
#: forces there are meaningless (NaN where two atoms coincide).
MIN_DISTANCE_A = 0.5
#: Largest coordinate (Å): a PDB file holds at most 9999.999, and float32 positions (OpenMM's
#: mixed precision, exported float32 models) keep only about 1e-3 Å of resolution there.
MAX_COORDINATE_A = 1e4


def check_structure(atoms: Atoms, name: str = "structure", min_distance: float = MIN_DISTANCE_A) -> None:
    """Refuse a structure no engine can simulate, in one line naming what is wrong.

    It must hold atoms, of chemical elements only (not ASE's placeholder ``X``), at finite
    coordinates within ±:data:`MAX_COORDINATE_A` Å; where periodic, its cell must be usable
    (:func:`check_cell`); and no two atoms (periodic images included) may be closer than
    ``min_distance`` Å (:data:`MIN_DISTANCE_A`).

    Raises
    ------
    StructureError
        Naming the atoms, pair and distance, or cell direction at fault.
    UnsupportedElementError
        For atomic numbers outside the periodic table.
    """
    if len(atoms) == 0:
        raise StructureError(f"{name}: the structure has no atoms")
    check_known(atoms.numbers, name)
    check_positions(atoms.positions, name)
    if atoms.pbc.any():
        check_cell(atoms.cell[:], atoms.pbc, name, min_width=min_distance)
    pair = closest_pair(atoms, min_distance)
    if pair is not None:
        i, j, distance, image = pair
        symbols = atoms.get_chemical_symbols()
        where = f"a periodic image of atom {j} ({symbols[j]})" if image else f"atom {j} ({symbols[j]})"
        raise StructureError(
            f"{name}: atom {i} ({symbols[i]}) is {distance:.3g} Å from {where}; atoms closer than "
            f"{min_distance:g} Å overlap (fix the coordinates or the cell)"
        )


def check_positions(positions: np.ndarray, name: str = "structure", limit: float = MAX_COORDINATE_A) -> None:
    """Raise :class:`StructureError` for non-finite coordinates or coordinates beyond ±``limit`` (Å, or the same unit as ``limit``)."""
    positions = np.asarray(positions, dtype=np.float64)
    bad = np.where(~np.isfinite(positions).all(1))[0]
    if len(bad):
        raise StructureError(f"{name}: non-finite positions for atom(s) {', '.join(map(str, bad[:10]))}")
    far = np.where((np.abs(positions) > limit).any(1))[0]
    if len(far):
        raise StructureError(
            f"{name}: atom(s) {', '.join(map(str, far[:10]))} lie beyond ±{limit:g} Å "
            f"(largest coordinate {np.abs(positions).max():.3g}); center the structure or fix its units"
        )


def periodic_widths(cell: np.ndarray) -> np.ndarray:
    """Distances (Å) between opposite faces of the cell spanned by the rows of ``cell`` (0 for a flat cell)."""
    cell = np.asarray(cell, dtype=np.float64)
    volume = abs(np.linalg.det(cell))
    areas = np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    return np.divide(volume, areas, out=np.zeros(3), where=areas > 0)


def check_cell(
    cell: np.ndarray,
    pbc,
    name: str = "structure",
    min_width: float = MIN_DISTANCE_A,
    right_handed: bool = True,
    requirement: str = "",
) -> None:
    """Raise :class:`StructureError` unless a periodic cell (rows in Å) is usable.

    Its vectors must be finite and span a volume (non-singular), right-handed (positive volume)
    when ``right_handed``, and the cell at least ``min_width`` Å across along every periodic
    direction (``requirement`` says why, in the message).
    """
    cell = np.asarray(cell, dtype=np.float64)
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    if not np.isfinite(cell).all():
        raise StructureError(f"{name}: the periodic cell has non-finite vectors")
    volume = float(np.linalg.det(cell))
    if abs(volume) < 1e-6 * max(1.0, float(np.abs(cell).max()) ** 3):
        raise StructureError(
            f"{name}: the periodic cell is singular (volume {abs(volume):.3g} Å^3); give three independent lattice vectors"
        )
    if right_handed and volume < 0:
        raise StructureError(
            f"{name}: the periodic cell is left-handed (negative volume {volume:.4g} Å^3); swap two lattice vectors"
        )
    widths = periodic_widths(cell)
    for axis in np.flatnonzero(pbc):
        if widths[axis] < min_width:
            why = requirement or f"atoms would overlap their own periodic images (closer than {min_width:g} Å)"
            raise StructureError(
                f"{name}: the periodic cell is {widths[axis]:.4g} Å across along {'abc'[axis]} "
                f"(between opposite faces); it must be at least {min_width:g} Å: {why}"
            )


def closest_pair(atoms: Atoms, within: float) -> tuple[int, int, float, bool] | None:
    """The closest two atoms if closer than ``within`` Å: ``(i, j, distance, through_a_periodic_image)``.

    Periodic images count. Assumes a cell that passed :func:`check_cell` with ``min_width >= within``:
    one image along each periodic direction then suffices, and no atom lies that close to its own
    image (every lattice vector is at least as long as the narrowest width). Linear in the number
    of atoms (a k-d tree).
    """
    from scipy.spatial import cKDTree

    positions = np.asarray(atoms.positions, dtype=np.float64)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    shifts = [np.zeros(3)]
    if pbc.any():
        cell = np.asarray(atoms.cell[:], dtype=np.float64)
        fractional = positions @ np.linalg.inv(cell)
        fractional[:, pbc] -= np.floor(fractional[:, pbc])
        positions = fractional @ cell
        steps = [(-1, 0, 1) if periodic else (0,) for periodic in pbc]
        shifts = [
            np.array(n, dtype=float) @ cell for n in np.array(np.meshgrid(*steps, indexing="ij")).reshape(3, -1).T
        ]
    tree = cKDTree(positions)
    best: tuple[int, int, float, bool] | None = None
    for shift in shifts:
        image = bool(np.any(shift))
        # the nearest atom of the tree to each shifted atom; without a shift, the nearest other than itself
        distances, indices = tree.query(positions + shift, k=1 if image else 2, distance_upper_bound=within)
        if not image:  # coinciding atoms may come in either order: take the column that is not the atom itself
            other = (indices[:, 0] == np.arange(len(positions))).astype(int)
            distances, indices = (
                np.take_along_axis(distances, other[:, None], 1)[:, 0],
                indices[np.arange(len(other)), other],
            )
        if not np.isfinite(distances).any():
            continue
        j = int(np.argmin(distances))
        if best is None or distances[j] < best[2]:
            best = (int(indices[j]), j, float(distances[j]), image)
    return best


def check_box_for_cutoff(cell: np.ndarray, cutoff: float, name: str = "structure", pbc=True) -> None:
    """Raise :class:`StructureError` unless a periodic cell (rows, Å) is at least ``cutoff`` Å across along every periodic direction.

    A narrower box puts an atom within the cutoff of its own periodic image: the model then sees
    a crystal of copies of each atom, which no training set of molecules or liquids holds, and the
    neighbour search (and LAMMPS's ghost atoms) grows as (cutoff / width)^3. Boxes between one and
    two cutoffs, as the bundled 9.86 Å water box with a 5 Å cutoff, are handled exactly: every image
    within the cutoff counts.
    """
    check_cell(
        cell,
        pbc,
        name,
        min_width=cutoff,
        right_handed=False,
        requirement=f"the model's cutoff is {cutoff:g} Å, and no atom may lie within it of its own periodic image",
    )


def check_for_model(atoms: Atoms, elements, cutoff: float, name: str = "structure", what: str = "the model") -> None:
    """Raise unless ``atoms`` suits a model: only its ``elements`` (atomic numbers), a periodic box at least ``cutoff`` Å across.

    Raises
    ------
    UnsupportedElementError
        Naming the elements the model lacks and those it supports.
    StructureError
        For a periodic box narrower than the cutoff (:func:`check_box_for_cutoff`).
    """
    from .elements import check_supported

    check_supported(atoms.numbers, elements, what)
    if atoms.pbc.any():
        check_box_for_cutoff(atoms.cell[:], cutoff, name, atoms.pbc)
