"""Internal coordinates (bonds, angles, dihedrals) of a run against a short teacher MD: which ones leave its distribution.

>>> reference = teacher_md(read_structure("aspirin"), temperature_K=300.0, time_ps=1.5)  # validation.teacher_md
>>> internal = InternalCoordinates(run.universe, reference.universe()).run()
>>> internal.results.worst[0]["label"], internal.results.max_divergence  # e.g. 'C6-O2-H20 angle', 1.0
"""

import numpy as np
from MDAnalysis.analysis.base import AnalysisBase
from MDAnalysis.lib.distances import calc_angles, calc_bonds, calc_dihedrals

from ..errors import TrajectoryError
from .stability import BOND_SCALE, covalent_bonds
from .trajectory import atomic_numbers, frame_box

#: Bins of the shared histogram of each internal coordinate.
N_BINS = 24
#: Internal coordinates named in ``worst`` (and drawn by the plot) by default.
N_WORST = 5
#: A run's value lies outside the reference's distribution beyond the reference's range widened by
#: this many reference standard deviations on each side.
OUTSIDE_MARGIN_SD = 1.0
#: Unit of each kind of internal coordinate.
UNITS = {"bond": "Å", "angle": "deg", "dihedral": "deg"}


def enumerate_internal(bonds: np.ndarray, n_atoms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bonds (B, 2), angles (A, 3) and proper dihedrals (D, 4) of a bond graph, as atom index tuples.

    An angle i-j-k joins two bonds at j (i < k); a dihedral i-j-k-l turns about bond j-k (j < k), with
    i bonded to j, l bonded to k and i != l (three-membered rings give none).
    """
    neighbours: list[list[int]] = [[] for _ in range(n_atoms)]
    for i, j in bonds:
        neighbours[int(i)].append(int(j))
        neighbours[int(j)].append(int(i))
    pairs = sorted({tuple(sorted((int(i), int(j)))) for i, j in bonds})
    angles = [(i, j, k) for j in range(n_atoms) for i in sorted(neighbours[j]) for k in sorted(neighbours[j]) if i < k]
    dihedrals = [
        (i, j, k, m)
        for j, k in pairs
        for i in sorted(neighbours[j])
        if i != k
        for m in sorted(neighbours[k])
        if m != j and m != i
    ]
    return (
        np.array(pairs, dtype=int).reshape(-1, 2),
        np.array(angles, dtype=int).reshape(-1, 3),
        np.array(dihedrals, dtype=int).reshape(-1, 4),
    )


def internal_values(
    positions: np.ndarray, bonds: np.ndarray, angles: np.ndarray, dihedrals: np.ndarray, box=None
) -> np.ndarray:
    """Bond lengths (Å), then angles (degrees, 0 to 180), then dihedrals (degrees, -180 to 180) of one frame.

    ``box`` (MDAnalysis dimensions) applies the minimum image to every vector.
    """
    p = positions.astype(np.float64)
    return np.concatenate(
        [
            calc_bonds(p[bonds[:, 0]], p[bonds[:, 1]], box=box) if len(bonds) else np.zeros(0),
            np.degrees(calc_angles(p[angles[:, 0]], p[angles[:, 1]], p[angles[:, 2]], box=box))
            if len(angles)
            else np.zeros(0),
            np.degrees(calc_dihedrals(*(p[dihedrals[:, k]] for k in range(4)), box=box))
            if len(dihedrals)
            else np.zeros(0),
        ]
    )


def centre_dihedrals(values: np.ndarray, reference: np.ndarray, periodic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unwrap periodic columns about the reference's circular mean.

    Parameters
    ----------
    values, reference : ndarray, shapes (F, M) and (R, M)
        Samples of M coordinates, degrees for the periodic ones.
    periodic : ndarray of bool, shape (M,)

    Returns
    -------
    values, reference
        Periodic columns as centre + a deviation in [-180, 180) degrees, the centre being the circular
        mean of the reference's column; other columns unchanged.
    """
    radians = np.radians(reference[:, periodic])
    centre = np.zeros(values.shape[1])
    centre[periodic] = np.degrees(np.arctan2(np.sin(radians).mean(axis=0), np.cos(radians).mean(axis=0)))

    def unwrap(x):
        x = x.copy()
        x[:, periodic] = centre[periodic] + (x[:, periodic] - centre[periodic] + 180.0) % 360.0 - 180.0
        return x

    return unwrap(values), unwrap(reference)


def shared_histograms(
    values: np.ndarray, reference: np.ndarray, n_bins: int = N_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histograms of each column of two sample sets on shared bins spanning both.

    Parameters
    ----------
    values, reference : ndarray, shapes (F, M) and (R, M)
    n_bins : int

    Returns
    -------
    edges : ndarray, shape (M, n_bins + 1)
    counts, reference_counts : ndarray, shape (M, n_bins)
        Samples per bin (the last bin includes its upper edge).
    """
    low = np.minimum(values.min(axis=0), reference.min(axis=0))
    high = np.maximum(values.max(axis=0), reference.max(axis=0))
    width = np.where(high > low, high - low, 1.0)
    edges = low[:, None] + width[:, None] * np.linspace(0.0, 1.0, n_bins + 1)[None]

    def count(x):
        index = np.clip(((x - low) / width * n_bins).astype(int), 0, n_bins - 1)
        counts = np.zeros((x.shape[1], n_bins))
        np.add.at(counts, (np.broadcast_to(np.arange(x.shape[1]), x.shape), index), 1.0)
        return counts

    return edges, count(values), count(reference)


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence in bits between rows of two histograms (normalised here): 0 identical, 1 disjoint.

    JS(P, Q) = KL(P || M) / 2 + KL(Q || M) / 2 with M = (P + Q) / 2 and KL in base 2.
    """
    p = p / p.sum(axis=-1, keepdims=True)
    q = q / q.sum(axis=-1, keepdims=True)
    m = 0.5 * (p + q)

    def kl(a):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 0, a * np.log2(a / m), 0.0).sum(axis=-1)

    return np.clip(0.5 * kl(p) + 0.5 * kl(q), 0.0, 1.0)


def compare_samples(
    values: np.ndarray,
    reference: np.ndarray,
    periodic: np.ndarray,
    n_bins: int = N_BINS,
    margin_sd: float = OUTSIDE_MARGIN_SD,
) -> dict[str, np.ndarray]:
    """Each column of a run's samples against the same column of the reference's.

    Parameters
    ----------
    values, reference : ndarray, shapes (F, M) and (R, M)
        Samples of M coordinates (Å or degrees), finite.
    periodic : ndarray of bool, shape (M,)
        Columns in degrees on a circle (dihedrals).
    n_bins : int
        Bins of the shared histograms.
    margin_sd : float
        Widening of the reference's range, in its standard deviations, for ``outside_fraction``.

    Returns
    -------
    dict of ndarray
        ``divergence`` (Jensen-Shannon, bits, :func:`jensen_shannon` of :func:`shared_histograms`),
        ``outside_fraction`` (share of the run's samples outside ``bounds``), ``bounds`` (M, 2: the
        reference's min and max widened by ``margin_sd`` standard deviations), ``mean``,
        ``reference_mean``, ``shift`` (mean - reference_mean), ``shift_sd`` (shift / reference standard
        deviation), ``edges``, ``counts``, ``reference_counts``; periodic columns unwrapped about the
        reference's circular mean (:func:`centre_dihedrals`) first.
    """
    values, reference = centre_dihedrals(values, reference, periodic)
    edges, counts, reference_counts = shared_histograms(values, reference, n_bins)
    spread = reference.std(axis=0)
    bounds = np.stack([reference.min(axis=0) - margin_sd * spread, reference.max(axis=0) + margin_sd * spread], axis=1)
    outside = ((values < bounds[:, 0]) | (values > bounds[:, 1])).mean(axis=0)
    mean, reference_mean = values.mean(axis=0), reference.mean(axis=0)
    shift = mean - reference_mean
    with np.errstate(divide="ignore", invalid="ignore"):
        shift_sd = np.where(spread > 0, shift / spread, np.where(shift == 0, 0.0, np.inf))
    return {
        "divergence": jensen_shannon(counts, reference_counts),
        "outside_fraction": outside,
        "bounds": bounds,
        "mean": mean,
        "reference_mean": reference_mean,
        "shift": shift,
        "shift_sd": shift_sd,
        "edges": edges,
        "counts": counts,
        "reference_counts": reference_counts,
    }


class InternalCoordinates(AnalysisBase):
    """Distribution of every bond length, angle and dihedral of a run against a reference run (the teacher's).

    Bonds are found on the run's first frame (covalent radii, as :class:`Stability`) among the given
    atoms; angles join two bonds at an atom, dihedrals turn about a bond. Each coordinate is compared
    with :func:`compare_samples` in two ways:

    - ``divergence``: the Jensen-Shannon divergence, in bits, of the run's and the reference's
      histograms on shared bins spanning both samples (dihedrals unwrapped about the reference's
      circular mean first, so that 179° and -179° are neighbours): 0 for identical histograms, 1 when
      they do not overlap; for two Gaussians of one width it is 0.16 at a shift of 1 standard
      deviation, 0.49 at 2, 0.76 at 3. Two independent samples of one distribution score above 0
      (0.02-0.2 for a few hundred frames).
    - ``outside_fraction``: the share of the run's frames outside the reference's range widened by
      ``margin_sd`` of its standard deviations on each side. A minority of frames in geometry the
      teacher never visits (an angle opening to 170° a fifth of the time) barely moves the divergence
      (a fraction w of frames where the reference has none adds at most w/2 bits) but shows here.

    ``shift`` tells how far the mean moved (Å or degrees, the run's minus the reference's),
    ``shift_sd`` the same in standard deviations of the reference. Coordinates are ranked by
    ``outside_fraction`` (the judged figure, so the first named sets ``max_outside_fraction``), then by
    ``divergence``, then by |shift_sd|.

    Bonds and angles have one well-sampled basin in a few ps; dihedrals of rotors (methyl, hydroxyl,
    ester groups) visit their minima in proportions that two short runs of the same potential need
    not share (two 1-2 ps GFN2-xTB runs of aspirin differ by 0.57 bits on a methyl dihedral). So
    the figures a verdict can judge, ``max_divergence`` and ``max_outside_fraction``, cover bonds and
    angles; dihedrals have ``max_dihedral_divergence`` and their own list of worst.

    Results: ``kinds`` ("bond", "angle", "dihedral" per coordinate), ``atoms`` (universe indices),
    ``labels`` (e.g. "O3-C8-O4 angle": element symbol and universe index), ``units``, ``divergence``
    (bits), ``outside_fraction``, ``bounds`` (Å or degrees), ``shift``, ``shift_sd``, ``mean``,
    ``reference_mean``; ``worst`` (the ``n_worst`` highest-ranked bonds and angles) and
    ``worst_dihedrals`` (the same for dihedrals), as dicts with ``label``, ``kind``, ``atoms``,
    ``unit``, ``divergence``, ``outside_fraction``, ``shift``, ``shift_sd``, ``bounds``, ``edges``,
    ``density``, ``reference_density`` for a plot (densities per unit of the coordinate; dihedral
    edges and bounds unwrapped about the reference's mean, so they may pass ±180°); the figures
    ``max_divergence`` (bits), ``max_outside_fraction`` (bonds and angles), ``max_dihedral_divergence``
    (bits), ``n_coordinates``; ``n_frames_used`` (frames of the run with finite coordinates) and
    ``n_reference_frames``.

    Parameters
    ----------
    atomgroup : AtomGroup or Universe
        Atoms of the run under test.
    reference : AtomGroup or Universe
        The same atoms in the reference run (e.g. ``teacher_md(...).universe()``).
    n_bins : int
        Bins of each shared histogram.
    n_worst : int
        Coordinates named in ``worst`` and ``worst_dihedrals``.
    margin_sd : float
        Widening of the reference's range for ``outside_fraction``, in reference standard deviations.
    bond_scale : float
        Bond criterion, times the sum of covalent radii.
    """

    def __init__(
        self,
        atomgroup,
        reference,
        n_bins: int = N_BINS,
        n_worst: int = N_WORST,
        margin_sd: float = OUTSIDE_MARGIN_SD,
        bond_scale: float = BOND_SCALE,
        **kwargs,
    ):
        self._ag = atomgroup.atoms
        super().__init__(self._ag.universe.trajectory, **kwargs)
        self.reference = reference.atoms
        if self.reference.n_atoms != self._ag.n_atoms:
            raise TrajectoryError(
                f"the reference has {self.reference.n_atoms} atoms and the run {self._ag.n_atoms}; "
                "compare the same atoms"
            )
        self.n_bins = int(n_bins)
        self.n_worst = int(n_worst)
        self.margin_sd = float(margin_sd)
        self.bond_scale = bond_scale

    def _prepare(self):
        self._numbers = atomic_numbers(self._ag)
        if not np.array_equal(self._numbers, atomic_numbers(self.reference)):
            raise TrajectoryError(
                "the reference's elements differ from the run's, atom by atom; compare the same atoms"
            )
        self._topology = None
        self._values: list[np.ndarray] = []

    def _single_frame(self):
        box = frame_box(self._ts)
        positions = self._ag.positions
        if self._topology is None:
            self._topology = enumerate_internal(
                covalent_bonds(positions.astype(np.float64), self._numbers, box, self.bond_scale), self._ag.n_atoms
            )
        self._values.append(internal_values(positions, *self._topology, box=box))

    def _conclude(self):
        bonds, angles, dihedrals = self._topology
        kinds = np.array(["bond"] * len(bonds) + ["angle"] * len(angles) + ["dihedral"] * len(dihedrals))
        reference = np.array(
            [
                internal_values(self.reference.positions, *self._topology, box=frame_box(ts))
                for ts in self.reference.universe.trajectory
            ]
        )
        values = np.array(self._values)
        finite = np.isfinite(values).all(axis=1)
        if not finite.any():
            raise TrajectoryError("no frame of the run has finite internal coordinates")
        c = compare_samples(values[finite], reference, kinds == "dihedral", self.n_bins, self.margin_sd)
        r = self.results
        r.kinds = [str(k) for k in kinds]
        r.atoms = [tuple(int(self._ag[k].index) for k in row) for group in (bonds, angles, dihedrals) for row in group]
        symbols = dict(
            zip(self._ag.indices.tolist(), (str(e).strip().capitalize() for e in self._ag.elements), strict=False)
        )
        r.labels = [
            f"{'-'.join(f'{symbols[i]}{i}' for i in row)} {kind}" for row, kind in zip(r.atoms, r.kinds, strict=False)
        ]
        r.units = [UNITS[k] for k in r.kinds]
        for key in ("divergence", "outside_fraction", "bounds", "shift", "shift_sd", "mean", "reference_mean"):
            r[key] = c[key]
        r.n_coordinates = len(kinds)
        r.n_frames_used = int(finite.sum())
        r.n_reference_frames = len(reference)
        structural = kinds != "dihedral"
        r.max_divergence = float(c["divergence"][structural].max()) if structural.any() else float("nan")
        r.max_outside_fraction = float(c["outside_fraction"][structural].max()) if structural.any() else float("nan")
        r.max_dihedral_divergence = float(c["divergence"][~structural].max()) if (~structural).any() else float("nan")
        rank = np.lexsort((-np.abs(c["shift_sd"]), -c["divergence"], -c["outside_fraction"]))
        r.worst = [self._describe(k, c) for k in rank if structural[k]][: self.n_worst]
        r.worst_dihedrals = [self._describe(k, c) for k in rank if not structural[k]][: self.n_worst]

    def _describe(self, k: int, c: dict[str, np.ndarray]) -> dict:
        r = self.results
        widths = np.diff(c["edges"][k])
        return {
            "label": r.labels[k],
            "kind": r.kinds[k],
            "atoms": list(r.atoms[k]),
            "unit": r.units[k],
            "divergence": float(c["divergence"][k]),
            "outside_fraction": float(c["outside_fraction"][k]),
            "shift": float(c["shift"][k]),
            "shift_sd": float(c["shift_sd"][k]),
            "bounds": c["bounds"][k],
            "edges": c["edges"][k],
            "density": c["counts"][k] / max(c["counts"][k].sum(), 1.0) / widths,
            "reference_density": c["reference_counts"][k] / max(c["reference_counts"][k].sum(), 1.0) / widths,
        }


def worst_coordinates(results, key: str = "worst") -> list[str]:
    """One line per coordinate of ``results[key]`` (``"worst"`` or ``"worst_dihedrals"``): label, divergence, shift."""
    return [
        f"{w['label']}: JS {w['divergence']:.2f} bits, {100 * w['outside_fraction']:.0f}% outside the teacher's range, "
        f"shift {w['shift']:+.3g} {w['unit']} ({w['shift_sd']:+.1f} sd)"
        for w in results[key]
    ]
