"""Shared test kit: named tolerances, structure generators and consistency asserts.

Every test module imports its tolerances from here, so that "how close is close"
is decided in one place.
"""

from typing import Tuple

import numpy as np
import torch

#: Agreement expected between two float64 evaluations of the same arithmetic.
EXACT = 1e-12
#: Agreement of float64 evaluations that differ in summation order or transforms.
TIGHT = 1e-10
#: Agreement between float64 engines (OpenMM, LAMMPS, PyTorch) on one configuration.
ENGINE64 = 1e-9
#: Agreement between float32 evaluations.
ENGINE32 = 1e-5
#: Agreement of forces with a central finite difference of the energy (float64).
FINITE_DIFFERENCE = 1e-6


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A random proper rotation matrix (3, 3)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def random_molecule(n_atoms: int, n_species: int, rng: np.random.Generator, spacing: float = 1.1) -> Tuple[torch.Tensor, torch.Tensor]:
    """Positions (Å, float64) with no two atoms closer than ``spacing`` and random species indices."""
    points = []
    while len(points) < n_atoms:
        trial = rng.uniform(-2.5, 2.5, size=3)
        if all(np.linalg.norm(trial - p) > spacing for p in points):
            points.append(trial)
    species = rng.integers(0, n_species, size=n_atoms)
    return torch.tensor(np.array(points)), torch.tensor(species, dtype=torch.long)


def random_box(n_atoms: int, cell: np.ndarray, n_species: int, rng: np.random.Generator, spacing: float = 1.0):
    """Positions (Å) inside the periodic ``cell`` with minimum-image spacing, and species indices."""
    inverse = np.linalg.inv(cell)
    points = []
    while len(points) < n_atoms:
        trial = rng.uniform(0, 1, size=3) @ cell
        ok = True
        for p in points:
            d = trial - p
            d = d - np.round(d @ inverse) @ cell
            if np.linalg.norm(d) < spacing:
                ok = False
                break
        if ok:
            points.append(trial)
    species = rng.integers(0, n_species, size=n_atoms)
    return torch.tensor(np.array(points)), torch.tensor(species, dtype=torch.long)


def relative_error(a, b) -> float:
    """max |a - b| / max(max |b|, tiny)."""
    a, b = (x.detach().to(torch.float64) if isinstance(x, torch.Tensor) else torch.tensor(np.asarray(x, dtype=np.float64)) for x in (a, b))
    return float((a - b).abs().max() / max(float(b.abs().max()), 1e-300))


def assert_close(actual, expected, rtol: float, what: str = "value") -> None:
    """Assert agreement to ``rtol`` relative to the largest expected magnitude, with a readable message."""
    err = relative_error(actual, expected)
    assert err <= rtol, f"{what}: relative error {err:.3e} exceeds {rtol:.1e}"
