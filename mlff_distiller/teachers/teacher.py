"""A teacher: an ASE calculator that labels configurations with energies, forces and stress, through a cache."""

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from ..elements import check_supported
from ..errors import MLFFDError
from .cache import LabelCache, configuration_hash


class TeacherError(MLFFDError):
    """The teacher could not label a configuration (e.g. its SCF did not converge)."""


class Teacher:
    """Labels configurations with a reference ASE calculator and remembers what it has computed.

    Parameters
    ----------
    name : str
        How the teacher is called in datasets and provenance (e.g. ``"gfn2-xtb"``).
    calculator : ase.calculators.calculator.Calculator
        The reference calculator; it must provide energy (eV) and forces (eV/Å).
    supported_elements : iterable of int, optional
        Atomic numbers the teacher can handle; None when unknown (no check before calling it).
    cache : str or Path or LabelCache, optional
        SQLite file (or cache object) that keeps labels across runs. Labels are always cached in memory.
    identity : str, optional
        Namespace of the cache keys (defaults to ``name``); include settings that change the labels.

    Attributes
    ----------
    calls : int
        Number of times the calculator itself was asked (cache hits are not counted).
    """

    def __init__(
        self,
        name: str,
        calculator: Calculator,
        supported_elements: Iterable[int] | None = None,
        cache: str | Path | LabelCache | None = None,
        identity: str | None = None,
    ):
        self.name = name
        self.calculator = calculator
        self.supported_elements = None if supported_elements is None else sorted(int(z) for z in supported_elements)
        self.cache = cache if isinstance(cache, LabelCache) else LabelCache(cache)
        self.identity = identity or name
        self.calls = 0

    def __repr__(self) -> str:
        return f"Teacher({self.name!r}, calls={self.calls}, cached={len(self.cache)})"

    def check_elements(self, numbers: Iterable[int]) -> None:
        """Raise :class:`~mlff_distiller.errors.UnsupportedElementError` for elements this teacher cannot handle."""
        if self.supported_elements is not None:
            check_supported(numbers, self.supported_elements, what=f"teacher '{self.name}'")

    def key(self, atoms: Atoms) -> str:
        """Cache key of a configuration for this teacher."""
        return configuration_hash(atoms, self.identity)

    def compute(self, atoms: Atoms) -> dict:
        """Labels of one configuration, from the cache when it was computed before.

        Parameters
        ----------
        atoms : ase.Atoms
            Positions in Å; cell in Å and pbc for periodic systems.

        Returns
        -------
        dict
            ``energy`` (float, eV), ``forces`` (ndarray (N, 3), eV/Å) and, for fully periodic
            systems, ``stress`` (ndarray (6,), Voigt order xx yy zz yz xz xy, eV/Å³).
        """
        self.check_elements(atoms.numbers)
        key = self.key(atoms)
        labels = self.cache.get(key)
        if labels is not None:
            return labels
        labels = self._calculate(atoms, key)
        self.cache.put(key, labels)
        return labels

    def _calculate(self, atoms: Atoms, key: str) -> dict:
        copy = atoms.copy()
        copy.calc = self.calculator
        self.calls += 1
        try:
            labels = {
                "energy": float(copy.get_potential_energy()),
                "forces": np.array(copy.get_forces(), dtype=np.float64),
            }
            if copy.pbc.all():
                labels["stress"] = np.array(copy.get_stress(voigt=True), dtype=np.float64)
        except MLFFDError:
            raise
        except Exception as exc:  # calculators raise their own types (SCF failures, library errors)
            raise TeacherError(
                f"teacher '{self.name}' failed on configuration {key[:12]} "
                f"({copy.get_chemical_formula()}, {len(copy)} atoms): {str(exc).strip() or type(exc).__name__}"
            ) from exc
        if not np.isfinite(labels["energy"]) or not np.all(np.isfinite(labels["forces"])):
            raise TeacherError(f"teacher '{self.name}' returned non-finite labels on configuration {key[:12]}")
        return labels


class TeacherCalculator(Calculator):
    """An ASE calculator that answers through a :class:`Teacher`, so that MD driven by it is cached.

    Parameters
    ----------
    teacher : Teacher
        The teacher whose (cached) labels this calculator reports.
    """

    implemented_properties = ["energy", "forces", "stress"]

    def __init__(self, teacher: Teacher):
        super().__init__()
        self.teacher = teacher

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        labels = self.teacher.compute(self.atoms)
        self.results = {"energy": labels["energy"], "free_energy": labels["energy"], "forces": labels["forces"]}
        if "stress" in labels:
            self.results["stress"] = labels["stress"]
