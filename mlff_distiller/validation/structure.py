"""Structure of a trajectory against a reference: radial distribution functions and their distance."""

import numpy as np
from MDAnalysis.analysis.base import AnalysisBase
from MDAnalysis.lib.distances import self_capped_distance

from .trajectory import frame_box


class PairDistribution(AnalysisBase):
    """Radial distribution of all pairs of an AtomGroup, averaged over frames.

    Periodic frames give the RDF g(r) (dimensionless, tends to 1 at large r); frames without a
    box give the pair-distance distribution h(r) of the molecule (1/Å, integral 1 over [0, r_max]).

    Results: ``r`` (bin centres, Å), ``g`` (g(r) or h(r)), ``periodic``.

    Parameters
    ----------
    atomgroup : AtomGroup
        Atoms whose pairs are counted.
    r_max : float
        Largest distance in Å (clipped to half the shortest box length when periodic).
    n_bins : int
        Number of bins.
    """

    def __init__(self, atomgroup, r_max: float = 6.0, n_bins: int = 120, **kwargs):
        self._ag = atomgroup.atoms
        super().__init__(self._ag.universe.trajectory, **kwargs)
        self.r_max = float(r_max)
        self.n_bins = int(n_bins)

    def _prepare(self):
        box = frame_box(self._trajectory.ts)
        self._periodic = box is not None
        if self._periodic:
            self.r_max = min(self.r_max, 0.5 * float(np.min(box[:3])))
        self._edges = np.linspace(0.0, self.r_max, self.n_bins + 1)
        self._counts = np.zeros(self.n_bins)
        self._density_sum = 0.0
        self._n_frames = 0

    def _single_frame(self):
        box = frame_box(self._ts)
        _, distances = self_capped_distance(self._ag.positions, self.r_max, box=box)
        self._counts += np.histogram(distances, bins=self._edges)[0]
        if self._periodic:
            n = self._ag.n_atoms
            self._density_sum += n * (n - 1) / 2.0 / float(self._ts.volume)
        self._n_frames += 1

    def _conclude(self):
        r = 0.5 * (self._edges[1:] + self._edges[:-1])
        width = np.diff(self._edges)
        if self._periodic:
            shell = 4.0 / 3.0 * np.pi * (self._edges[1:] ** 3 - self._edges[:-1] ** 3)
            g = self._counts / (self._density_sum * shell) if self._density_sum > 0 else np.zeros_like(r)
        else:
            total = self._counts.sum()
            g = self._counts / (total * width) if total > 0 else np.zeros_like(r)
        self.results.r = r
        self.results.g = g
        self.results.periodic = self._periodic


def distribution_error(r: np.ndarray, g: np.ndarray, g_ref: np.ndarray, periodic: bool) -> float:
    """Normalised distance between two distributions on the same bins.

    Periodic (RDF): integral |g_ref - g| dr / integral |g_ref - 1| dr (Matbench Discovery's
    normalisation). Molecules (h(r), each integrating to 1): integral |h_ref - h| dr, between 0
    (identical) and 2 (no overlap).
    """
    dr = np.gradient(r)
    numerator = float(np.sum(np.abs(g_ref - g) * dr))
    denominator = float(np.sum(np.abs(g_ref - 1.0) * dr)) if periodic else 1.0
    return numerator / denominator if denominator > 0 else float("nan")


class StructureComparison(AnalysisBase):
    """RDF (periodic) or h(r) (molecules) of a trajectory against a reference trajectory.

    Results: ``r`` (Å), ``g`` and ``g_reference``, ``periodic``, ``error`` (see
    :func:`distribution_error`; 0 means identical structure).

    Parameters
    ----------
    atomgroup : AtomGroup
        Atoms of the trajectory under test.
    reference : AtomGroup
        The same atoms in the reference trajectory (the teacher's run, or any other).
    r_max : float
        Largest distance in Å.
    n_bins : int
        Number of bins.
    """

    def __init__(self, atomgroup, reference, r_max: float = 6.0, n_bins: int = 120, **kwargs):
        self._ag = atomgroup.atoms
        super().__init__(self._ag.universe.trajectory, **kwargs)
        self.reference = reference.atoms
        if self.reference.n_atoms != self._ag.n_atoms:
            from ..errors import TrajectoryError

            raise TrajectoryError(
                f"the reference has {self.reference.n_atoms} atoms and the trajectory {self._ag.n_atoms}; "
                "compare the same system"
            )
        self._distribution = PairDistribution(self._ag, r_max=r_max, n_bins=n_bins)
        self.r_max, self.n_bins = r_max, n_bins

    def _prepare(self):
        self._distribution._prepare()

    def _single_frame(self):
        self._distribution._ts = self._ts
        self._distribution._single_frame()

    def _conclude(self):
        self._distribution._conclude()
        mine = self._distribution.results
        reference = PairDistribution(self.reference, r_max=self._distribution.r_max, n_bins=self.n_bins).run()
        if len(reference.results.r) != len(mine.r) or not np.allclose(reference.results.r, mine.r):
            from ..errors import TrajectoryError

            raise TrajectoryError("the reference's box is too small for the trajectory's RDF range; lower r_max")
        self.results.r = mine.r
        self.results.g = mine.g
        self.results.g_reference = reference.results.g
        self.results.periodic = bool(mine.periodic)
        if reference.results.periodic != mine.periodic:
            from ..errors import TrajectoryError

            raise TrajectoryError("one trajectory is periodic and the other is not; their RDFs cannot be compared")
        self.results.error = distribution_error(mine.r, mine.g, reference.results.g, mine.periodic)
