"""Element symbols and numbers, from ASE's tables."""

from collections.abc import Iterable

from ase.data import atomic_numbers, chemical_symbols

from .errors import UnsupportedElementError

#: Elements every shipped student supports, by atomic number: H C N O F P S Cl Br I.
DEFAULT_ELEMENTS: list[int] = [1, 6, 7, 8, 9, 15, 16, 17, 35, 53]


def symbols(numbers: Iterable[int]) -> list[str]:
    """Chemical symbols of atomic numbers."""
    return [chemical_symbols[int(z)] for z in numbers]


def numbers_from_symbols(names: Iterable[str]) -> list[int]:
    """Atomic numbers of chemical symbols; raises :class:`UnsupportedElementError` on unknown ones."""
    out = []
    for name in names:
        key = name.strip().capitalize()
        if key not in atomic_numbers:
            raise UnsupportedElementError(f"'{name}' is not a chemical element")
        out.append(atomic_numbers[key])
    return out


def check_supported(numbers: Iterable[int], supported: Iterable[int], what: str = "the model") -> None:
    """Raise :class:`UnsupportedElementError` naming every element outside ``supported``."""
    allowed = set(int(z) for z in supported)
    missing = sorted(set(int(z) for z in numbers) - allowed)
    if missing:
        raise UnsupportedElementError(
            f"{what} does not support element(s) {', '.join(symbols(missing))}; "
            f"it supports {', '.join(symbols(sorted(allowed)))}"
        )
