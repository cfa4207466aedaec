"""Energy conservation of an NVE run: drift rate, drift-to-fluctuation ratio, classic relative drift."""

from dataclasses import replace

import numpy as np
from MDAnalysis.analysis.base import AnalysisBase
from MDAnalysis.lib.distances import minimize_vectors

from ..errors import TrajectoryError
from ..units import EV_TO_MEV
from .energies import EnergySeries
from .temperature import with_temperatures
from .trajectory import ENERGY_OBSERVABLES, frame_box, observable_scale

#: Fewest finite energy rows a drift is fitted to; with fewer, every drift figure is NaN (not measured).
MIN_FIT_ROWS = 3
#: A failed run's drift (the rows before its first stability failure) is judged only over at least this many energy
#: rows (count): a slope and a kinetic-energy spread of a handful of rows are noise, not the model's drift.
MIN_ROWS_BEFORE_FAILURE = 10
#: ... and only when those rows reach at least this fraction (dimensionless, of the production time in ps: the one
#: requested, else the one written) past the production's start: a few fs of a 10 ps run say nothing of its drift.
MIN_PRODUCTION_FRACTION_BEFORE_FAILURE = 0.1
#: The figures of a drift fit: NaN (not measured) when there is no fit, or none worth judging.
FIT_FIGURES = (
    "slope_meV_per_atom_per_ps",
    "drift_to_fluctuation",
    "relative_drift_percent",
    "max_relative_deviation_percent",
    "rms_fluctuation_meV_per_atom",
    "fit_intercept_eV",
    "fit_start_ps",
    "fit_end_ps",
    "duration_ps",
    "fit_slope_eV_per_ps",
)


class EnergyDrift(AnalysisBase):
    """Energy conservation of an NVE trajectory (or of a thermostatted one's conserved quantity).

    Energies come from the trajectory's H5MD observables (``potential_energy``,
    ``kinetic_energy``, eV) or from an :class:`EnergySeries` read from an OpenMM CSV or a
    LAMMPS log. Figures (in ``results``):

    - ``slope_meV_per_atom_per_ps``: least-squares slope of the total energy against time
      after the warm-up window, divided by the number of atoms.
    - ``drift_to_fluctuation``: |slope| x duration / std(kinetic energy), over the window
      after warm-up (dimensionless; below 1 the drift is smaller than the thermal noise).
    - ``relative_drift_percent``: 100 (E[end] - E[0]) / |E[0]| over the whole run, and
      ``max_relative_deviation_percent``: 100 max|E - E[0]| / |E[0]|.
    - ``rms_fluctuation_meV_per_atom``: standard deviation of the total energy after warm-up, per atom.
    - ``com_drift_A``: largest displacement of the centre of mass from its first position (Å),
      accumulated from minimum-image displacements between frames.
    - ``temperature_mean_K``, ``temperature_std_K`` (over the production).
    - ``measured_until_ps``: time of the last energy row the figures cover; ``n_rows``: the finite rows they cover.

    The figures cover the production only (from ``start_ps``, the end of an equilibration), and
    of a run that failed only the rows before ``end_ps`` (the stability analysis'
    ``failure_from_ps``): the energy of an exploded molecule says nothing about the model's drift;
    with ``conserved=True`` the quantity a thermostatted integrator conserves (LAMMPS
    ``econserve``) stands for the total energy, when the source stored it.

    Parameters
    ----------
    atomgroup : AtomGroup or Universe
        The whole system (energies are divided by its atom count).
    energies : EnergySeries, optional
        Energies from a file; by default the trajectory's H5MD observables.
    warmup_fraction : float
        Fraction of the production's time span discarded before fitting the drift (default 0.2).
    start_ps : float
        Start of the production in ps (default 0: the whole run).
    conserved : bool
        Judge the stored conserved quantity instead of the total energy (thermostatted runs).
    end_ps : float, optional
        Rows at or after this time (ps) are left out of every figure (default None: none are).
    """

    def __init__(
        self,
        atomgroup,
        energies: EnergySeries | None = None,
        warmup_fraction: float = 0.2,
        start_ps: float = 0.0,
        conserved: bool = False,
        end_ps: float | None = None,
        **kwargs,
    ):
        self._ag = atomgroup.atoms
        super().__init__(self._ag.universe.trajectory, **kwargs)
        if not 0.0 <= warmup_fraction < 1.0:
            raise ValueError("warmup_fraction must lie in [0, 1)")
        self.energies = energies
        self.warmup_fraction = warmup_fraction
        self.start_ps = float(start_ps)
        self.conserved = conserved
        self.end_ps = end_ps
        self.full_series: EnergySeries | None = None

    def _prepare(self):
        data = self._trajectory.ts.data
        self._from_observables = self.energies is None
        if self._from_observables and not all(k in data for k in ENERGY_OBSERVABLES):
            raise TrajectoryError(
                "this trajectory stores no energies: EnergyDrift needs H5MD observables potential_energy and "
                "kinetic_energy (written by mlffd md), or an energy file (OpenMM StateDataReporter CSV with "
                "time, potential and kinetic energy, or a LAMMPS log) passed with --energies"
            )
        if self._from_observables:
            universe = self._ag.universe
            self._scales = {k: observable_scale(universe, k) for k in ENERGY_OBSERVABLES}
        self._masses = self._ag.masses.astype(np.float64)
        self._times = []
        self._com = []
        self._rows = []
        self._previous = None
        self._displacement = np.zeros(3)

    def _single_frame(self):
        ts = self._ts
        positions = self._ag.positions.astype(np.float64)
        if self._previous is not None:
            step = positions - self._previous
            if frame_box(ts) is not None:
                step = minimize_vectors(step.astype(np.float32), ts.dimensions).astype(np.float64)
            self._displacement += self._masses @ step / self._masses.sum()
        self._previous = positions
        self._com.append(self._displacement.copy())
        self._times.append(float(ts.time))
        if self._from_observables:
            data = ts.data
            potential = float(data["potential_energy"]) * self._scales["potential_energy"]
            kinetic = float(data["kinetic_energy"]) * self._scales["kinetic_energy"]
            temperature = float(data["temperature"]) if "temperature" in data else np.nan
            self._rows.append((float(ts.time), potential, kinetic, potential + kinetic, temperature))

    def _series(self) -> EnergySeries:
        """The energies as the source gave them (eV, ps)."""
        if self._from_observables:
            rows = np.array(self._rows, dtype=float).reshape(-1, 5)
            series = EnergySeries(rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4], "H5MD observables, eV")
        else:
            series = self.energies
        return series

    def _conclude(self):
        self.full_series = self._series()
        series = with_temperatures(self.full_series, self._ag.n_atoms).since(self.start_ps)
        if self.conserved and series.conserved_eV is not None:
            series = replace(series, total_eV=series.conserved_eV, source=series.source + ", conserved quantity")
        n_atoms = self._ag.n_atoms
        self.results.n_atoms = n_atoms
        self.results.source = series.source
        self.results.time_ps = series.time_ps
        self.results.potential_eV = series.potential_eV
        self.results.kinetic_eV = series.kinetic_eV
        self.results.total_eV = series.total_eV
        self.results.temperature_K = series.temperature_K
        com = np.array(self._com).reshape(-1, 3)
        self.results.com_time_ps = np.array(self._times)
        self.results.com_displacement_A = com
        self.results.com_drift_A = float(np.linalg.norm(com, axis=1).max()) if len(com) else float("nan")
        self.results.update(drift_figures(series, n_atoms, self.warmup_fraction, self.end_ps))


def drift_figures(
    series: EnergySeries, n_atoms: int, warmup_fraction: float = 0.2, end_ps: float | None = None
) -> dict:
    """Drift figures of an energy series; see :class:`EnergyDrift` for their definitions.

    Parameters
    ----------
    series : EnergySeries
        Energies in eV against time in ps.
    n_atoms : int
        Number of atoms the energies belong to.
    warmup_fraction : float
        Fraction of the time span discarded before the fit (of the rows before ``end_ps``).
    end_ps : float, optional
        Only rows strictly before this time (ps) count: a failed run's intact part. None: every row.

    Returns
    -------
    dict
        The figures, plus ``fit_intercept_eV``, ``fit_start_ps`` and ``fit_end_ps`` (the fitted
        window), ``n_nonfinite`` (rows with a non-finite time, total or kinetic energy, after ``end_ps``
        included; left out of every figure), ``n_rows`` (the finite rows the figures cover; no fit
        with fewer than :data:`MIN_FIT_ROWS`) and ``measured_until_ps`` (the last of them).
    """
    n_nonfinite = int((~_finite_rows(series)).sum())  # over every row, those after end_ps included
    series = series.before(end_ps)
    time = np.asarray(series.time_ps, dtype=float)
    total = np.asarray(series.total_eV, dtype=float)
    kinetic = np.asarray(series.kinetic_eV, dtype=float)
    finite = _finite_rows(series)
    out: dict = {"n_nonfinite": n_nonfinite, "n_rows": int(finite.sum()), "warmup_fraction": warmup_fraction}
    nan = float("nan")
    names = (*FIT_FIGURES, "measured_until_ps", "temperature_mean_K", "temperature_std_K")
    out.update({name: nan for name in names})
    if series.temperature_K is not None:
        temps = np.asarray(series.temperature_K, dtype=float)
        temps = temps[np.isfinite(temps)]
        if len(temps):
            out["temperature_mean_K"], out["temperature_std_K"] = float(temps.mean()), float(temps.std())
    time, total, kinetic = time[finite], total[finite], kinetic[finite]
    if len(time):
        out["measured_until_ps"] = float(time[-1])
    if len(time) < MIN_FIT_ROWS:
        return out
    start = time[0] + warmup_fraction * (time[-1] - time[0])
    window = time >= start
    if window.sum() < MIN_FIT_ROWS:
        window = np.ones_like(time, dtype=bool)
    slope, intercept = np.polyfit(time[window], total[window], 1)
    duration = float(time[window][-1] - time[window][0])
    kinetic_std = float(kinetic[window].std())
    reference = abs(total[0])
    out.update(
        slope_meV_per_atom_per_ps=float(slope) * EV_TO_MEV / n_atoms,
        fit_slope_eV_per_ps=float(slope),
        fit_intercept_eV=float(intercept),
        fit_start_ps=float(time[window][0]),
        fit_end_ps=float(time[window][-1]),
        duration_ps=duration,
        drift_to_fluctuation=abs(float(slope)) * duration / kinetic_std if kinetic_std > 0 else float("inf"),
        relative_drift_percent=100.0 * float(total[-1] - total[0]) / reference if reference > 0 else nan,
        max_relative_deviation_percent=100.0 * float(np.abs(total - total[0]).max()) / reference
        if reference > 0
        else nan,
        rms_fluctuation_meV_per_atom=float(total[window].std()) * EV_TO_MEV / n_atoms,
    )
    return out


def judged_before_failure(n_rows: int, span_ps: float, production_ps: float | None) -> bool:
    """Whether a drift over the energy rows before a run's first stability failure is worth judging.

    Parameters
    ----------
    n_rows : int
        Finite energy rows of the production before the failure (``n_rows`` of :func:`drift_figures`).
    span_ps : float
        Time from the production's start to the last of them (ps).
    production_ps : float, optional
        The production's length (ps): requested, else written. None, NaN or 0: the rows alone decide.

    Returns
    -------
    bool
        True with at least :data:`MIN_ROWS_BEFORE_FAILURE` rows reaching at least
        :data:`MIN_PRODUCTION_FRACTION_BEFORE_FAILURE` of ``production_ps``.
    """
    if n_rows < MIN_ROWS_BEFORE_FAILURE:
        return False
    if production_ps is None or not production_ps > 0:
        return True
    return span_ps >= MIN_PRODUCTION_FRACTION_BEFORE_FAILURE * production_ps * (1.0 - 1e-9)  # a row right on it counts


def _finite_rows(series: EnergySeries) -> np.ndarray:
    """Rows whose time, total and kinetic energy are all finite."""
    arrays = (series.time_ps, series.total_eV, series.kinetic_eV)
    return np.logical_and.reduce([np.isfinite(np.asarray(a, dtype=float)) for a in arrays])
