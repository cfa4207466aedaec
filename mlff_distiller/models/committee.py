"""A committee of students and its force deviation (DeePMD's model deviation), a teacher-free error signal.

Students trained on the same data from different seeds agree where the data covered the
configuration and disagree where it did not. For atom *i* and the K members' forces F_ki (eV/Å),

    σ_i = sqrt( mean_k |F_ki - mean_k F_ki|² )

and a frame is summarised by the largest σ_i (the *maximum force deviation*, the selection signal
of DP-GEN) and the mean over atoms. This module is the one definition of that formula; the MD
recorder, ``mlffd validate`` and ``mlffd refine`` use it.
"""

from collections.abc import Sequence
from pathlib import Path

import torch

import numpy as np
from ase import Atoms

from ..errors import MLFFDError
from .calculator import StudentCalculator
from .student import Student


def force_deviation(forces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest and mean per-atom force deviation of a committee, in the forces' unit (eV/Å).

    Parameters
    ----------
    forces : ndarray (K, N, 3) or (K, F, N, 3)
        Forces of K >= 2 members on N atoms (of F frames).

    Returns
    -------
    max_deviation, mean_deviation : ndarray ()  or (F,)
        max_i σ_i and mean_i σ_i, with σ_i = sqrt(mean_k |F_ki - mean_k F_ki|²).

    Raises
    ------
    MLFFDError
        With fewer than two members or a shape other than (K, [F,] N, 3).
    """
    forces = np.asarray(forces, dtype=np.float64)
    if forces.ndim not in (3, 4) or forces.shape[-1] != 3 or forces.shape[0] < 2:
        raise MLFFDError(f"committee forces must be (members >= 2, [frames,] atoms, 3), not {forces.shape}")
    spread = forces - forces.mean(axis=0)
    sigma = np.sqrt(np.mean(np.sum(spread**2, axis=-1), axis=0))  # ([F,] N)
    return sigma.max(axis=-1), sigma.mean(axis=-1)


class Committee:
    """Several students evaluated on the same configurations.

    Parameters
    ----------
    members : sequence of Student or checkpoint paths
        Two or more students supporting the same elements (typically one architecture trained from
        different seeds); the first is usually the model that drives the MD.
    dtype : torch.dtype
        Evaluation precision (float64 by default).

    Raises
    ------
    MLFFDError
        With fewer than two members.
    """

    def __init__(self, members: Sequence[Student | str | Path], dtype: torch.dtype = torch.float64) -> None:
        if len(members) < 2:
            raise MLFFDError(f"a committee needs at least two students, got {len(members)}")
        self.calculators = [StudentCalculator(member, dtype=dtype) for member in members]

    def __len__(self) -> int:
        return len(self.calculators)

    def forces(self, atoms: Atoms) -> np.ndarray:
        """Forces (K, N, 3) in eV/Å of every member on ``atoms`` (positions in Å).

        Raises
        ------
        UnsupportedElementError
            If a member does not support an element of ``atoms``.
        """
        result = []
        for calculator in self.calculators:
            calculator.calculate(atoms, ["forces"])
            result.append(calculator.results["forces"])
        return np.stack(result)

    def deviation(self, atoms: Atoms) -> tuple[float, float]:
        """Largest and mean per-atom force deviation (eV/Å) of the members on ``atoms``; see :func:`force_deviation`."""
        largest, mean = force_deviation(self.forces(atoms))
        return float(largest), float(mean)
