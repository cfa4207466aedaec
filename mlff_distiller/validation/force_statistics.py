"""Force statistics: the figures of student against teacher forces (eV/Å), per frame, atom and element.

The formulas of :class:`~mlff_distiller.validation.forces.ForceFidelity`, on plain arrays.
"""

from collections.abc import Sequence

import numpy as np

from ..elements import symbols

#: Teacher forces below this magnitude (eV/Å) carry no reliable direction: no angle is measured there.
MIN_TEACHER_FORCE = 0.05
#: Atoms named in ``worst_atoms`` by default.
N_WORST_ATOMS = 5


def force_statistics(
    student: np.ndarray,
    teacher: np.ndarray,
    numbers: Sequence[int],
    min_teacher_force: float = MIN_TEACHER_FORCE,
    n_worst: int = N_WORST_ATOMS,
) -> dict:
    """Agreement of two sets of forces, overall, per element and per frame.

    Parameters
    ----------
    student, teacher : ndarray, shape (F, N, 3)
        Forces in eV/Å on F frames of N atoms.
    numbers : sequence of int, length N
        Atomic numbers.
    min_teacher_force : float
        Atoms whose teacher force is below this (eV/Å) get no angular error.
    n_worst : int
        Atoms named in ``worst_atoms``.

    Returns
    -------
    dict
        ``rmse`` (eV/Å, over all components), ``mae`` (eV/Å), ``r2`` (over flattened components),
        ``angle_mean_deg``, ``angle_median_deg``, ``n_angles``, ``angles_deg`` (every measured angle),
        ``per_frame_rmse`` (eV/Å, shape (F,)), ``per_element`` (symbol -> rmse, mae, angle_median_deg,
        n_atoms), and the worst atoms (:func:`atom_errors`): ``per_atom_rmse``, ``worst_atoms``,
        ``worst_atom_rmse``, ``max_atom_error``, ``max_atom_error_atom``, ``max_atom_error_frame``.
        An atom whose student force is exactly zero while the teacher's is not counts as 90°;
        antiparallel forces give 180°.
    """
    student = np.asarray(student, dtype=np.float64)
    teacher = np.asarray(teacher, dtype=np.float64)
    numbers = np.asarray(numbers, dtype=int)
    if student.shape != teacher.shape or student.ndim != 3 or student.shape[1] != len(numbers):
        raise ValueError(
            f"force arrays must both be (frames, {len(numbers)}, 3); got {student.shape} and {teacher.shape}"
        )
    diff = student - teacher
    angles = angular_errors(student, teacher, min_teacher_force)
    out = _summary(diff, teacher, angles)
    out["angles_deg"] = angles[np.isfinite(angles)]
    out["per_frame_rmse"] = np.sqrt((diff**2).mean(axis=(1, 2)))
    out["per_element"] = {}
    for z in np.unique(numbers):
        pick = numbers == z
        element = _summary(diff[:, pick], teacher[:, pick], angles[:, pick])
        element["n_atoms"] = int(pick.sum())
        del element["r2"]
        out["per_element"][symbols([z])[0]] = element
    out.update(atom_errors(diff, numbers, n_worst))
    return out


def atom_errors(diff: np.ndarray, numbers: Sequence[int], n_worst: int = N_WORST_ATOMS) -> dict:
    """The atoms a student gets most wrong.

    Parameters
    ----------
    diff : ndarray, shape (F, N, 3)
        Student minus teacher forces in eV/Å.
    numbers : sequence of int, length N
        Atomic numbers.
    n_worst : int
        Atoms named in ``worst_atoms``.

    Returns
    -------
    dict
        ``per_atom_rmse`` (eV/Å, shape (N,): sqrt of the mean over frames and components),
        ``worst_atoms`` (the ``n_worst`` atoms of largest per-atom RMSE, largest first, each
        ``{"atom": index among the N atoms, "element": symbol, "rmse": eV/Å}``), ``worst_atom_rmse``
        (eV/Å, the largest per-atom RMSE), ``max_atom_error`` (eV/Å, the largest |F_s - F_t| of any
        atom on any frame) with ``max_atom_error_atom`` (index among the N atoms) and
        ``max_atom_error_frame`` (index among the F frames).
    """
    per_atom = np.sqrt((diff**2).mean(axis=(0, 2)))
    norms = np.linalg.norm(diff, axis=2)
    frame, atom = np.unravel_index(int(np.argmax(norms)), norms.shape)
    order = np.argsort(-per_atom, kind="stable")[: max(int(n_worst), 0)]
    elements = symbols([int(numbers[i]) for i in order]) if len(order) else []
    return {
        "per_atom_rmse": per_atom,
        "worst_atoms": [
            {"atom": int(i), "element": e, "rmse": float(per_atom[i])} for i, e in zip(order, elements, strict=False)
        ],
        "worst_atom_rmse": float(per_atom.max()),
        "max_atom_error": float(norms[frame, atom]),
        "max_atom_error_atom": int(atom),
        "max_atom_error_frame": int(frame),
    }


def angular_errors(
    student: np.ndarray, teacher: np.ndarray, min_teacher_force: float = MIN_TEACHER_FORCE
) -> np.ndarray:
    """Angle in degrees between student and teacher force on each atom; NaN where the teacher force is too small.

    Parameters
    ----------
    student, teacher : ndarray, shape (..., 3)
        Forces in eV/Å.
    min_teacher_force : float
        Threshold in eV/Å below which no angle is measured.
    """
    s_norm = np.linalg.norm(student, axis=-1)
    t_norm = np.linalg.norm(teacher, axis=-1)
    dot = (student * teacher).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(s_norm > 0, dot / (s_norm * t_norm), 0.0)
    angles = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    return np.where(t_norm >= min_teacher_force, angles, np.nan)


def _summary(diff: np.ndarray, teacher: np.ndarray, angles: np.ndarray) -> dict:
    measured = angles[np.isfinite(angles)]
    ss_tot = float(((teacher - teacher.mean()) ** 2).sum())
    return {
        "rmse": float(np.sqrt((diff**2).mean())),
        "mae": float(np.abs(diff).mean()),
        "r2": 1.0 - float((diff**2).sum()) / ss_tot if ss_tot > 0 else float("nan"),
        "angle_mean_deg": float(measured.mean()) if len(measured) else float("nan"),
        "angle_median_deg": float(np.median(measured)) if len(measured) else float("nan"),
        "n_angles": int(len(measured)),
    }


def audit_statistics(audit: dict | None) -> dict:
    """Figures of the audits written during MD (``mlffd md --audit-every``).

    Returns ``audit_rmse`` (eV/Å, sqrt of the mean squared per-frame RMSE: the RMSE over all
    audited frames, which share one atom count), ``audit_rmse_max`` (eV/Å) and ``n_audits``; NaN
    and 0 without audits.
    """
    if audit is None or not len(audit["rmse_eV_per_A"]):
        return {"audit_rmse": float("nan"), "audit_rmse_max": float("nan"), "n_audits": 0}
    values = np.asarray(audit["rmse_eV_per_A"], dtype=float)
    return {
        "audit_rmse": float(np.sqrt((values**2).mean())),
        "audit_rmse_max": float(values.max()),
        "n_audits": len(values),
    }


def audit_only_results(audit: dict) -> dict:
    """Force-fidelity results from audits alone (no teacher evaluated now): only the RMSE is measured."""
    out = empty_statistics()
    out.update(
        audit_statistics(audit),
        teacher="audits during MD",
        gaps=[],
        n_requested=0,
        n_compared=0,
        audit=audit,
        frames=np.zeros(0, dtype=int),
        time_ps=np.zeros(0),
        numbers=None,
    )
    out["rmse"] = out["audit_rmse"]
    return out


def empty_statistics() -> dict:
    """Force-fidelity results with nothing measured: NaN figures, empty arrays."""
    nan = float("nan")
    return dict(
        rmse=nan,
        mae=nan,
        r2=nan,
        angle_mean_deg=nan,
        angle_median_deg=nan,
        n_angles=0,
        angles_deg=np.zeros(0),
        per_frame_rmse=np.zeros(0),
        per_element={},
        student_forces=None,
        teacher_forces=None,
        energy_error_meV_per_atom=None,
        energy_mae_meV_per_atom=nan,
        energy_offset_meV_per_atom=nan,
        energy_spread_meV_per_atom=nan,
    )
