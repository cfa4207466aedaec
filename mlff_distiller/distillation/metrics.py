"""Accuracy of predicted energies and forces against reference labels, overall, per element and per molecule."""

from collections.abc import Sequence

import numpy as np

from ..elements import symbols
from ..units import EV_TO_MEV

#: Atoms whose reference force is weaker than this (eV/Å) are left out of the angular error.
ANGLE_MIN_FORCE = 1e-2


def force_metrics(predicted: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Force errors over atoms.

    Parameters
    ----------
    predicted, reference : ndarray (A, 3)
        Forces in eV/Å.

    Returns
    -------
    dict
        ``force_rmse`` and ``force_mae`` (eV/Å, over components), ``force_r2`` (over flattened components),
        ``angle_mean_deg`` and ``angle_median_deg`` (degrees between force vectors, atoms with a reference
        force above :data:`ANGLE_MIN_FORCE` only), ``atoms``.
    """
    error = predicted - reference
    total = np.sum((reference - reference.mean()) ** 2)
    norms = np.linalg.norm(reference, axis=1)
    keep = norms > ANGLE_MIN_FORCE
    cosine = np.sum(predicted[keep] * reference[keep], axis=1) / (
        np.linalg.norm(predicted[keep], axis=1) * norms[keep] + 1e-300
    )
    angles = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    return {
        "force_rmse": float(np.sqrt(np.mean(error**2))),
        "force_mae": float(np.mean(np.abs(error))),
        "force_r2": float(1 - np.sum(error**2) / total) if total > 0 else float("nan"),
        "angle_mean_deg": float(np.mean(angles)) if len(angles) else float("nan"),
        "angle_median_deg": float(np.median(angles)) if len(angles) else float("nan"),
        "atoms": int(len(reference)),
    }


def accuracy(
    predicted_energies: np.ndarray,
    reference_energies: np.ndarray,
    predicted_forces: np.ndarray,
    reference_forces: np.ndarray,
    n_atoms: np.ndarray,
    numbers: np.ndarray,
    molecules: Sequence[str],
) -> dict:
    """Energy and force accuracy of a set of frames.

    Parameters
    ----------
    predicted_energies, reference_energies : ndarray (F,)
        Energies in eV.
    predicted_forces, reference_forces : ndarray (A, 3)
        Forces in eV/Å, frames concatenated.
    n_atoms : ndarray (F,)
        Atoms per frame.
    numbers : ndarray (A,)
        Atomic numbers, frames concatenated.
    molecules : sequence of str
        Name of each frame's system (e.g. its chemical formula) for the per-molecule breakdown.

    Returns
    -------
    dict
        ``energy_mae_mev_per_atom`` (meV/atom, mean over frames of |ΔE|/N), ``energy_rmse_mev_per_atom``,
        the keys of :func:`force_metrics`, ``frames``, and ``per_element`` / ``per_molecule`` dicts of the
        same force (and, per molecule, energy) figures.
    """
    per_atom_error = (predicted_energies - reference_energies) / n_atoms * EV_TO_MEV
    result = {
        "frames": int(len(n_atoms)),
        "energy_mae_mev_per_atom": float(np.mean(np.abs(per_atom_error))),
        "energy_rmse_mev_per_atom": float(np.sqrt(np.mean(per_atom_error**2))),
        **force_metrics(predicted_forces, reference_forces),
        "per_element": {},
        "per_molecule": {},
    }
    for z in sorted(set(int(z) for z in numbers)):
        mask = numbers == z
        result["per_element"][symbols([z])[0]] = force_metrics(predicted_forces[mask], reference_forces[mask])
    frame_of_atom = np.repeat(np.arange(len(n_atoms)), n_atoms)
    molecules = np.asarray(molecules)
    for name in sorted(set(molecules)):
        frames = molecules == name
        atoms = frames[frame_of_atom]
        result["per_molecule"][str(name)] = {
            "frames": int(frames.sum()),
            "energy_mae_mev_per_atom": float(np.mean(np.abs(per_atom_error[frames]))),
            **force_metrics(predicted_forces[atoms], reference_forces[atoms]),
        }
    return result
