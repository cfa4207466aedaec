"""Which explored frames to label: the trust window, spreading along each trajectory, a cap per round.

Scores are in eV/Å: the committee's largest per-atom force deviation (DeePMD's model deviation,
:func:`~mlff_distiller.models.force_deviation`) or the teacher's largest per-atom force error.
DP-GEN's window (``model_devi_f_trust_lo/hi``) is typically 0.05 and 0.15-0.5 eV/Å.
"""

import numpy as np


def uncertain_fraction(scores: np.ndarray, trust_low: float) -> float:
    """Share of frames with a score at or above ``trust_low`` (eV/Å); NaN without frames."""
    scores = np.asarray(scores, dtype=np.float64)
    return float(np.mean(scores >= trust_low)) if len(scores) else float("nan")


def largest_force_error(predicted: np.ndarray, reference: np.ndarray) -> float:
    """max_i |F_i - F_ref,i| (eV/Å) over the atoms of one frame: the teacher's counterpart of the largest deviation."""
    return float(np.max(np.linalg.norm(np.asarray(predicted) - np.asarray(reference), axis=-1)))


def select_frames(
    scores: np.ndarray,
    trajectories: np.ndarray,
    trust_low: float,
    trust_high: float,
    per_trajectory: int,
    spacing: int,
    cap: int,
) -> np.ndarray:
    """Indices of the frames to label, by decreasing priority.

    Parameters
    ----------
    scores : ndarray (F,)
        Score of each explored frame, eV/Å.
    trajectories : ndarray (F,) int
        Trajectory of each frame; frames of one trajectory are given in time order.
    trust_low, trust_high : float
        Candidates have ``trust_low <= score < trust_high`` (eV/Å).
    per_trajectory : int
        Most frames taken from one trajectory.
    spacing : int
        Frames taken from one trajectory are at least this many frames apart in it (1: any two).
    cap : int
        Most frames taken in all.

    Returns
    -------
    ndarray of int
        Within each trajectory the highest scores are taken first (greedily, skipping frames closer
        than ``spacing`` to one already taken); trajectories then contribute in turn (the best of
        each, then the second best of each, ...) until ``cap``, so that no trajectory crowds out the others.
    """
    scores = np.asarray(scores, dtype=np.float64)
    trajectories = np.asarray(trajectories)
    ranked = []  # (rank in its trajectory, -score, index)
    for trajectory in np.unique(trajectories):
        members = np.flatnonzero(trajectories == trajectory)
        position = {int(index): k for k, index in enumerate(members)}  # place in the trajectory's time order
        candidates = [i for i in members if trust_low <= scores[i] < trust_high]
        taken: list[int] = []
        for index in sorted(candidates, key=lambda i: -scores[i]):
            if len(taken) == per_trajectory:
                break
            if all(abs(position[int(index)] - position[t]) >= spacing for t in taken):
                taken.append(int(index))
        ranked += [(rank, -scores[index], index) for rank, index in enumerate(taken)]
    ranked.sort()
    return np.array([index for _, _, index in ranked[:cap]], dtype=np.int64)


def heldout_frames(
    scores: np.ndarray, trust_high: float, count: int, exclude: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """``count`` random frames with a score below ``trust_high`` (eV/Å), none of ``exclude``: fresh MD frames
    to measure the model on (sorted indices; fewer when fewer qualify)."""
    eligible = np.setdiff1d(np.flatnonzero(np.asarray(scores) < trust_high), np.asarray(exclude, dtype=np.int64))
    if len(eligible) <= count:
        return eligible
    return np.sort(rng.choice(eligible, size=count, replace=False))
