"""Stability of a trajectory: broken bonds, lost hydrogens, temperature explosion, time completed."""

from typing import Dict, List, Optional

import numpy as np
from ase.data import covalent_radii
from MDAnalysis.analysis.base import AnalysisBase
from MDAnalysis.lib.distances import calc_bonds, capped_distance, self_capped_distance

from .energies import EnergySeries
from .trajectory import atomic_numbers, frame_box, observable_scale

#: Two atoms are bonded on the first frame when closer than this factor times the sum of their covalent radii.
BOND_SCALE = 1.2


class Stability(AnalysisBase):
    """When, if ever, a trajectory stops being physical.

    - Collapse (Fu et al. 2022): bonds are found from covalent radii on the first frame
      (distance < ``bond_scale`` x (r_i + r_j)); each bond's reference length is its mean over
      the first ``reference_frames`` frames; the run collapses at the first frame where any bond
      deviates from its reference by more than ``bond_tolerance`` (Å).
    - Hydrogen loss (MLIPAudit): an H atom bonded to a heavy atom on the first frame ends up
      farther than ``hydrogen_distance`` (Å) from every heavy atom.
    - Explosion: temperature above ``max_temperature`` (K), a non-finite energy, or non-finite positions.
    - Completion: time reached against ``requested_time_ps`` (from the run's settings).

    Results: ``collapse``, ``hydrogen_loss``, ``explosion`` (each None or a dict with ``frame``,
    ``time_ps`` and details), ``first_failure`` (the earliest of them), ``stable_time_ps`` (time of
    the last frame before the first failure, or of the last frame), ``completed_time_ps``,
    ``requested_time_ps``, ``fraction_completed``, ``bonds`` (atom index pairs), ``n_bonds``, ``time_ps`` and
    ``max_bond_deviation_A`` per frame.

    Parameters
    ----------
    atomgroup : AtomGroup or Universe
        Atoms to watch.
    requested_time_ps : float, optional
        Simulation time the run was asked for (ps).
    energies : EnergySeries, optional
        Energies and temperatures from a file; by default the trajectory's H5MD observables.
    bond_tolerance : float
        Å (default 0.5).
    hydrogen_distance : float
        Å (default 2.5).
    max_temperature : float
        K (default 10,000).
    reference_frames : int
        Frames averaged for each bond's reference length (default 10).
    """

    def __init__(self, atomgroup, requested_time_ps: Optional[float] = None, energies: Optional[EnergySeries] = None,
                 bond_tolerance: float = 0.5, hydrogen_distance: float = 2.5, max_temperature: float = 10_000.0,
                 reference_frames: int = 10, bond_scale: float = BOND_SCALE, **kwargs):
        self._ag = atomgroup.atoms
        super().__init__(self._ag.universe.trajectory, **kwargs)
        self.requested_time_ps = requested_time_ps
        self.energies = energies
        self.bond_tolerance = bond_tolerance
        self.hydrogen_distance = hydrogen_distance
        self.max_temperature = max_temperature
        self.reference_frames = max(int(reference_frames), 1)
        self.bond_scale = bond_scale

    def _prepare(self):
        self._numbers = atomic_numbers(self._ag)
        self._bonds = None
        self._hydrogens = self._heavy = None
        self._buffer: List[np.ndarray] = []
        self._reference = None
        self._times: List[float] = []
        self._deviation: List[float] = []
        self._frames: List[int] = []
        self.results.collapse = self.results.hydrogen_loss = self.results.explosion = None
        self._energy_scale = observable_scale(self._ag.universe, "potential_energy")

    def _find_bonds(self, positions: np.ndarray, box) -> None:
        radii = covalent_radii[self._numbers]
        cutoff = self.bond_scale * 2 * float(radii.max())
        pairs, distances = self_capped_distance(positions, cutoff, box=box)
        pairs = np.asarray(pairs, dtype=int).reshape(-1, 2)
        keep = distances < self.bond_scale * (radii[pairs[:, 0]] + radii[pairs[:, 1]])
        self._bonds = pairs[keep]
        hydrogen = self._numbers == 1
        self._heavy = np.flatnonzero(~hydrogen)
        bonded_h = set(i for pair in self._bonds for i in pair if hydrogen[i] and not hydrogen[pair[0] + pair[1] - i])
        self._hydrogens = np.array(sorted(bonded_h), dtype=int)

    def _single_frame(self):
        ts = self._ts
        positions = self._ag.positions.astype(np.float64)
        box = frame_box(ts)
        time = float(ts.time)
        self._times.append(time)
        self._frames.append(int(ts.frame))
        if self._bonds is None:
            self._find_bonds(positions, box)
        if not np.isfinite(positions).all():
            self._flag("explosion", ts, reason="non-finite positions")
            self._deviation.append(float("inf"))
            return
        self._check_energies(ts)
        self._check_hydrogens(ts, positions, box)
        lengths = calc_bonds(positions[self._bonds[:, 0]], positions[self._bonds[:, 1]], box=box) if len(self._bonds) else np.zeros(0)
        self._buffer.append((int(ts.frame), time, lengths))
        if self._reference is None and len(self._buffer) >= self.reference_frames:
            self._set_reference()
        elif self._reference is not None:
            self._check_bonds(*self._buffer.pop())

    def _set_reference(self) -> None:
        self._reference = np.mean([lengths for _, _, lengths in self._buffer], axis=0)
        for frame, time, lengths in self._buffer:
            self._check_bonds(frame, time, lengths)
        self._buffer = []

    def _check_bonds(self, frame: int, time: float, lengths: np.ndarray) -> None:
        if not len(lengths):
            self._deviation.append(0.0)
            return
        deviation = np.abs(lengths - self._reference)
        worst = int(np.argmax(deviation))
        self._deviation.append(float(deviation[worst]))
        if deviation[worst] > self.bond_tolerance and self.results.collapse is None:
            i, j = (int(k) for k in self._bonds[worst])
            atoms = self._ag
            self.results.collapse = {
                "frame": frame, "time_ps": time, "atoms": [int(atoms[i].index), int(atoms[j].index)],
                "names": [str(atoms[i].name), str(atoms[j].name)], "reference_length_A": float(self._reference[worst]),
                "length_A": float(lengths[worst]), "n_bonds_broken": int((deviation > self.bond_tolerance).sum()),
            }

    def _check_hydrogens(self, ts, positions: np.ndarray, box) -> None:
        if self.results.hydrogen_loss is not None or not len(self._hydrogens) or not len(self._heavy):
            return
        pairs = capped_distance(positions[self._hydrogens], positions[self._heavy], self.hydrogen_distance,
                                box=box, return_distances=False)
        near = np.zeros(len(self._hydrogens), dtype=bool)
        near[np.asarray(pairs, dtype=int).reshape(-1, 2)[:, 0]] = True
        if not near.all():
            lost = self._hydrogens[~near]
            self._flag("hydrogen_loss", ts, atoms=[int(self._ag[i].index) for i in lost],
                       names=[str(self._ag[i].name) for i in lost])

    def _check_energies(self, ts) -> None:
        if self.energies is not None or self.results.explosion is not None:
            return
        data = ts.data
        if "potential_energy" in data and not np.isfinite(float(data["potential_energy"])):
            self._flag("explosion", ts, reason="non-finite potential energy")
        elif "temperature" in data and not float(data["temperature"]) <= self.max_temperature:
            self._flag("explosion", ts, reason=f"temperature {float(data['temperature']):.0f} K above {self.max_temperature:.0f} K")

    def _flag(self, kind: str, ts, **details) -> None:
        if self.results[kind] is None:
            self.results[kind] = {"frame": int(ts.frame), "time_ps": float(ts.time), **details}

    def _explosion_in_series(self) -> Optional[Dict]:
        """First row of an energy file with a non-finite energy or a temperature above the limit."""
        series = self.energies
        bad = ~np.isfinite(series.potential_eV) | ~np.isfinite(series.total_eV)
        hot = np.zeros_like(bad)
        if series.temperature_K is not None:
            hot = ~(np.asarray(series.temperature_K) <= self.max_temperature)
        rows = np.flatnonzero(bad | hot)
        if not len(rows):
            return None
        row = int(rows[0])
        reason = "non-finite energy" if bad[row] else f"temperature {series.temperature_K[row]:.0f} K above {self.max_temperature:.0f} K"
        frames = np.array(self._frames)
        times = np.array(self._times)
        after = np.flatnonzero(times >= series.time_ps[row])
        return {"frame": int(frames[after[0]]) if len(after) else None, "time_ps": float(series.time_ps[row]), "reason": reason}

    def _conclude(self):
        if self._reference is None and self._buffer:
            self._set_reference()
        if self.energies is not None:
            self.results.explosion = self._explosion_in_series()
        times = np.array(self._times)
        self.results.time_ps = times
        self.results.max_bond_deviation_A = np.array(self._deviation)
        self.results.bond_tolerance = self.bond_tolerance
        self.results.bonds = self._ag.indices[self._bonds] if self._bonds is not None else np.zeros((0, 2), dtype=int)
        self.results.n_bonds = len(self.results.bonds)
        self.results.n_watched_hydrogens = int(len(self._hydrogens)) if self._hydrogens is not None else 0
        failures = [f for f in (self.results.collapse, self.results.hydrogen_loss, self.results.explosion) if f]
        first = min(failures, key=lambda f: f["time_ps"]) if failures else None
        self.results.first_failure = first
        completed = float(times.max()) if len(times) else 0.0
        if self.energies is not None and len(self.energies):
            completed = max(completed, float(np.nanmax(self.energies.time_ps)))
        self.results.completed_time_ps = completed
        if first is None:
            self.results.stable_time_ps = completed
        else:
            before = times[times < first["time_ps"]]
            self.results.stable_time_ps = float(before.max()) if len(before) else 0.0
        self.results.requested_time_ps = self.requested_time_ps
        self.results.fraction_completed = (
            min(completed / self.requested_time_ps, 1.0) if self.requested_time_ps else float("nan")
        )
