"""The committee's force deviation against an explicit loop over atoms and members, and on real students."""

import torch

import numpy as np
import pytest
from ase.io import read
from kit import TIGHT

from mlff_distiller.data import bundled_structure
from mlff_distiller.errors import MLFFDError
from mlff_distiller.models import Student, preset
from mlff_distiller.models.committee import Committee, force_deviation


def _sigma_by_loop(forces: np.ndarray) -> np.ndarray:
    """σ_i = sqrt(mean_k |F_ki - mean_k F_ki|²), one atom and one member at a time."""
    members, atoms = forces.shape[0], forces.shape[1]
    sigma = np.zeros(atoms)
    for i in range(atoms):
        centre = sum(forces[k, i] for k in range(members)) / members
        sigma[i] = np.sqrt(
            sum(float(np.dot(forces[k, i] - centre, forces[k, i] - centre)) for k in range(members)) / members
        )
    return sigma


def test_deviation_equals_the_definition(rng):
    forces = rng.normal(size=(3, 7, 3))
    largest, mean = force_deviation(forces)
    sigma = _sigma_by_loop(forces)
    assert largest == pytest.approx(sigma.max(), rel=TIGHT)
    assert mean == pytest.approx(sigma.mean(), rel=TIGHT)


def test_two_members_deviate_by_half_their_difference(rng):
    a = rng.normal(size=(5, 3))
    b = a.copy()
    b[2] += [0.3, 0.0, 0.4]  # one atom differs by 0.5 eV/Å: each member is 0.25 from the mean
    largest, mean = force_deviation(np.stack([a, b]))
    assert largest == pytest.approx(0.25, rel=TIGHT)
    assert mean == pytest.approx(0.05, rel=TIGHT)


def test_frames_axis_gives_one_value_per_frame(rng):
    forces = rng.normal(size=(2, 4, 6, 3))
    largest, mean = force_deviation(forces)
    assert largest.shape == mean.shape == (4,)
    for f in range(4):
        assert largest[f] == pytest.approx(_sigma_by_loop(forces[:, f]).max(), rel=TIGHT)


@pytest.mark.parametrize("shape", [(1, 5, 3), (2, 5), (2, 5, 2)])
def test_bad_shapes_are_refused(shape):
    with pytest.raises(MLFFDError, match="committee forces"):
        force_deviation(np.zeros(shape))


def test_committee_of_students_on_ethanol():
    atoms = read(bundled_structure("ethanol"))
    members = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        members.append(Student(preset("ultra-tiny")).double().eval())
    committee = Committee(members)
    forces = committee.forces(atoms)
    positions = torch.tensor(atoms.positions)
    autograd = np.stack([m.energy_and_forces(positions, m.species(atoms.numbers))[1].numpy() for m in members])
    assert forces.shape == (2, len(atoms), 3)
    np.testing.assert_allclose(forces, autograd, atol=TIGHT)
    largest, mean = committee.deviation(atoms)
    assert largest == pytest.approx(0.5 * np.linalg.norm(forces[0] - forces[1], axis=1).max(), rel=1e-9)
    assert 0 < mean <= largest
    same = Committee([members[0], members[0]])
    assert same.deviation(atoms) == (0.0, 0.0)


def test_a_committee_needs_two_members():
    torch.manual_seed(0)
    with pytest.raises(MLFFDError, match="at least two"):
        Committee([Student(preset("ultra-tiny")).double()])
