"""Is the production at the temperature it claims, and does a thermostat sample the canonical ensemble?"""

from dataclasses import replace

import numpy as np

from ..units import BOLTZMANN_EV_PER_K
from .energies import EnergySeries
from .ensemble import Ensemble


def degrees_of_freedom(series: EnergySeries, n_atoms: int) -> tuple:
    """Degrees of freedom of the kinetic temperature, and how they were found.

    When the engine reported both kinetic energy and temperature, they are those the engine used:
    the median of 2 E_kin / (k_B T) over the rows, rounded. Otherwise 3N - 3 (centre-of-mass
    motion removed).
    """
    if series.temperature_K is not None:
        kinetic = np.asarray(series.kinetic_eV, dtype=float)
        temperature = np.asarray(series.temperature_K, dtype=float)
        usable = np.isfinite(kinetic) & np.isfinite(temperature) & (temperature > 0) & (kinetic > 0)
        if usable.any():
            dof = np.median(2.0 * kinetic[usable] / (BOLTZMANN_EV_PER_K * temperature[usable]))
            return int(round(float(dof))), "2 E_kin / (k_B T) of the engine's own columns"
    return max(3 * n_atoms - 3, 1), "3N - 3 (the engine reported no temperature)"


def with_temperatures(series: EnergySeries, n_atoms: int) -> EnergySeries:
    """The series, with temperatures 2 E_kin / (f k_B) (f = 3N - 3) when the engine stored none."""
    if series.temperature_K is not None and np.isfinite(series.temperature_K).any():
        return series
    dof, _ = degrees_of_freedom(series, n_atoms)
    return replace(series, temperature_K=2.0 * np.asarray(series.kinetic_eV, dtype=float) / (dof * BOLTZMANN_EV_PER_K))


def temperature_figures(series: EnergySeries, n_atoms: int, ensemble: Ensemble, end_ps: float | None = None) -> dict:
    """Temperature of the production against the target; kinetic-energy fluctuation against the canonical one.

    Parameters
    ----------
    series : EnergySeries
        The run's energies (eV) and temperatures (K; computed from the kinetic energy over the
        degrees of freedom when the engine gave none).
    n_atoms : int
        Atoms of the whole system.
    ensemble : Ensemble
        The run's ensemble, target temperature and production start.
    end_ps : float, optional
        Only rows strictly before this time (ps) count (a failed run's intact part, up to the
        stability analysis' ``failure_from_ps``). None: every row of the production.

    Returns
    -------
    dict
        ``temperature_mean_K`` and ``temperature_std_K`` over the production (before ``end_ps``);
        ``target_temperature_K`` (NaN when unknown); ``temperature_deviation_percent`` = 100
        (T_mean - T_target) / T_target; ``kinetic_variance_ratio`` = var(E_kin) / ((f/2) (k_B
        T_target)^2), the canonical value being 1 (thermostatted runs only: NaN in NVE, where the
        kinetic energy does not fluctuate canonically); ``nve_scatter_percent`` = 100 / sqrt(f), the
        relative spread of an NVE run's mean temperature over canonical starts (harmonic limit:
        E_tot ~ Gamma(f, k_B T), <E_kin> = E_tot / 2; NaN for thermostatted runs); ``degrees_of_freedom`` f and
        ``degrees_of_freedom_source``; ``production_start_ps``; ``n_samples``; ``measured_until_ps`` (the
        last row's time, NaN without one).
    """
    production = with_temperatures(series, n_atoms).since(ensemble.production_start_ps).before(end_ps)
    dof, dof_source = degrees_of_freedom(series, n_atoms)
    kinetic = np.asarray(production.kinetic_eV, dtype=float)
    temperature = np.asarray(production.temperature_K, dtype=float)
    temperature = temperature[np.isfinite(temperature)]
    kinetic = kinetic[np.isfinite(kinetic)]
    nan = float("nan")
    target = ensemble.target_temperature_K if ensemble.target_temperature_K else nan
    out = {
        "temperature_mean_K": float(temperature.mean()) if len(temperature) else nan,
        "temperature_std_K": float(temperature.std()) if len(temperature) else nan,
        "target_temperature_K": target,
        "degrees_of_freedom": dof,
        "degrees_of_freedom_source": dof_source,
        "production_start_ps": float(ensemble.production_start_ps),
        "n_samples": int(len(kinetic)),
        "measured_until_ps": float(production.time_ps[-1]) if len(production) else nan,
    }
    out["temperature_deviation_percent"] = 100.0 * (out["temperature_mean_K"] - target) / target
    out["kinetic_variance_ratio"] = canonical_variance_ratio(kinetic, dof, target) if ensemble.thermostatted else nan
    out["nve_scatter_percent"] = nan if ensemble.thermostatted else 100.0 / np.sqrt(dof)
    return out


def canonical_variance_ratio(kinetic_eV: np.ndarray, dof: int, temperature_K: float) -> float:
    """var(E_kin) over its canonical value (f/2) (k_B T)^2 for f degrees of freedom at ``temperature_K`` (K).

    NaN with fewer than three samples or no temperature.
    """
    kinetic_eV = np.asarray(kinetic_eV, dtype=float)
    if len(kinetic_eV) < 3 or not temperature_K == temperature_K:
        return float("nan")
    kt = BOLTZMANN_EV_PER_K * temperature_K
    return float(kinetic_eV.var(ddof=1) / (0.5 * dof * kt * kt))


def temperature_note(figures: dict, ensemble: Ensemble) -> str | None:
    """A sentence for the report when the production's temperature could not be judged."""
    if figures["target_temperature_K"] != figures["target_temperature_K"]:
        mean = figures["temperature_mean_K"]
        return "no target temperature is known for this run (pass --temperature): " + (
            f"the mean temperature {mean:.1f} K is reported but not judged" if mean == mean else "none is judged"
        )
    return None
