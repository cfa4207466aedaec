"""Energy time series of an MD run, read from whichever file the engine wrote.

Three sources are understood: the observables of our H5MD trajectory (eV), our run
directory's ``energies.csv`` (eV), OpenMM's ``StateDataReporter`` CSV (kJ/mol) and a LAMMPS
log's thermo table (``units metal``: eV, ps; ``units real``: kcal/mol, fs).
"""

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np

from ..errors import TrajectoryError
from ..units import EV_TO_KJ_PER_MOL

#: kcal/mol in one eV (LAMMPS ``units real``).
EV_TO_KCAL_PER_MOL = EV_TO_KJ_PER_MOL / 4.184


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
    """

    time_ps: np.ndarray
    potential_eV: np.ndarray
    kinetic_eV: np.ndarray
    total_eV: np.ndarray
    temperature_K: Optional[np.ndarray]
    source: str
    timestep_ps: Optional[float] = None

    def __len__(self) -> int:
        return len(self.time_ps)


def _series(columns: Dict[str, np.ndarray], scale: float, source: str) -> EnergySeries:
    """Build a series from named columns: time, potential, kinetic, total (optional), temperature (optional)."""
    potential = columns["potential"] / scale
    kinetic = columns["kinetic"] / scale
    total = columns["total"] / scale if "total" in columns else potential + kinetic
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
        wanted = {"time": "time_ps", "potential": "potential_energy_eV", "kinetic": "kinetic_energy_eV",
                  "total": "total_energy_eV", "temperature": "temperature_K"}
        scale, kind = 1.0, "mlffd energies.csv, eV"
    elif "Potential Energy (kJ/mole)" in by_name:  # OpenMM StateDataReporter
        wanted = {"time": "Time (ps)", "potential": "Potential Energy (kJ/mole)", "kinetic": "Kinetic Energy (kJ/mole)",
                  "total": "Total Energy (kJ/mole)", "temperature": "Temperature (K)"}
        scale, kind = EV_TO_KJ_PER_MOL, "OpenMM StateDataReporter CSV, kJ/mol"
    else:
        raise TrajectoryError(
            f"{path}: unrecognised CSV columns {header}; expected mlffd's energies.csv or an OpenMM "
            "StateDataReporter CSV with time, potentialEnergy and kineticEnergy"
        )
    missing = [wanted[k] for k in ("time", "potential", "kinetic") if wanted[k] not in by_name]
    if missing:
        raise TrajectoryError(f"{path} lacks the column(s) {', '.join(missing)}; drift needs time, potential and kinetic energy")
    columns = {key: by_name[name] for key, name in wanted.items() if name in by_name}
    return _series(columns, scale, f"{path} ({kind})")


def _read_lammps_log(path: Path) -> EnergySeries:
    text = Path(path).read_text(errors="replace").splitlines()
    units, timestep_fs_or_ps = "lj", None
    tables: List[tuple] = []  # (column names, rows) of each thermo table
    in_table = False
    for line in text:
        words = line.split()
        if not words:
            continue
        if words[0] == "units" and len(words) > 1:
            units = words[1]
        elif words[0] == "timestep" and len(words) > 1:
            timestep_fs_or_ps = float(words[1])
        elif words[0] == "Step":
            tables.append((words, []))
            in_table = True
        elif words[0].startswith("Loop") or words[0] == "ERROR:":
            in_table = False
        elif in_table and re.match(r"^-?\d+$", words[0]) and len(words) == len(tables[-1][0]):
            tables[-1][1].append(words)
    if not tables:
        raise TrajectoryError(f"{path}: no thermo table (a line starting with 'Step') found in this LAMMPS log")
    if units not in ("metal", "real"):
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
        raise TrajectoryError(f"{path}: the thermo table lacks {sorted(needed - set(col))}; add pe and ke to thermo_style")
    # metal: eV and ps (default timestep 0.001 ps); real: kcal/mol and fs (default 1 fs)
    energy_scale = 1.0 if units == "metal" else EV_TO_KCAL_PER_MOL
    dt_ps = (timestep_fs_or_ps or (0.001 if units == "metal" else 1.0)) * (1.0 if units == "metal" else 1e-3)
    time = col["Time"] * (1.0 if units == "metal" else 1e-3) if "Time" in col else col["Step"] * dt_ps
    columns = {"time": time, "potential": col["PotEng"], "kinetic": col["KinEng"]}
    if "TotEng" in col:
        columns["total"] = col["TotEng"]
    if "Temp" in col:
        columns["temperature"] = col["Temp"]
    series = _series(columns, energy_scale, f"{path} (LAMMPS log, units {units})")
    series.timestep_ps = dt_ps
    return series


def read_energies(path: Union[str, Path]) -> EnergySeries:
    """Read an energy time series from an mlffd ``energies.csv``, an OpenMM CSV or a LAMMPS log.

    Parameters
    ----------
    path : str or Path
        The file. The format is recognised from its content.

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
        series = _read_lammps_log(path)
    else:
        series = _read_csv(path)
    if len(series) < 2:
        raise TrajectoryError(f"{path} holds {len(series)} energy row(s); drift needs at least two")
    return series


def find_energy_file(trajectory: Union[str, Path]) -> Optional[Path]:
    """The energy file next to a trajectory: ``<stem>.csv``, ``<stem>.log``, ``energies.csv`` or ``log.lammps``."""
    trajectory = Path(trajectory)
    for candidate in (trajectory.with_suffix(".csv"), trajectory.with_suffix(".log"),
                      trajectory.parent / "energies.csv", trajectory.parent / "log.lammps"):
        if candidate.is_file() and candidate != trajectory:
            return candidate
    return None
