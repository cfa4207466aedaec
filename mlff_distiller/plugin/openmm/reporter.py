"""Writing the run directory's trajectory (H5MD, readable by MDAnalysis) and energy table (CSV).

The H5MD layout is described in ``docs/trajectory-format.md``. Every frame is flushed, so a run
that is killed leaves files that read up to the last frame written; a restart truncates frames
newer than its checkpoint and appends.

Every series of a file written here shares one ``step`` and one ``time`` dataset (hard links, as
MDAnalysis's own H5MD writer does), and rows are written as whole chunks through h5py's low-level
calls: its high-level resize and item assignment cost about 0.2 ms each, which made a frame cost
as much as ten MD steps of a small molecule.
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
        series = [particles[name] for name in PARTICLE_UNITS]
        if periodic:
            series.append(particles["box/edges"])
        series += [self.file["observables"][name] for name in self.observables]
        self._values = [_Rows(group["value"]) for group in series]
        # one of each in a file written here, one per series in a file written before they were shared
        self._steps = [_Rows(dataset) for dataset in _distinct(group["step"] for group in series)]
        self._times = [_Rows(dataset) for dataset in _distinct(group["time"] for group in series)]

    def _create(self, n_atoms: int) -> None:
        from ... import __version__

        f = self.file
        f.require_group("h5md").attrs["version"] = np.array([1, 1])
        f["h5md"].require_group("author").attrs["name"] = "mlff-distiller"
        creator = f["h5md"].require_group("creator")
        creator.attrs["name"] = "mlff-distiller"
        creator.attrs["version"] = __version__
        particles = f.require_group("particles/system")
        clock = particles.require_group("position")
        clock.create_dataset("step", (0,), dtype=np.int64, maxshape=(None,), chunks=(256,))
        clock.create_dataset("time", (0,), dtype=np.float64, maxshape=(None,), chunks=(256,)).attrs["unit"] = "ps"
        for name, unit in PARTICLE_UNITS.items():
            self._create_series(particles.require_group(name), clock, (n_atoms, 3), np.float32, unit)
        box = particles.require_group("box")
        box.attrs["dimension"] = 3
        box.attrs["boundary"] = np.array(3 * (["periodic"] if self.periodic else ["none"]), dtype="S8")
        if self.periodic:
            self._create_series(box.require_group("edges"), clock, (3, 3), np.float64, "nm")
        observables = f.require_group("observables")
        for name in self.observables:
            dtype = np.int8 if name in FLAG_OBSERVABLES else np.float64
            self._create_series(observables.require_group(name), clock, (), dtype, OBSERVABLE_UNITS[name])

    @staticmethod
    def _create_series(group: h5py.Group, clock: h5py.Group, shape, dtype, unit: str | None) -> None:
        """A series' ``value`` dataset, and hard links to the ``step`` and ``time`` of ``clock``."""
        value = group.create_dataset(
            "value", (0, *shape), dtype=dtype, maxshape=(None, *shape), chunks=(1, *shape) if shape else (256,)
        )
        if unit is not None:
            value.attrs["unit"] = unit
        if group != clock:
            group["step"], group["time"] = clock["step"], clock["time"]

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
        for rows, value in zip(self._values, values, strict=True):
            rows.append(value)
        for rows in self._steps:
            rows.append(step)
        for rows in self._times:
            rows.append(time_ps)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class _Rows:
    """A dataset (chunked, uncompressed) growing by one row along its first axis per frame.

    The row goes into a copy of its chunk held here, and the whole chunk is written to the file
    (h5py's direct chunk write): half the time of writing the row through a selection.
    """

    def __init__(self, dataset: h5py.Dataset):
        if dataset.id.get_create_plist().get_nfilters():
            raise TrajectoryError(f"{dataset.file.filename}: {dataset.name} is compressed; frames cannot be appended")
        self.id = dataset.id
        self.rows = dataset.shape[0]
        self.chunk = np.zeros(dataset.chunks, dtype=dataset.dtype)
        held = self.rows % len(self.chunk)  # rows already in the last chunk (a restart's file)
        if held:
            self.chunk[:held] = dataset[self.rows - held : self.rows]

    def append(self, value) -> None:
        """Write ``value`` (of the row's shape; converted to the dataset's dtype) as a new last row."""
        index = self.rows % len(self.chunk)
        self.chunk[index] = value
        self.id.set_extent((self.rows + 1, *self.chunk.shape[1:]))
        self.id.write_direct_chunk((self.rows - index,) + (0,) * (self.chunk.ndim - 1), self.chunk)
        self.rows += 1


def _distinct(datasets) -> list[h5py.Dataset]:
    """``datasets`` without repeats of one HDF5 object (hard links to one dataset count once)."""
    seen, distinct = set(), []
    for dataset in datasets:
        if dataset.id not in seen:
            seen.add(dataset.id)
            distinct.append(dataset)
    return distinct


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
