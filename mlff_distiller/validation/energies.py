"""Energy time series of an MD run, read from whichever file the engine wrote.

Sources understood: the observables of our H5MD trajectory (eV), our run directory's
``energies.csv`` (eV), OpenMM's ``StateDataReporter`` CSV (kJ/mol), a LAMMPS log's thermo table
(``units metal``: eV, ps; ``units real``: kcal/mol, fs; its fixes tell the ensemble) and ASE's
``MDLogger`` log (eV, ps). Each reader converts with the table of :mod:`mlff_distiller.units`.
"""

import csv
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import TrajectoryError
from ..units import LAMMPS_UNITS, energy_to_eV

#: Relative tolerance of comparisons of accumulated simulation times (their round-off, not a physical margin).
TIME_TOLERANCE = 1e-9


@dataclass
class EnergySeries:
    """Energies of an MD run, one row per reported step.

    Attributes
    ----------
    time_ps : ndarray, shape (T,)
        Simulation time in ps.
    potential_eV, kinetic_eV, total_eV : ndarray, shape (T,)
        Potential, kinetic and total energy in eV (NaN where the engine reported a non-finite value).
    temperature_K : ndarray, shape (T,), or None
        Instantaneous temperature in K, when the engine reported it.
    source : str
        Where the numbers came from (a file and its format).
    timestep_ps : float or None
        The MD time step in ps when the file states it (LAMMPS logs), to time a LAMMPS dump's frames.
    conserved_eV : ndarray, shape (T,), or None
        The quantity a thermostatted integrator conserves (LAMMPS ``econserve``, or ``etotal +
        ecouple``), in eV, when the engine reported it.
    lammps_units : str or None
        The LAMMPS unit style of the run (``metal`` or ``real``) for a LAMMPS log.
    fixes : list of (str, list of str)
        The integration fixes of a LAMMPS log (style and arguments after it, e.g. ``("nvt",
        ["temp", "300", "300", "0.1"])``), in input order.
    """

    time_ps: np.ndarray
    potential_eV: np.ndarray
    kinetic_eV: np.ndarray
    total_eV: np.ndarray
    temperature_K: np.ndarray | None
    source: str
    timestep_ps: float | None = None
    conserved_eV: np.ndarray | None = None
    lammps_units: str | None = None
    fixes: list[tuple[str, list[str]]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.time_ps)

    def since(self, start_ps: float) -> "EnergySeries":
        """The rows at or after ``start_ps`` (ps; the round-off of accumulated time steps tolerated)."""
        return self._rows(np.asarray(self.time_ps) >= start_ps - TIME_TOLERANCE * max(abs(start_ps), 1.0))

    def before(self, end_ps: float | None) -> "EnergySeries":
        """The rows strictly before ``end_ps`` (ps; e.g. a stability failure's ``failure_from_ps``); all when None."""
        return self if end_ps is None else self._rows(np.asarray(self.time_ps) < end_ps)

    def _rows(self, keep: np.ndarray) -> "EnergySeries":
        pick = lambda values: None if values is None else np.asarray(values)[keep]  # noqa: E731
        return replace(
            self,
            time_ps=pick(self.time_ps),
            potential_eV=pick(self.potential_eV),
            kinetic_eV=pick(self.kinetic_eV),
            total_eV=pick(self.total_eV),
            temperature_K=pick(self.temperature_K),
            conserved_eV=pick(self.conserved_eV),
        )


def _series(columns: dict[str, np.ndarray], unit: str, source: str) -> EnergySeries:
    """Build a series from named columns in ``unit``: time (ps), potential, kinetic, total and temperature (optional)."""
    scale = energy_to_eV(unit)
    potential = columns["potential"] * scale
    kinetic = columns["kinetic"] * scale
    total = columns["total"] * scale if "total" in columns else potential + kinetic
    return EnergySeries(
        time_ps=columns["time"],
        potential_eV=potential,
        kinetic_eV=kinetic,
        total_eV=total,
        temperature_K=columns.get("temperature"),
        source=source,
    )


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")  # engines write 'nan', '-nan' or '******' when a run blows up


def _read_csv(path: Path) -> EnergySeries:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise TrajectoryError(f"{path} is empty; expected a header line and energy rows")
    header = [name.strip().lstrip("#").strip().strip('"') for name in rows[0]]
    body = [r for r in rows[1:] if r and not r[0].startswith("#")]
    data = np.array([[_float(x) for x in r[: len(header)]] for r in body], dtype=float).reshape(-1, len(header))
    by_name = {name: data[:, i] for i, name in enumerate(header)}
    if "potential_energy_eV" in by_name:  # our run directory
        wanted = {
            "time": "time_ps",
            "potential": "potential_energy_eV",
            "kinetic": "kinetic_energy_eV",
            "total": "total_energy_eV",
            "temperature": "temperature_K",
        }
        unit, kind = "eV", "mlffd energies.csv, eV"
    elif "Potential Energy (kJ/mole)" in by_name:  # OpenMM StateDataReporter
        wanted = {
            "time": "Time (ps)",
            "potential": "Potential Energy (kJ/mole)",
            "kinetic": "Kinetic Energy (kJ/mole)",
            "total": "Total Energy (kJ/mole)",
            "temperature": "Temperature (K)",
        }
        unit, kind = "kJ/mol", "OpenMM StateDataReporter CSV, kJ/mol"
    else:
        raise TrajectoryError(
            f"{path}: unrecognised CSV columns {header}; expected mlffd's energies.csv or an OpenMM "
            "StateDataReporter CSV with time, potentialEnergy and kineticEnergy"
        )
    missing = [wanted[k] for k in ("time", "potential", "kinetic") if wanted[k] not in by_name]
    if missing:
        raise TrajectoryError(
            f"{path} lacks the column(s) {', '.join(missing)}; drift needs time, potential and kinetic energy"
        )
    columns = {key: by_name[name] for key, name in wanted.items() if name in by_name}
    return _series(columns, unit, f"{path} ({kind})")


def _read_lammps_log(path: Path, units: str | None = None) -> EnergySeries:
    """The thermo tables of a LAMMPS log, in eV and ps; ``units`` (metal or real) when the log does not say."""
    logged_units, timestep, fixes = None, None, []
    tables: list[tuple] = []  # (column names, rows) of each thermo table
    in_table = False
    for line in Path(path).read_text(errors="replace").splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "units" and len(words) > 1:
            logged_units = words[1]
        elif words[0] == "timestep" and len(words) > 1:
            timestep = _float(words[1])
        elif words[0] == "fix" and len(words) > 3:
            fixes.append((words[3], words[4:]))
        elif words[0] == "Step":
            tables.append((words, []))
            in_table = True
        elif words[0].startswith("Loop") or words[0] == "ERROR:":
            in_table = False
        elif in_table and re.match(r"^-?\d+$", words[0]) and len(words) == len(tables[-1][0]):
            tables[-1][1].append(words)
    if not tables:
        raise TrajectoryError(f"{path}: no thermo table (a line starting with 'Step') found in this LAMMPS log")
    if logged_units is not None and units is not None and logged_units != units:
        raise TrajectoryError(f"{path} says 'units {logged_units}' but --units {units} was given; drop --units")
    units = logged_units or units
    if units is None:
        raise TrajectoryError(
            f"{path} does not state its LAMMPS units (no 'units' line); pass --units metal or --units real"
        )
    if units not in LAMMPS_UNITS:
        raise TrajectoryError(f"{path}: LAMMPS 'units {units}' is not supported; use units metal or real")
    names = tables[0][0]
    rows = [r for table_names, table_rows in tables if table_names == names for r in table_rows]
    data = np.array([[_float(x) for x in r] for r in rows], dtype=float).reshape(-1, len(names))
    if "Step" in names:  # consecutive runs repeat their boundary step: keep its first row
        _, first = np.unique(data[:, names.index("Step")], return_index=True)
        data = data[np.sort(first)]
    col = {name: data[:, i] for i, name in enumerate(names)}
    needed = {"PotEng", "KinEng"}
    if not needed <= set(col):
        raise TrajectoryError(
            f"{path}: the thermo table lacks {sorted(needed - set(col))}; add pe and ke to thermo_style"
        )
    style = LAMMPS_UNITS[units]
    time_ps = style["time_ps"]  # metal: ps, real: fs; default time steps 0.001 ps and 1 fs
    dt_ps = (timestep if timestep is not None else (0.001 if units == "metal" else 1.0)) * time_ps
    time = col["Time"] * time_ps if "Time" in col else col["Step"] * dt_ps
    columns = {"time": time, "potential": col["PotEng"], "kinetic": col["KinEng"]}
    if "TotEng" in col:
        columns["total"] = col["TotEng"]
    if "Temp" in col:
        columns["temperature"] = col["Temp"]
    series = _series(columns, style["energy"], f"{path} (LAMMPS log, units {units})")
    if "Econserve" in col:
        series.conserved_eV = col["Econserve"] * energy_to_eV(style["energy"])
    elif "Ecouple" in col:
        series.conserved_eV = series.total_eV + col["Ecouple"] * energy_to_eV(style["energy"])
    series.timestep_ps, series.lammps_units, series.fixes = dt_ps, units, fixes
    return series


#: Columns of ASE's MDLogger (``ase.md.MDLogger``): time in ps, energies in eV per system.
ASE_LOG_COLUMNS = ("Time[ps]", "Etot[eV]", "Epot[eV]", "Ekin[eV]", "T[K]")


def _read_ase_log(path: Path) -> EnergySeries:
    """The log of ASE's MDLogger (eV, ps); energies per atom (``peratom=True``) are refused."""
    lines = [line.split() for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
    header = lines[0]
    if any(name.endswith("/N[eV]") for name in header):
        raise TrajectoryError(f"{path} holds energies per atom (MDLogger peratom=True); log whole-system energies")
    missing = [name for name in ASE_LOG_COLUMNS if name not in header]
    if missing:
        raise TrajectoryError(f"{path}: ASE MD log without the column(s) {', '.join(missing)}")
    body = [row for row in lines[1:] if len(row) >= len(header)]
    data = np.array([[_float(x) for x in row[: len(header)]] for row in body], dtype=float).reshape(-1, len(header))
    col = {name: data[:, i] for i, name in enumerate(header)}
    columns = {
        "time": col["Time[ps]"],
        "potential": col["Epot[eV]"],
        "kinetic": col["Ekin[eV]"],
        "total": col["Etot[eV]"],
        "temperature": col["T[K]"],
    }
    return _series(columns, "eV", f"{path} (ASE MDLogger, eV)")


def read_energies(path: str | Path, units: str | None = None) -> EnergySeries:
    """Read an energy time series from an mlffd ``energies.csv``, an OpenMM CSV, a LAMMPS log or an ASE MD log.

    Parameters
    ----------
    path : str or Path
        The file. The format is recognised from its content.
    units : str, optional
        LAMMPS unit style (``metal`` or ``real``) for a LAMMPS log that does not state it.

    Returns
    -------
    EnergySeries
        Energies in eV, time in ps, temperature in K.

    Raises
    ------
    TrajectoryError
        When the file is missing, unreadable or lacks time, potential or kinetic energy.
    """
    path = Path(path)
    if not path.is_file():
        raise TrajectoryError(f"energy file {path} does not exist")
    try:
        head = path.read_text(errors="replace")[:4000]
    except OSError as exc:
        raise TrajectoryError(f"cannot read {path}: {exc}") from None
    if "LAMMPS (" in head or re.search(r"^\s*Step\s", head, re.MULTILINE):
        series = _read_lammps_log(path, units)
    elif head.split()[:1] == ["Time[ps]"]:
        series = _read_ase_log(path)
    else:
        series = _read_csv(path)
    if len(series) < 2:
        raise TrajectoryError(f"{path} holds {len(series)} energy row(s); drift needs at least two")
    return series


def find_energy_file(trajectory: str | Path) -> Path | None:
    """The energy file next to a trajectory: ``<stem>.csv``, ``<stem>.log``, ``energies.csv`` or ``log.lammps``."""
    trajectory = Path(trajectory)
    for candidate in (
        trajectory.with_suffix(".csv"),
        trajectory.with_suffix(".log"),
        trajectory.parent / "energies.csv",
        trajectory.parent / "log.lammps",
    ):
        if candidate.is_file() and candidate != trajectory:
            return candidate
    return None
