"""Writing the run directory's trajectory (H5MD, readable by MDAnalysis) and energy table (CSV).

The H5MD layout is described in ``docs/trajectory-format.md``. Every frame is flushed, so a run
that is killed leaves files that read up to the last frame written; a restart truncates frames
newer than its checkpoint and appends.
"""

import csv
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from ...errors import TrajectoryError

#: Units of the particle data (OpenMM's units, which MDAnalysis converts on reading).
PARTICLE_UNITS = {"position": "nm", "velocity": "nm ps-1", "force": "kJ mol-1 nm-1"}
#: Units of the per-frame observables (None: a dimensionless flag, stored without a unit attribute).
OBSERVABLE_UNITS = {
    "potential_energy": "eV",
    "kinetic_energy": "eV",
    "total_energy": "eV",
    "temperature": "K",
    "audit_force_rmse": "eV Angstrom-1",
    "force_deviation_max": "eV Angstrom-1",
    "force_deviation_mean": "eV Angstrom-1",
    "equilibration": None,
}
#: Observables stored as integers (1 or 0 per frame); the others are float64.
FLAG_OBSERVABLES = ("equilibration",)
#: CSV column of each observable.
CSV_COLUMNS = {
    "potential_energy": "potential_energy_eV",
    "kinetic_energy": "kinetic_energy_eV",
    "total_energy": "total_energy_eV",
    "temperature": "temperature_K",
    "audit_force_rmse": "audit_force_rmse_eV_per_A",
    "force_deviation_max": "force_deviation_max_eV_per_A",
    "force_deviation_mean": "force_deviation_mean_eV_per_A",
    "equilibration": "equilibration",
}


class H5MDTrajectory:
    """An H5MD trajectory file written frame by frame.

    Parameters
    ----------
    path : str or Path
        The ``.h5md`` file.
    n_atoms : int
        Number of particles.
    periodic : bool
        Whether frames carry box vectors.
    observables : sequence of str
        Names of the per-frame scalars (keys of :data:`OBSERVABLE_UNITS`).
    keep_until_step : int, optional
        Open an existing file to append, first dropping the frames after this step.
    """

    def __init__(
        self,
        path: str | Path,
        n_atoms: int,
        periodic: bool,
        observables: Sequence[str],
        keep_until_step: int | None = None,
    ):
        self.path = Path(path)
        self.observables = list(observables)
        self.periodic = periodic
        try:
            self.file = h5py.File(self.path, "w" if keep_until_step is None else "a")
        except OSError as exc:
            raise TrajectoryError(
                f"{self.path}: cannot open for writing ({exc.strerror or exc}); close programs that have it open"
            ) from exc
        if keep_until_step is None:
            self._create(n_atoms)
        else:
            self._truncate(keep_until_step)
        particles = self.file["particles/system"]
        self._series: list[h5py.Group] = [particles[name] for name in PARTICLE_UNITS]
        if periodic:
            self._series.append(particles["box/edges"])
        self._series += [self.file["observables"][name] for name in self.observables]

    def _create(self, n_atoms: int) -> None:
        from ... import __version__

        f = self.file
        f.require_group("h5md").attrs["version"] = np.array([1, 1])
        f["h5md"].require_group("author").attrs["name"] = "mlff-distiller"
        creator = f["h5md"].require_group("creator")
        creator.attrs["name"] = "mlff-distiller"
        creator.attrs["version"] = __version__
        particles = f.require_group("particles/system")
        for name, unit in PARTICLE_UNITS.items():
            self._create_series(particles.require_group(name), (n_atoms, 3), np.float32, unit)
        box = particles.require_group("box")
        box.attrs["dimension"] = 3
        box.attrs["boundary"] = np.array(3 * (["periodic"] if self.periodic else ["none"]), dtype="S8")
        if self.periodic:
            self._create_series(box.require_group("edges"), (3, 3), np.float64, "nm")
        observables = f.require_group("observables")
        for name in self.observables:
            dtype = np.int8 if name in FLAG_OBSERVABLES else np.float64
            self._create_series(observables.require_group(name), (), dtype, OBSERVABLE_UNITS[name])

    @staticmethod
    def _create_series(group: h5py.Group, shape, dtype, unit: str | None) -> None:
        value = group.create_dataset(
            "value", (0, *shape), dtype=dtype, maxshape=(None, *shape), chunks=(1, *shape) if shape else (256,)
        )
        if unit is not None:
            value.attrs["unit"] = unit
        group.create_dataset("step", (0,), dtype=np.int64, maxshape=(None,), chunks=(256,))
        time = group.create_dataset("time", (0,), dtype=np.float64, maxshape=(None,), chunks=(256,))
        time.attrs["unit"] = "ps"

    def _truncate(self, keep_until_step: int) -> None:
        steps = self.file["particles/system/position/step"][:]
        keep = int(np.searchsorted(steps, keep_until_step, side="right"))
        for group in self._all_series():
            for name in ("value", "step", "time"):
                group[name].resize(keep, axis=0)
        self.file.flush()

    def _all_series(self) -> list[h5py.Group]:
        particles = self.file["particles/system"]
        series = [particles[name] for name in PARTICLE_UNITS]
        if "edges" in particles["box"]:
            series.append(particles["box/edges"])
        series += [self.file["observables"][name] for name in self.file["observables"]]
        return series

    def append(
        self,
        step: int,
        time_ps: float,
        positions_nm: np.ndarray,
        velocities_nm_per_ps: np.ndarray,
        forces_kj_per_mol_nm: np.ndarray,
        box_nm: np.ndarray | None,
        observables: dict[str, float],
    ) -> None:
        """Add one frame and flush it to disk.

        ``observables`` maps each name given at construction to its value (units of
        :data:`OBSERVABLE_UNITS`; NaN where not measured).
        """
        values = [positions_nm, velocities_nm_per_ps, forces_kj_per_mol_nm]
        if self.periodic:
            values.append(box_nm)
        values += [observables[name] for name in self.observables]
        for group, value in zip(self._series, values, strict=False):
            n = group["step"].shape[0]
            for name in ("value", "step", "time"):
                group[name].resize(n + 1, axis=0)
            group["value"][n] = value
            group["step"][n] = step
            group["time"][n] = time_ps
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class EnergyTable:
    """The run's ``energies.csv``: one row per frame, flushed as written.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    observables : sequence of str
        Keys of :data:`CSV_COLUMNS`, in column order.
    keep_until_step : int, optional
        Append to an existing table, first dropping rows after this step.
    """

    def __init__(self, path: str | Path, observables: Sequence[str], keep_until_step: int | None = None):
        self.path = Path(path)
        self.observables = list(observables)
        header = ["step", "time_ps"] + [CSV_COLUMNS[name] for name in self.observables]
        rows = []
        if keep_until_step is not None and self.path.exists():
            with open(self.path, newline="") as handle:
                rows = [row for row in csv.reader(handle)][1:]
            rows = [row for row in rows if row and int(row[0]) <= keep_until_step]
        self.handle = open(self.path, "w", newline="")
        self.writer = csv.writer(self.handle)
        self.writer.writerow(header)
        self.writer.writerows(rows)
        self.handle.flush()

    def append(self, step: int, time_ps: float, observables: dict[str, float]) -> None:
        """Add one row (energies in eV, temperature in K, RMSE in eV/Å, flags 1 or 0) and flush it."""
        self.writer.writerow(
            [step, repr(float(time_ps))] + [_csv_value(name, observables[name]) for name in self.observables]
        )
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _csv_value(name: str, value) -> str:
    """An observable as the CSV writes it: flags as integers, everything else as a float that reads back exactly."""
    return str(int(value)) if name in FLAG_OBSERVABLES else repr(float(value))
