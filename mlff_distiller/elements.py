"""Element symbols and numbers, from ASE's tables."""

from collections.abc import Iterable

from ase.data import atomic_numbers, chemical_symbols

from .errors import UnsupportedElementError

#: Elements every shipped student supports, by atomic number: H C N O F P S Cl Br I.
DEFAULT_ELEMENTS: list[int] = [1, 6, 7, 8, 9, 15, 16, 17, 35, 53]
#: Atomic numbers of the periodic table's elements (ASE's 0, "X", is a placeholder, not an element).
KNOWN = range(1, len(chemical_symbols))
#: The periodic table in words, for messages.
PERIODIC_TABLE = (
    f"the periodic table's elements, {chemical_symbols[KNOWN[0]]} (1) to {chemical_symbols[KNOWN[-1]]} ({KNOWN[-1]})"
)


def symbol(number: int) -> str:
    """Chemical symbol of an atomic number (``"Z=0"`` and the like outside the periodic table)."""
    return chemical_symbols[int(number)] if int(number) in KNOWN else f"Z={int(number)}"


def symbols(numbers: Iterable[int]) -> list[str]:
    """Chemical symbols of atomic numbers."""
    return [symbol(z) for z in numbers]


def atomic_number(name: str) -> int:
    """Atomic number of a chemical symbol (any case: ``"cl"``, ``"CL"``); :class:`UnsupportedElementError` otherwise."""
    key = str(name).strip().capitalize()
    number = atomic_numbers.get(key)
    if number is None or number not in KNOWN:
        raise UnsupportedElementError(f"'{name}' is not a chemical element; give symbols of {PERIODIC_TABLE}")
    return number


def numbers_from_symbols(names: Iterable[str]) -> list[int]:
    """Atomic numbers of chemical symbols; raises :class:`UnsupportedElementError` on unknown ones."""
    return [atomic_number(name) for name in names]


def check_known(numbers: Iterable[int], what: str = "structure") -> None:
    """Raise :class:`UnsupportedElementError` for atomic numbers outside the periodic table (ASE's X is 0)."""
    unknown = sorted(set(int(z) for z in numbers) - set(KNOWN))
    if unknown:
        names = ", ".join(f"{chemical_symbols[z]} (atomic number {z})" if z == 0 else f"Z={z}" for z in unknown)
        raise UnsupportedElementError(f"{what}: {names} is not a chemical element; give {PERIODIC_TABLE}")


def check_supported(numbers: Iterable[int], supported: Iterable[int], what: str = "the model") -> None:
    """Raise :class:`UnsupportedElementError` naming every element outside ``supported``."""
    allowed = set(int(z) for z in supported)
    missing = sorted(set(int(z) for z in numbers) - allowed)
    if missing:
        raise UnsupportedElementError(
            f"{what} does not support element(s) {', '.join(symbols(missing))}; "
            f"it supports {', '.join(symbols(sorted(allowed)))}"
        )
