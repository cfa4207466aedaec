"""The virial of an engine that has none (OpenMM), by finite strain: W = -dE/dstrain (eV) with its error.

A five-point stencil in each strain component; its error is usually dominated by the round-off of
the energy divided by the step (eps |E| / h: with h = 1e-5 about 1e-7 of the virial of a molecule in
float64). The error estimate is, per component, the larger of the round-off bound 1.5 eps |E| / h
and the difference between the stencils with steps h and 2h (which also measures the truncation
error), combined over the components (Frobenius norm: a bound on every component in any frame). Of
the steps :data:`STRAIN_STEPS` the one with the smaller estimate is used.

>>> virial, error, step = finite_strain_virial(energy_at, energy)   # energy_at(deformation) -> eV
"""

from collections.abc import Callable, Sequence

import numpy as np

#: Strain steps h tried by the finite-difference virial (OpenMM has no virial of its own), five-point
#: stencil; the one with the smaller error estimate is used. Round-off (eps |E| / h) favours the larger,
#: an energy that bends sharply under strain (a vector feature near zero length) the smaller.
STRAIN_STEPS = (1e-5, 1e-6)
#: Round-off gain of the five-point stencil f'(0) ~ (8 (f(h) - f(-h)) - (f(2h) - f(-2h))) / 12h: the sum of
#: its weights' magnitudes, (8 + 8 + 1 + 1) / 12 (truncation error O(h^4)).
STENCIL_ROUNDING = 1.5
#: Round-off of one energy evaluation assumed by the finite-strain tolerance, in units of eps |E|.
ENERGY_ROUNDING = 1.0
#: Machine epsilon of float64 (2.2e-16).
EPS64 = float(np.finfo(np.float64).eps)


def _shear(a: int, b: int, amount: float) -> np.ndarray:
    """Deformation x_a += amount x_b (row vectors times it): keeps OpenMM's box lower-triangular."""
    deformation = np.eye(3)
    deformation[b, a] += amount
    return deformation


def _five_point(energies: dict[int, float], spacing: int, step: float) -> float:
    """dE/dstrain (eV) at zero by the five-point stencil with step ``spacing * step``; ``energies[k]``: E (eV) at k steps.

    Differences of nearby energies are exact in floating point: the only round-off is the energies' own.
    """
    near = energies[spacing] - energies[-spacing]
    far = energies[2 * spacing] - energies[-2 * spacing]
    return (8.0 * near - far) / (12.0 * spacing * step)


def finite_strain_virial(
    energy_at: Callable[[np.ndarray], float], energy: float, steps: Sequence[float] = STRAIN_STEPS, eps: float = EPS64
) -> tuple[np.ndarray, float, float]:
    """The virial W = -dE/dstrain (eV) by finite strain, a bound on its error (eV), and the strain step used.

    Parameters
    ----------
    energy_at : callable
        Energy (eV) of the structure deformed by a (3, 3) matrix (positions and cell as rows times it).
    energy : float
        Energy (eV) of the undeformed structure.
    steps : sequence of float
        Strain steps h to try (dimensionless); the one with the smallest error estimate wins.
    eps : float
        Machine epsilon of the dtype the energy is computed in (float64 unless a float32 export).

    Returns
    -------
    virial : ndarray, shape (3, 3)
        W_ab = -dE/d(strain_ab) by the five-point stencil with step h (symmetric).
    error : float
        Error estimate in eV, valid for every component in any rotated frame: the Frobenius norm of
        the per-component estimates, each the larger of the round-off bound
        STENCIL_ROUNDING * ENERGY_ROUNDING * eps * |E| / h and |W(h) - W(2h)| (the stencil with step 2h,
        whose difference from W(h) measures the truncation error too).
    step : float
        The step h of ``virial``.
    """
    return min((_finite_strain(energy_at, energy, step, eps) for step in steps), key=lambda candidate: candidate[1])


def _finite_strain(
    energy_at: Callable[[np.ndarray], float], energy: float, step: float, eps: float
) -> tuple[np.ndarray, float, float]:
    """:func:`finite_strain_virial` with one step ``step``: virial (eV), error estimate (eV), ``step``."""
    rounding = STENCIL_ROUNDING * ENERGY_ROUNDING * eps * abs(energy) / step
    virial = np.zeros((3, 3))
    estimate = np.zeros((3, 3))
    for a in range(3):
        for b in range(a, 3):
            energies = {k: energy_at(_shear(a, b, k * step)) for k in (4, 2, 1, -1, -2, -4)}
            fine = -_five_point(energies, 1, step)
            coarse = -_five_point(energies, 2, step)
            virial[a, b] = virial[b, a] = fine
            estimate[a, b] = estimate[b, a] = max(rounding, abs(fine - coarse))
    return virial, float(np.linalg.norm(estimate)), step
