"""Which ensemble a run sampled, and at what temperature: from the user, the run's settings or the LAMMPS log."""

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import TrajectoryError
from .energies import EnergySeries

#: Ensembles a verdict knows.
ENSEMBLES = ("nve", "nvt", "npt")
#: LAMMPS fixes that hold a temperature, each with the index of its final target temperature among its arguments.
LAMMPS_THERMOSTATS: dict[str, int | None] = {
    "langevin": 1,
    "temp/berendsen": 1,
    "temp/csvr": 1,
    "temp/csld": 1,
    "temp/rescale": 2,
    "nvt": None,
    "npt": None,
    "nvt/sllod": None,
    "gld": None,
    "gle": None,
}
#: LAMMPS fixes that hold a pressure.
LAMMPS_BAROSTATS = ("npt", "nph", "press/berendsen", "press/langevin")


@dataclass
class Ensemble:
    """The ensemble of a run, as far as it can be known.

    Attributes
    ----------
    name : str
        ``"nve"``, ``"nvt"`` or ``"npt"``.
    source : str
        Where it was learnt (``--ensemble``, ``settings.json``, the LAMMPS log's fixes) or that it was assumed.
    target_temperature_K : float or None
        The thermostat's temperature (NVT, NPT) or the temperature an NVE run was started at, in K.
    production_start_ps : float
        Time at which the production (the part judged for drift and temperature) starts, in ps;
        earlier frames are the equilibration of ``mlffd md --equilibrate``.
    """

    name: str
    source: str
    target_temperature_K: float | None = None
    production_start_ps: float = 0.0

    @property
    def thermostatted(self) -> bool:
        """Whether a thermostat acts on the production (total energy is not conserved by design)."""
        return self.name != "nve"

    @property
    def assumed(self) -> bool:
        """Whether nothing stated the ensemble (NVE was assumed)."""
        return self.source.startswith("assumed")


def resolve_ensemble(
    requested: str | None, temperature_K: float | None, settings: dict, series: EnergySeries | None
) -> Ensemble:
    """The run's ensemble: ``requested`` first, then ``mlffd md``'s settings, then a LAMMPS log's fixes, else NVE.

    Parameters
    ----------
    requested : str, optional
        ``--ensemble`` (nve, nvt or npt).
    temperature_K : float, optional
        ``--temperature``: the target temperature in K, overriding what the run states.
    settings : dict
        The run's ``settings.json`` (empty for foreign trajectories).
    series : EnergySeries, optional
        The run's energies (a LAMMPS log carries its fixes).
    """
    if requested is not None and requested not in ENSEMBLES:
        raise TrajectoryError(f"--ensemble must be one of {', '.join(ENSEMBLES)}, not '{requested}'")
    if temperature_K is not None and not (temperature_K > 0 and temperature_K < float("inf")):
        raise TrajectoryError(f"--temperature must be a positive number of K, not {temperature_K}")
    found = _from_settings(settings) or (_from_lammps(series.fixes, series.source) if series is not None else None)
    if found is None:
        found = Ensemble("nve", "assumed: nothing in the run states its ensemble (pass --ensemble)")
    if requested is not None:
        found = Ensemble(requested, "--ensemble", found.target_temperature_K, found.production_start_ps)
    if temperature_K is not None:
        found.target_temperature_K = float(temperature_K)
    return found


def _from_settings(settings: dict) -> Ensemble | None:
    """An ``mlffd md`` run: its settings state the ensemble, temperature and equilibration."""
    if settings.get("ensemble") not in ENSEMBLES:
        return None
    temperature = settings.get("temperature")
    return Ensemble(
        settings["ensemble"],
        "settings.json of mlffd md",
        float(temperature) if temperature is not None else None,
        float(settings.get("production_start_ps") or 0.0),
    )


def _from_lammps(fixes: Sequence[tuple[str, list[str]]], source: str) -> Ensemble | None:
    """The ensemble a LAMMPS input's time-integration fixes sample, and the thermostat's final temperature."""
    if not fixes:
        return None
    styles = [style for style, _ in fixes]
    barostat = any(style in LAMMPS_BAROSTATS for style in styles)
    thermostats = [(style, args) for style, args in fixes if style in LAMMPS_THERMOSTATS]
    if barostat:
        name = "npt"
    elif thermostats:
        name = "nvt"
    elif "nve" in styles:
        name = "nve"
    else:
        return None
    target = _lammps_target(*thermostats[-1]) if thermostats else None
    used = ", ".join(sorted(set(s for s in styles if s in LAMMPS_THERMOSTATS or s in LAMMPS_BAROSTATS or s == "nve")))
    return Ensemble(name, f"LAMMPS log (fix {used})", target)


def _lammps_target(style: str, args: list[str]) -> float | None:
    """The final target temperature of a LAMMPS thermostat fix (None when given by a variable or absent)."""
    index = LAMMPS_THERMOSTATS[style]
    if index is None:  # nvt, npt, ...: keyword 'temp Tstart Tstop Tdamp'
        index = args.index("temp") + 2 if "temp" in args else None
    if index is None or index >= len(args):
        return None
    try:
        return float(args[index])
    except ValueError:  # v_name: a variable
        return None
