"""Stability of a trajectory: broken bonds, lost hydrogens, non-bonded close contacts, temperature explosion, time completed."""

import numpy as np
from ase.data import chemical_symbols, covalent_radii, vdw_alvarez, vdw_radii
from MDAnalysis.analysis.base import AnalysisBase
from MDAnalysis.lib.distances import calc_bonds, capped_distance, self_capped_distance

from .energies import EnergySeries
from .trajectory import atomic_numbers, frame_box, observable_scale

#: Two atoms are bonded on the first frame when closer than this factor times the sum of their covalent radii.
BOND_SCALE = 1.2

#: Close-contact distances (Å) that replace the default rule, keyed by the two element symbols in alphabetical order.
#: O…O 2.2: the shortest O…O of strong O-H…O hydrogen bonds is about 2.4 Å (symmetric bonds such as the Zundel
#: ion's); 2 ps of GFN2-xTB MD (this package's teacher, Langevin, 0.5 fs) reach 2.32 Å in salicylic acid and
#: 2.51 Å in aspirin at 300 K, 2.26 Å and 2.31 Å at 600 K. H…N, H…O, H…F 0.9: below the N-H/O-H/F-H bond
#: lengths (0.92-1.01 Å), so that a proton moving along a hydrogen bond (about 1.2 Å from donor and acceptor
#: half-way) is not flagged, only a hydrogen sitting on an acceptor.
CONTACT_TABLE: dict[tuple[str, str], float] = {("O", "O"): 2.2, ("H", "N"): 0.9, ("H", "O"): 0.9, ("F", "H"): 0.9}
#: Default rule for two heavy atoms: too close below this fraction of the sum of their van der Waals radii
#: (C…C 2.21 Å, C…O 2.09 Å; GFN2-xTB MD at 600 K: C…C ≥ 2.56 Å, C…O ≥ 2.28 Å in aspirin and salicylic acid).
CONTACT_FRACTION = 0.65
#: Default rule for pairs with a hydrogen (H…H 1.2 Å, C…H 1.45 Å; GFN2-xTB at 600 K: H…H ≥ 1.58 Å in
#: malonaldehyde, C…H ≥ 2.0 Å).
HYDROGEN_CONTACT_FRACTION = 0.5
#: Initial positions (``Stability(initial_positions=...)``) with two atoms closer than this (Å) are no structure.
MIN_INITIAL_DISTANCE_A = 0.5
#: Non-bonded distances are searched up to this far (Å) for the closest-distance series (further when a
#: contact distance is larger).
CONTACT_SEARCH_A = 3.0
#: The failures the analysis watches (``first_failure_kind``), in words.
FAILURE_LABELS = {
    "collapse": "bond collapse",
    "hydrogen_loss": "hydrogen loss",
    "explosion": "explosion",
    "close_contact": "non-bonded close contact",
}


def van_der_waals_radius(z: int) -> float:
    """Van der Waals radius in Å: Bondi's (``ase.data.vdw_radii``), else Alvarez 2013's (``ase.data.vdw_alvarez``).

    Elements neither tabulates (Z above 99) get the largest radius either knows.
    """
    for table in (vdw_radii, vdw_alvarez.vdw_radii):
        if z < len(table) and table[z] == table[z]:
            return float(table[z])
    return float(np.nanmax(vdw_alvarez.vdw_radii))


def contact_distance(z_i: int, z_j: int, table: dict[tuple[str, str], float] | None = None) -> float:
    """Distance in Å below which two non-bonded atoms of elements ``z_i`` and ``z_j`` are in close contact.

    ``table`` (default :data:`CONTACT_TABLE`) first, keyed by the sorted pair of symbols; otherwise
    :data:`CONTACT_FRACTION` (two heavy atoms) or :data:`HYDROGEN_CONTACT_FRACTION` (a hydrogen in the
    pair) times the sum of the van der Waals radii (:func:`van_der_waals_radius`).
    """
    table = CONTACT_TABLE if table is None else table
    key = tuple(sorted((chemical_symbols[z_i], chemical_symbols[z_j])))
    if key in table:
        return float(table[key])
    fraction = HYDROGEN_CONTACT_FRACTION if 1 in (z_i, z_j) else CONTACT_FRACTION
    return fraction * (van_der_waals_radius(z_i) + van_der_waals_radius(z_j))


def covalent_bonds(positions: np.ndarray, numbers: np.ndarray, box=None, scale: float = BOND_SCALE) -> np.ndarray:
    """Atom index pairs (B, 2) closer than ``scale`` x the sum of their covalent radii (``ase.data.covalent_radii``).

    Parameters
    ----------
    positions : ndarray, shape (N, 3)
        Å.
    numbers : ndarray, shape (N,)
        Atomic numbers.
    box : ndarray, optional
        MDAnalysis dimensions (Å, degrees) for the minimum image; None in vacuum.
    scale : float
        Bond criterion factor.
    """
    radii = covalent_radii[np.asarray(numbers, dtype=int)]
    if not len(radii):
        return np.zeros((0, 2), dtype=int)
    pairs, distances = self_capped_distance(positions, scale * 2 * float(radii.max()), box=box)
    pairs = np.asarray(pairs, dtype=int).reshape(-1, 2)
    return pairs[distances < scale * (radii[pairs[:, 0]] + radii[pairs[:, 1]])]


def excluded_pairs(bonds: np.ndarray, n_atoms: int) -> np.ndarray:
    """Codes ``i * n_atoms + j`` (i < j) of bonded (1-2) pairs and of pairs sharing a bonded atom (1-3), sorted.

    Parameters
    ----------
    bonds : ndarray, shape (B, 2)
        Atom index pairs, indices below ``n_atoms``.
    n_atoms : int
    """
    neighbours: list[list[int]] = [[] for _ in range(n_atoms)]
    for i, j in bonds:
        neighbours[int(i)].append(int(j))
        neighbours[int(j)].append(int(i))
    pairs = [(int(i), int(j)) for i, j in bonds]
    pairs += [(a, b) for around in neighbours for k, a in enumerate(around) for b in around[k + 1 :]]
    if not pairs:
        return np.zeros(0, dtype=np.int64)
    pairs = np.sort(np.array(pairs, dtype=np.int64), axis=1)
    return np.unique(pairs[:, 0] * n_atoms + pairs[:, 1])


#: Topology formats whose coordinates are the structure a run started from (``initial_positions``).
COORDINATE_TOPOLOGIES = {".pdb", ".ent", ".gro", ".pqr", ".mol2", ".crd"}


def initial_positions(topology, atomgroup) -> np.ndarray | None:
    """Positions (Å, float64) of ``atomgroup``'s atoms in a topology file that has coordinates, else None.

    For :class:`Stability`'s ``initial_positions``: an OpenMM run's PDB (``app.PDBFile.writeFile``
    before the run) holds the structure the run started from, which its DCD does not (the first
    frame comes after ``reportInterval`` steps). Files without coordinates, unreadable files and
    files with another atom count give None.
    """
    from pathlib import Path

    import MDAnalysis as mda

    if topology is None or Path(topology).suffix.lower() not in COORDINATE_TOPOLOGIES:
        return None
    try:
        universe = mda.Universe(str(topology))
    except Exception:  # MDAnalysis raises many kinds for odd files; the fallback is then just not available
        return None
    if universe.atoms.n_atoms != atomgroup.universe.atoms.n_atoms:
        return None
    return universe.atoms.positions[atomgroup.atoms.indices].astype(np.float64)


class Stability(AnalysisBase):
    """When, if ever, a trajectory stops being physical.

    - Collapse (Fu et al. 2022): bonds are found from covalent radii on the first frame
      (distance < ``bond_scale`` x (r_i + r_j)); each bond's reference length is its mean over
      the first ``reference_frames`` frames, or over the frames before the first one on which a
      bond is off its first-frame length by more than ``bond_tolerance`` or positions are not
      finite (a run that fails within those frames: the reference never comes from an exploded
      frame); the run collapses at the first frame where any bond deviates from its reference by
      more than ``bond_tolerance`` (Å). When the first frame is itself past the explosion limit (a
      run that blew up before its first frame was written, as OpenMM's reporters write their first
      frame after ``reportInterval`` steps), bonds and reference lengths come from
      ``initial_positions`` instead, when given and sane.
    - Hydrogen loss (MLIPAudit): an H atom bonded to a heavy atom on the first frame ends up
      farther than ``hydrogen_distance`` (Å) from every heavy atom.
    - Close contact: two atoms neither bonded on the first frame nor bonded to a common atom there
      (1-2 and 1-3 pairs are left out) come closer than their contact distance
      (:func:`contact_distance`: e.g. O…O 2.2 Å, C…C 2.21 Å, H…H 1.2 Å); minimum image in periodic boxes.
      A liquid collapsing onto itself, or two groups of a molecule pressed together, shows here
      before any bond breaks.
    - Explosion: temperature above ``max_temperature`` (K), a non-finite energy, or non-finite positions.
    - Completion: time reached against ``requested_time_ps`` (from the run's settings).

    Results: ``collapse``, ``hydrogen_loss``, ``explosion``, ``close_contact`` (each None or a dict with
    ``frame``, ``time_ps`` and details; ``close_contact`` names the pair furthest inside its contact
    distance on its first frame: ``atoms``, ``names``, ``distance_A``, ``contact_distance_A``,
    ``n_contacts`` on that frame), ``first_failure`` (the earliest of them) and ``first_failure_kind``
    (its key, or None), ``failure_from_ps`` (the first failure's time, less a quarter of the smallest
    spacing of frames or energy rows so that a frame or row written at the failure's step counts as
    failed; None without a failure: frames and energy rows before it are the intact run),
    ``stable_time_ps`` (time from the start of the production to the last frame
    before the first failure, or to the last frame; 0 for a failure during the equilibration),
    ``completed_time_ps`` (production time reached), ``requested_time_ps`` (production time asked
    for), ``fraction_completed``, ``bonds`` (atom index pairs), ``n_bonds``, ``bond_reference_A`` (each
    bond's reference length, Å), ``bonds_from`` ("first frame" or "initial positions"); per frame
    ``time_ps``, ``max_bond_deviation_A``,
    ``close_contacts_per_frame`` (pairs in close contact), ``min_nonbonded_distance_per_frame_A``
    (closest non-bonded, non-1-3 pair within ``max(3 Å, largest contact distance)``, NaN when none) and
    ``min_contact_ratio_per_frame`` (smallest distance / contact distance; below 1 is a contact);
    over the run ``min_nonbonded_distance_A`` (Å), ``n_close_contacts`` (most pairs in contact on one
    frame) and ``min_distance_by_pair_A`` (element pair such as ``"O-O"`` -> closest distance, Å).

    Parameters
    ----------
    atomgroup : AtomGroup or Universe
        Atoms to watch.
    requested_time_ps : float, optional
        Production time the run was asked for (ps).
    energies : EnergySeries, optional
        Energies and temperatures from a file; by default the trajectory's H5MD observables.
    production_start_ps : float
        Start of the production (ps; the end of ``mlffd md --equilibrate``): stable and completed
        times are counted from it, failures are watched on the whole run.
    bond_tolerance : float
        Å (default 0.5).
    hydrogen_distance : float
        Å (default 2.5).
    max_temperature : float
        K (default 10,000).
    reference_frames : int
        Frames averaged for each bond's reference length (default 10; fewer when a bond breaks or
        positions turn non-finite within them).
    bond_scale : float
        Bond criterion on the first frame, times the sum of covalent radii (default 1.2).
    contact_table : dict, optional
        Contact distances in Å keyed by sorted symbol pairs, e.g. ``{("O", "O"): 2.0}``; they replace
        the entries of :data:`CONTACT_TABLE` and the default rule for those pairs.
    initial_positions : ndarray, shape (n_atoms, 3), or a function returning one (or None), optional
        Å, the atoms' positions before the run (a PDB topology's coordinates; a function is called
        only when they are needed, see :func:`initial_positions`). Used only when the
        first frame is already exploded (temperature above ``max_temperature``, non-finite energy
        or positions) and they are finite with no two atoms closer than
        :data:`MIN_INITIAL_DISTANCE_A`: bonds, their reference lengths, watched hydrogens and
        the pairs left out of the contact check are then taken from them.
    """

    def __init__(
        self,
        atomgroup,
        requested_time_ps: float | None = None,
        energies: EnergySeries | None = None,
        bond_tolerance: float = 0.5,
        hydrogen_distance: float = 2.5,
        max_temperature: float = 10_000.0,
        reference_frames: int = 10,
        bond_scale: float = BOND_SCALE,
        contact_table: dict[tuple[str, str], float] | None = None,
        production_start_ps: float = 0.0,
        initial_positions: np.ndarray | None = None,
        **kwargs,
    ):
        self._ag = atomgroup.atoms
        super().__init__(self._ag.universe.trajectory, **kwargs)
        self.requested_time_ps = requested_time_ps
        self.production_start_ps = float(production_start_ps)
        self.energies = energies
        self.bond_tolerance = bond_tolerance
        self.hydrogen_distance = hydrogen_distance
        self.max_temperature = max_temperature
        self.reference_frames = max(int(reference_frames), 1)
        self.bond_scale = bond_scale
        self.contact_table = {**CONTACT_TABLE, **{tuple(sorted(k)): float(v) for k, v in (contact_table or {}).items()}}
        self.initial_positions = initial_positions

    def _prepare(self):
        self._numbers = atomic_numbers(self._ag)
        self._bonds = None
        self._hydrogens = self._heavy = None
        self._buffer: list[np.ndarray] = []
        self._reference = None
        self._bonds_from = "first frame"
        self._times: list[float] = []
        self._deviation: list[float] = []
        self._frames: list[int] = []
        self.results.collapse = self.results.hydrogen_loss = self.results.explosion = self.results.close_contact = None
        self._energy_scale = observable_scale(self._ag.universe, "potential_energy")
        self._prepare_contacts()

    def _prepare_contacts(self) -> None:
        elements, self._species = np.unique(self._numbers, return_inverse=True)
        self._contact_symbols = [chemical_symbols[z] for z in elements]
        self._contact_limits = np.array(
            [[contact_distance(a, b, self.contact_table) for b in elements] for a in elements]
        )
        self._contact_cutoff = max(CONTACT_SEARCH_A, float(self._contact_limits.max()) if len(elements) else 0.0)
        self._excluded = np.zeros(0, dtype=np.int64)
        self._n_contacts: list[int] = []
        self._closest: list[float] = []
        self._ratio: list[float] = []
        self._closest_by_pair: dict[str, float] = {}

    def _find_bonds(self, positions: np.ndarray, box) -> None:
        self._bonds = covalent_bonds(positions, self._numbers, box, self.bond_scale)
        hydrogen = self._numbers == 1
        self._heavy = np.flatnonzero(~hydrogen)
        bonded_h = set(i for pair in self._bonds for i in pair if hydrogen[i] and not hydrogen[pair[0] + pair[1] - i])
        self._hydrogens = np.array(sorted(bonded_h), dtype=int)
        self._excluded = excluded_pairs(self._bonds, len(self._numbers))

    def _single_frame(self):
        ts = self._ts
        positions = self._ag.positions.astype(np.float64)
        box = frame_box(ts)
        time = float(ts.time)
        self._times.append(time)
        self._frames.append(int(ts.frame))
        if self._bonds is None:
            initial = self._usable_initial_positions(ts, positions)
            self._find_bonds(positions if initial is None else initial, box)
            if initial is not None:  # the first frame is exploded: the structure before the run is the reference
                self._bonds_from = "initial positions"
                self._reference = (
                    calc_bonds(initial[self._bonds[:, 0]], initial[self._bonds[:, 1]], box=box)
                    if len(self._bonds)
                    else np.zeros(0)
                )
        if not np.isfinite(positions).all():
            if self._reference is None and self._buffer:  # the frames before the explosion
                self._set_reference()
            self._flag("explosion", ts, reason="non-finite positions")
            self._deviation.append(float("inf"))
            self._record_contacts(0, float("nan"), float("nan"))
            return
        self._check_energies(ts)
        self._check_hydrogens(ts, positions, box)
        self._check_contacts(ts, positions, box)
        lengths = (
            calc_bonds(positions[self._bonds[:, 0]], positions[self._bonds[:, 1]], box=box)
            if len(self._bonds)
            else np.zeros(0)
        )
        if self._reference is None and self._buffer and len(lengths):
            if np.abs(lengths - self._buffer[0][2]).max() > self.bond_tolerance:
                self._set_reference()  # a bond broke within the reference window: the frames before it
        if self._reference is None:
            self._buffer.append((int(ts.frame), time, lengths))
            if len(self._buffer) >= self.reference_frames:
                self._set_reference()
        else:
            self._check_bonds(int(ts.frame), time, lengths)

    def _usable_initial_positions(self, ts, positions: np.ndarray) -> np.ndarray | None:
        """``initial_positions`` when the first frame is exploded and they are sane; else None."""
        initial = self.initial_positions
        if initial is None or not self._first_frame_exploded(ts, positions):
            return None
        initial = initial() if callable(initial) else initial
        initial = None if initial is None else np.asarray(initial, dtype=np.float64)
        if initial is None or initial.shape != positions.shape or not np.isfinite(initial).all():
            return None
        if len(initial) > 1 and self_capped_distance(initial, MIN_INITIAL_DISTANCE_A, return_distances=False).size:
            return None  # atoms on top of each other: a placeholder (a PDB written at the origin), not a structure
        return initial

    def _first_frame_exploded(self, ts, positions: np.ndarray) -> bool:
        """Non-finite positions, or an energy row at or before this frame non-finite or above the temperature limit."""
        if not np.isfinite(positions).all():
            return True
        if self.energies is None:
            data = ts.data
            hot = "temperature" in data and not float(data["temperature"]) <= self.max_temperature
            broken = "potential_energy" in data and not np.isfinite(float(data["potential_energy"]))
            return bool(hot or broken)
        series = self.energies
        times = np.asarray(series.time_ps, dtype=float)
        spacing = np.diff(times)
        spacing = spacing[np.isfinite(spacing) & (spacing > 0)]
        rows = times <= float(ts.time) + (0.25 * float(spacing.min()) if len(spacing) else 0.0)
        bad = ~np.isfinite(series.potential_eV[rows]) | ~np.isfinite(series.total_eV[rows])
        if series.temperature_K is not None:
            bad |= ~(np.asarray(series.temperature_K)[rows] <= self.max_temperature)
        return bool(bad.any())

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
                "frame": frame,
                "time_ps": time,
                "atoms": [int(atoms[i].index), int(atoms[j].index)],
                "names": [str(atoms[i].name), str(atoms[j].name)],
                "reference_length_A": float(self._reference[worst]),
                "length_A": float(lengths[worst]),
                "n_bonds_broken": int((deviation > self.bond_tolerance).sum()),
            }

    def _check_hydrogens(self, ts, positions: np.ndarray, box) -> None:
        if self.results.hydrogen_loss is not None or not len(self._hydrogens) or not len(self._heavy):
            return
        pairs = capped_distance(
            positions[self._hydrogens], positions[self._heavy], self.hydrogen_distance, box=box, return_distances=False
        )
        near = np.zeros(len(self._hydrogens), dtype=bool)
        near[np.asarray(pairs, dtype=int).reshape(-1, 2)[:, 0]] = True
        if not near.all():
            lost = self._hydrogens[~near]
            self._flag(
                "hydrogen_loss",
                ts,
                atoms=[int(self._ag[i].index) for i in lost],
                names=[str(self._ag[i].name) for i in lost],
            )

    def _check_contacts(self, ts, positions: np.ndarray, box) -> None:
        pairs, distances = self_capped_distance(positions, self._contact_cutoff, box=box)
        pairs = np.sort(np.asarray(pairs, dtype=np.int64).reshape(-1, 2), axis=1)
        keep = ~np.isin(pairs[:, 0] * len(self._numbers) + pairs[:, 1], self._excluded)
        pairs, distances = pairs[keep], np.asarray(distances, dtype=np.float64)[keep]
        if not len(distances):
            self._record_contacts(0, float("nan"), float("nan"))
            return
        a, b = self._species[pairs[:, 0]], self._species[pairs[:, 1]]
        ratio = distances / self._contact_limits[a, b]
        self._record_contacts(int((ratio < 1.0).sum()), float(distances.min()), float(ratio.min()))
        codes = np.minimum(a, b) * len(self._contact_symbols) + np.maximum(a, b)
        for code in np.unique(codes):
            label = "-".join(self._contact_symbols[k] for k in divmod(int(code), len(self._contact_symbols)))
            closest = float(distances[codes == code].min())
            self._closest_by_pair[label] = min(closest, self._closest_by_pair.get(label, np.inf))
        worst = int(np.argmin(ratio))
        if ratio[worst] < 1.0 and self.results.close_contact is None:
            i, j = (int(k) for k in pairs[worst])
            self._flag(
                "close_contact",
                ts,
                atoms=[int(self._ag[i].index), int(self._ag[j].index)],
                names=[str(self._ag[i].name), str(self._ag[j].name)],
                distance_A=float(distances[worst]),
                contact_distance_A=float(self._contact_limits[a[worst], b[worst]]),
                n_contacts=self._n_contacts[-1],
            )

    def _record_contacts(self, count: int, closest: float, ratio: float) -> None:
        self._n_contacts.append(count)
        self._closest.append(closest)
        self._ratio.append(ratio)

    def _check_energies(self, ts) -> None:
        if self.energies is not None or self.results.explosion is not None:
            return
        data = ts.data
        if "potential_energy" in data and not np.isfinite(float(data["potential_energy"])):
            self._flag("explosion", ts, reason="non-finite potential energy")
        elif "temperature" in data and not float(data["temperature"]) <= self.max_temperature:
            self._flag(
                "explosion",
                ts,
                reason=f"temperature {float(data['temperature']):.0f} K above {self.max_temperature:.0f} K",
            )

    def _flag(self, kind: str, ts, **details) -> None:
        if self.results[kind] is None:
            self.results[kind] = {"frame": int(ts.frame), "time_ps": float(ts.time), **details}

    def _explosion_in_series(self) -> dict | None:
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
        reason = (
            "non-finite energy"
            if bad[row]
            else f"temperature {series.temperature_K[row]:.0f} K above {self.max_temperature:.0f} K"
        )
        frames = np.array(self._frames)
        times = np.array(self._times)
        after = np.flatnonzero(times >= series.time_ps[row] - self._same_time())
        return {
            "frame": int(frames[after[0]]) if len(after) else None,
            "time_ps": float(series.time_ps[row]),
            "reason": reason,
        }

    def _same_time(self) -> float:
        """Two times (ps) closer than this are the same step: a quarter of the smallest spacing of frames or rows.

        A DCD stores its time step in float32 (OpenMM's DCDReporter: 1.5 fs is read back as
        1.49999996 fs), an energy file in decimal: the frame written with a row can read a little
        earlier than it, and must still be matched to it.
        """
        spacings = [np.diff(np.asarray(self._times, dtype=float))]
        if self.energies is not None:
            spacings.append(np.diff(np.asarray(self.energies.time_ps, dtype=float)))
        steps = np.concatenate(spacings)
        steps = steps[np.isfinite(steps) & (steps > 0)]
        return 0.25 * float(steps.min()) if len(steps) else 0.0

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
        self.results.bond_reference_A = (
            np.asarray(self._reference, dtype=float) if self._reference is not None else np.zeros(0)
        )
        self.results.bonds_from = self._bonds_from
        self.results.n_watched_hydrogens = int(len(self._hydrogens)) if self._hydrogens is not None else 0
        self._conclude_contacts()
        kinds = [k for k in ("collapse", "hydrogen_loss", "explosion", "close_contact") if self.results[k]]
        first_kind = min(kinds, key=lambda k: self.results[k]["time_ps"]) if kinds else None
        first = self.results[first_kind] if first_kind else None
        self.results.first_failure = first
        self.results.first_failure_kind = first_kind
        start = self.production_start_ps
        completed = float(times.max()) if len(times) else 0.0
        if self.energies is not None and len(self.energies):
            completed = max(completed, float(np.nanmax(self.energies.time_ps)))
        completed = max(completed - start, 0.0)
        self.results.completed_time_ps = completed
        self.results.production_start_ps = start
        # frames and energy rows from this time on belong to the failure (a frame written at the failure's step
        # may read a little earlier: same step within _same_time)
        self.results.failure_from_ps = None if first is None else float(first["time_ps"] - self._same_time())
        if first is None:
            self.results.stable_time_ps = completed
        else:
            before = times[times < self.results.failure_from_ps]
            self.results.stable_time_ps = max(float(before.max()) - start, 0.0) if len(before) else 0.0
        self.results.requested_time_ps = self.requested_time_ps
        self.results.fraction_completed = (
            min(completed / self.requested_time_ps, 1.0) if self.requested_time_ps else float("nan")
        )

    def _conclude_contacts(self) -> None:
        closest = np.array(self._closest, dtype=float)
        self.results.close_contacts_per_frame = np.array(self._n_contacts, dtype=int)
        self.results.min_nonbonded_distance_per_frame_A = closest
        self.results.min_contact_ratio_per_frame = np.array(self._ratio, dtype=float)
        self.results.min_nonbonded_distance_A = (
            float(np.nanmin(closest)) if np.isfinite(closest).any() else float("nan")
        )
        self.results.n_close_contacts = int(max(self._n_contacts, default=0))
        self.results.min_distance_by_pair_A = dict(sorted(self._closest_by_pair.items()))
