"""Initial velocities of an MD run."""

import numpy as np
from openmm import unit


def maxwell_boltzmann_velocities(masses_amu: np.ndarray, temperature_K: float, seed: int, dof: int) -> np.ndarray:
    """Velocities (nm/ps) drawn from Maxwell-Boltzmann at ``temperature_K``, zero centre-of-mass momentum.

    They are rescaled so that the kinetic temperature over ``dof`` degrees of freedom is exactly
    ``temperature_K``; massless particles get zero velocity.
    """
    rng = np.random.default_rng(seed)
    kt = temperature_K * unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin)  # kJ/mol
    moving = masses_amu > 0
    velocities = np.zeros((len(masses_amu), 3))
    velocities[moving] = rng.normal(size=(int(moving.sum()), 3)) * np.sqrt(kt / masses_amu[moving])[:, None]
    momentum = (masses_amu[:, None] * velocities).sum(0)
    velocities[moving] -= momentum / masses_amu.sum()
    kinetic = 0.5 * (masses_amu[:, None] * velocities**2).sum()
    if kinetic > 0 and dof > 0:
        velocities *= np.sqrt(0.5 * dof * kt / kinetic)
    return velocities
