"""Benchmark systems: aspirin in vacuum and periodic water boxes replicated from the bundled 96-atom box."""

import numpy as np
from ase import Atoms
from ase.io import read

from ..data import bundled_structure
from ..errors import MLFFDError

#: Replications of the 96-atom water box (9.86 Å, 1 g/cm³) per lattice direction, by atom count.
WATER_REPEATS: dict[int, tuple[int, int, int]] = {
    96: (1, 1, 1),
    192: (2, 1, 1),
    768: (2, 2, 2),
    1536: (4, 2, 2),
    3072: (4, 4, 2),
    6144: (4, 4, 4),
    12288: (8, 4, 4),
    24576: (8, 8, 4),
}

#: Every system :func:`benchmark_system` knows, smallest first.
SYSTEM_NAMES: list[str] = ["aspirin"] + [f"water-{n}" for n in WATER_REPEATS]


def benchmark_system(name: str) -> Atoms:
    """The benchmark system called ``name``: ``"aspirin"`` or ``"water-N"`` (N in :data:`WATER_REPEATS`).

    Positions in Å; water boxes are periodic with the cell in Å. Raises :class:`MLFFDError` for
    an unknown name.
    """
    if name == "aspirin":
        return read(bundled_structure("aspirin"))
    if name.startswith("water-") and name[6:].isdigit() and int(name[6:]) in WATER_REPEATS:
        return read(bundled_structure("water-32")).repeat(WATER_REPEATS[int(name[6:])])
    raise MLFFDError(f"unknown benchmark system '{name}'; choose from {', '.join(SYSTEM_NAMES)}")


def number_density(atoms: Atoms) -> float:
    """Atoms per Å³: of the cell for periodic systems, of the bounding box (at least 1 Å wide) otherwise."""
    if atoms.pbc.all():
        return len(atoms) / atoms.get_volume()
    extent = np.maximum(np.ptp(atoms.positions, axis=0), 1.0)
    return len(atoms) / float(np.prod(extent))


def estimated_edges(atoms: Atoms, cutoff: float) -> int:
    """Expected number of directed neighbour pairs closer than ``cutoff`` (Å), from the density."""
    per_atom = min(len(atoms) - 1, 4.0 / 3.0 * np.pi * cutoff**3 * number_density(atoms))
    return int(len(atoms) * per_atom)
