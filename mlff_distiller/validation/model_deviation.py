"""Model deviation: the committee's force spread along a run, a teacher-free estimate of the student's error.

Where students trained from different seeds disagree, the configuration lies outside what their
data covered, and the error against the teacher is likely large (DeePMD's model deviation, the
selection signal of DP-GEN). Per frame the report takes the largest and the mean per-atom force
deviation of :func:`mlff_distiller.models.committee.force_deviation`, either recorded during the run
(``mlffd md --committee``: ``observables/force_deviation_max`` and ``_mean``) or computed here by a
:class:`~mlff_distiller.models.committee.Committee` on every frame (``mlffd validate --committee``).

The trust levels follow DP-GEN's: ``model_devi_f_trust_lo`` = 0.05 eV/Å and
``model_devi_f_trust_hi`` = 0.15 eV/Å, the values of the examples of its run parameters
(https://docs.deepmodeling.com/projects/dpgen/en/latest/run/param.html; e.g. the CH4 and Al
examples' ``param.json``). DP-GEN calls a frame whose largest deviation lies below ``lo``
"accurate" (already learned), between the two a "candidate" for labelling, and above ``hi``
"failed" (too far from the data to trust, or unphysical).
"""

from collections.abc import Sequence

import numpy as np
from MDAnalysis.analysis.base import AnalysisBase

from ..errors import InvalidValueError, MLFFDError, TrajectoryError
from .trajectory import atomic_numbers, frame_atoms

#: DP-GEN's usual ``model_devi_f_trust_lo`` and ``model_devi_f_trust_hi`` (eV/Å).
TRUST_LO_EV_PER_A = 0.05
TRUST_HI_EV_PER_A = 0.15
#: H5MD observables of ``mlffd md --committee`` (eV/Å).
RECORDED = ("force_deviation_max", "force_deviation_mean")
#: Unit attribute of those observables.
RECORDED_UNIT = "eV Angstrom-1"
#: Fewest frames shared with the teacher for a correlation to be stated.
MIN_CORRELATED_FRAMES = 3


def has_recorded_deviation(universe) -> bool:
    """Whether the trajectory holds the force-deviation observables of ``mlffd md --committee``."""
    handle = getattr(universe.trajectory, "_file", None)
    return handle is not None and all(f"observables/{name}/value" in handle for name in RECORDED)


class ModelDeviation(AnalysisBase):
    """The committee's largest and mean per-atom force deviation on each frame of a run.

    Without ``members`` the values recorded by ``mlffd md --committee`` are read; with them a
    :class:`~mlff_distiller.models.committee.Committee` of the members (the run's student first)
    evaluates every frame (``atomgroup``'s atoms, in vacuum and made whole when they are part of
    the system).

    Results: ``frames``, ``time_ps``, ``max_deviation`` and ``mean_deviation`` (eV/Å, per frame, NaN
    where not recorded or where a member refused the frame), ``n_members`` (None when read from the file), ``source`` and the figures of
    :func:`deviation_statistics`. :meth:`correlate` adds the correlation with the teacher's errors.

    Parameters
    ----------
    atomgroup : AtomGroup or Universe
        The atoms the committee judges.
    members : sequence of Student or checkpoint paths, optional
        Two or more committee members; None reads the recorded deviation.
    trust_lo, trust_hi : float
        Trust levels in eV/Å (DP-GEN's defaults :data:`TRUST_LO_EV_PER_A`, :data:`TRUST_HI_EV_PER_A`).

    Raises
    ------
    InvalidValueError
        Unless 0 < ``trust_lo`` < ``trust_hi``.
    TrajectoryError
        Without members, for a trajectory that recorded no deviation (or in another unit).
    UnsupportedElementError
        When a member lacks an element of the atoms, before any frame is read.
    """

    def __init__(
        self,
        atomgroup,
        members: Sequence | None = None,
        trust_lo: float = TRUST_LO_EV_PER_A,
        trust_hi: float = TRUST_HI_EV_PER_A,
        **kwargs,
    ):
        self._ag = atomgroup.atoms
        super().__init__(self._ag.universe.trajectory, **kwargs)
        if not 0 < trust_lo < trust_hi:
            raise InvalidValueError(f"trust levels must satisfy 0 < lo < hi, not lo = {trust_lo}, hi = {trust_hi}")
        self.trust_lo, self.trust_hi = float(trust_lo), float(trust_hi)
        self.partial = self._ag.n_atoms < self._ag.universe.atoms.n_atoms
        self.numbers = atomic_numbers(self._ag)
        self.committee = None
        if members is not None:
            from ..models.committee import Committee

            self.committee = Committee(list(members))
            for calculator in self.committee.calculators:
                calculator.species(self.numbers)  # refuses foreign elements now
        else:
            _check_recorded(self._ag.universe)

    def _prepare(self):
        self._rows = []

    def _single_frame(self):
        ts = self._ts
        if self.committee is not None:
            try:
                largest, mean = self.committee.deviation(frame_atoms(self._ag, self.numbers, whole=self.partial))
            except MLFFDError:  # a member refusing the frame (atoms too close): no value, as a gap
                largest = mean = np.nan
        else:
            largest, mean = (float(ts.data.get(name, np.nan)) for name in RECORDED)
        self._rows.append((int(ts.frame), float(ts.time), largest, mean))

    def _conclude(self):
        rows = np.array(self._rows, dtype=float).reshape(-1, 4)
        self.results.frames = rows[:, 0].astype(int)
        self.results.time_ps = rows[:, 1]
        self.results.max_deviation = rows[:, 2]
        self.results.mean_deviation = rows[:, 3]
        self.results.n_members = len(self.committee) if self.committee is not None else None
        self.results.source = "recorded during MD" if self.committee is None else "committee evaluated on the frames"
        self.results.update(deviation_statistics(rows[:, 2], rows[:, 3], self.trust_lo, self.trust_hi))
        self.results.update(correlation_with_teacher(self.results, None))

    def correlate(self, force_fidelity) -> "ModelDeviation":
        """Add the correlation with the teacher's per-frame errors (results of :class:`ForceFidelity`); returns self."""
        self.results.update(correlation_with_teacher(self.results, force_fidelity))
        return self


def deviation_statistics(
    max_deviation: np.ndarray, mean_deviation: np.ndarray, trust_lo: float, trust_hi: float
) -> dict:
    """Statistics over frames of the per-frame deviations (eV/Å); frames without a value (NaN) left out.

    Returns ``max_deviation_mean``, ``max_deviation_median``, ``max_deviation_p95`` and
    ``max_deviation_max`` (of the per-frame largest deviation), ``mean_deviation_mean``,
    ``fraction_above_trust_lo`` and ``fraction_above_trust_hi`` (share of frames whose largest
    deviation exceeds the level), ``trust_lo``, ``trust_hi`` and ``n_frames`` (frames with a value).
    """
    largest = np.asarray(max_deviation, dtype=float)
    keep = np.isfinite(largest)
    largest, mean = largest[keep], np.asarray(mean_deviation, dtype=float)[keep]
    out = {"trust_lo": float(trust_lo), "trust_hi": float(trust_hi), "n_frames": int(keep.sum())}
    if not keep.any():
        largest = mean = np.array([np.nan])
    return {
        **out,
        "max_deviation_mean": float(largest.mean()),
        "max_deviation_median": float(np.median(largest)),
        "max_deviation_p95": float(np.percentile(largest, 95)),
        "max_deviation_max": float(largest.max()),
        "mean_deviation_mean": float(mean.mean()),
        "fraction_above_trust_lo": float(np.mean(largest > trust_lo)) if keep.any() else np.nan,
        "fraction_above_trust_hi": float(np.mean(largest > trust_hi)) if keep.any() else np.nan,
    }


def correlation_with_teacher(deviation, force_fidelity) -> dict:
    """Pearson and Spearman correlation of the per-frame largest deviation with the teacher's per-frame errors.

    On the frames both have (the teacher's compared frames with a recorded deviation): against the
    force RMSE per frame (``pearson_rmse``, ``spearman_rmse``) and the largest per-atom force error
    |F_student - F_teacher| per frame (``pearson_max_error``, ``spearman_max_error``); NaN with
    fewer than :data:`MIN_CORRELATED_FRAMES` frames, without a teacher, or when either series is
    constant. ``n_correlated``: the frames used.
    """
    from scipy.stats import pearsonr, spearmanr

    empty = dict.fromkeys(("pearson_rmse", "spearman_rmse", "pearson_max_error", "spearman_max_error"), np.nan)
    if force_fidelity is None or force_fidelity.get("student_forces") is None:
        return {**empty, "n_correlated": 0, "teacher_max_error": None}
    index = {int(f): i for i, f in enumerate(deviation["frames"])}
    teacher_frames = [int(f) for f in force_fidelity["frames"]]
    pick = [k for k, f in enumerate(teacher_frames) if f in index and np.isfinite(deviation["max_deviation"][index[f]])]
    error = np.linalg.norm(np.asarray(force_fidelity["student_forces"]) - force_fidelity["teacher_forces"], axis=-1)
    max_error = error.max(axis=-1)
    out = {"n_correlated": len(pick), "teacher_max_error": max_error}
    if len(pick) < MIN_CORRELATED_FRAMES:
        return {**empty, **out}
    devi = np.array([deviation["max_deviation"][index[teacher_frames[k]]] for k in pick])
    for name, values in (("rmse", np.asarray(force_fidelity["per_frame_rmse"])[pick]), ("max_error", max_error[pick])):
        constant = np.ptp(devi) == 0 or np.ptp(values) == 0
        out[f"pearson_{name}"] = np.nan if constant else float(pearsonr(devi, values).statistic)
        out[f"spearman_{name}"] = np.nan if constant else float(spearmanr(devi, values).statistic)
    return out


def _check_recorded(universe) -> None:
    """Refuse a trajectory without the recorded deviation, or with it in another unit than eV/Å."""
    if not has_recorded_deviation(universe):
        raise TrajectoryError(
            "the trajectory records no committee force deviation (mlffd md --committee); "
            "pass the committee's other members (--committee) to evaluate it"
        )
    handle = universe.trajectory._file
    for name in RECORDED:
        unit = handle[f"observables/{name}/value"].attrs.get("unit", "")
        unit = unit.decode() if isinstance(unit, bytes) else str(unit)
        if unit != RECORDED_UNIT:
            raise TrajectoryError(f"observables/{name} is in '{unit}'; expected '{RECORDED_UNIT}'")
