"""Which atoms a verdict judges: the whole system, or the student's atoms of an ML/MM run (``--select``)."""

from dataclasses import dataclass, field

from ..errors import TrajectoryError

#: Residue names of water models (a solvent a classical force field usually handles in ML/MM).
WATER_RESIDUES = {"HOH", "WAT", "SOL", "TIP3", "TIP4", "TIP5", "T3P", "T4P", "SPC", "H2O"}


@dataclass
class Selection:
    """The atoms judged, and how they were chosen.

    Attributes
    ----------
    atoms : MDAnalysis.AtomGroup
        The atoms judged for force fidelity, stability and structure.
    expression : str or None
        The MDAnalysis selection (None: every atom).
    notes : list of str
        Sentences for the report.
    """

    atoms: object
    expression: str | None
    notes: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        """Whether only part of the system is judged."""
        return self.atoms.n_atoms < self.atoms.universe.atoms.n_atoms

    def describe(self) -> dict:
        """``report.json``'s ``input.selection``."""
        return {
            "expression": self.expression,
            "n_atoms": int(self.atoms.n_atoms),
            "n_total": int(self.atoms.universe.atoms.n_atoms),
            "forces": (
                "student and teacher evaluated on the selected atoms alone, in vacuum" if self.partial else "every atom"
            ),
        }


def select_atoms(universe, expression: str | None, from_mlffd: bool = False) -> Selection:
    """The atoms to judge.

    Parameters
    ----------
    universe : MDAnalysis.Universe
        The run.
    expression : str, optional
        An MDAnalysis selection (``"resname LIG"``, ``"not resname HOH"``, ``"all"``).
    from_mlffd : bool
        Whether ``mlffd md`` wrote the run (its student acts on every atom).

    Raises
    ------
    TrajectoryError
        An invalid or empty selection; a solute in water with no selection, where the student
        may have acted on the solute alone (an ML/MM run): say which atoms with ``--select``.
    """
    if expression is None:
        if not from_mlffd:
            _refuse_mixed_system(universe)
        return Selection(universe.atoms, None)
    try:
        atoms = universe.select_atoms(expression)
    except Exception as exc:  # MDAnalysis raises SelectionError, ValueError, KeyError... for bad selections
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrajectoryError(f"--select '{expression}' is not a valid MDAnalysis selection: {text}") from None
    if atoms.n_atoms == 0:
        raise TrajectoryError(f"--select '{expression}' selects no atom of the {universe.atoms.n_atoms}")
    selection = Selection(atoms, expression)
    if selection.partial:
        selection.notes.append(
            f"Only the {atoms.n_atoms} atoms selected by '{expression}' (of {universe.atoms.n_atoms}) are judged for force "
            "fidelity and stability; student and teacher are evaluated on them alone, in vacuum. Energy conservation "
            "and temperature are those of the whole system."
        )
    return selection


def _refuse_mixed_system(universe) -> None:
    """A solute among water molecules: the student may have seen the solute only, so ask which atoms."""
    resnames = getattr(universe.atoms, "resnames", None)
    if resnames is None:
        return
    water = sum(1 for residue in universe.residues if str(residue.resname).upper() in WATER_RESIDUES)
    other = [str(r.resname) for r in universe.residues if str(r.resname).upper() not in WATER_RESIDUES]
    if water and other:
        names = ", ".join(sorted(set(other))[:5])
        raise TrajectoryError(
            f"this system holds {water} water molecules and other residues ({names}): if the student acted on part of "
            f'it (ML/MM), pass its atoms with --select (e.g. --select "resname {sorted(set(other))[0]}"); '
            "to judge every atom, --select all"
        )
