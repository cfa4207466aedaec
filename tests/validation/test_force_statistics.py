"""Force statistics against direct numpy computations, angular edge cases, and teacher failures as gaps."""

import numpy as np
import pytest
from kit import ARCCOS_DEG, EXACT, TIGHT

from mlff_distiller.validation import angular_errors, force_statistics
from mlff_distiller.validation.forces import sample_frames


def test_statistics_equal_numpy(rng):
    numbers = np.array([6, 1, 1, 8, 1, 6, 1])
    teacher = rng.normal(scale=1.5, size=(4, len(numbers), 3))
    student = teacher + rng.normal(scale=0.2, size=teacher.shape)
    stats = force_statistics(student, teacher, numbers, min_teacher_force=0.0)
    diff = (student - teacher).ravel()
    assert stats["rmse"] == pytest.approx(np.sqrt(np.mean(diff**2)), rel=EXACT)
    assert stats["mae"] == pytest.approx(np.mean(np.abs(diff)), rel=EXACT)
    flat = teacher.ravel()
    assert stats["r2"] == pytest.approx(1 - np.sum(diff**2) / np.sum((flat - flat.mean()) ** 2), rel=EXACT)
    angles = []
    for s, t in zip(student.reshape(-1, 3), teacher.reshape(-1, 3), strict=False):
        angles.append(np.degrees(np.arccos(np.clip(s @ t / np.linalg.norm(s) / np.linalg.norm(t), -1, 1))))
    assert stats["angle_mean_deg"] == pytest.approx(np.mean(angles), rel=TIGHT)
    assert stats["angle_median_deg"] == pytest.approx(np.median(angles), rel=TIGHT)
    for frame in range(4):
        d = student[frame] - teacher[frame]
        assert stats["per_frame_rmse"][frame] == pytest.approx(np.sqrt(np.mean(d**2)), rel=EXACT)
    hydrogen = numbers == 1
    d_h = (student[:, hydrogen] - teacher[:, hydrogen]).ravel()
    assert stats["per_element"]["H"]["rmse"] == pytest.approx(np.sqrt(np.mean(d_h**2)), rel=EXACT)
    assert stats["per_element"]["H"]["n_atoms"] == 4
    assert set(stats["per_element"]) == {"C", "H", "O"}


def test_angular_edge_cases():
    teacher = np.array([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0], [1e-4, 0, 0], [0, 0, 0], [1.0, 1.0, 0]])
    student = np.array([[2.0, 0, 0], [0, -0.5, 0], [0, 0, 0], [0, 1.0, 0], [1.0, 0, 0], [0, 1.0, 0]])
    angles = angular_errors(student, teacher, min_teacher_force=0.05)
    assert angles[0] == pytest.approx(0.0, abs=ARCCOS_DEG)  # parallel, different length
    assert angles[1] == pytest.approx(180.0)  # antiparallel (arccos argument clipped)
    assert angles[2] == pytest.approx(90.0)  # student predicts no force where the teacher has one
    assert np.isnan(angles[3]) and np.isnan(angles[4])  # teacher force too small (or zero): no angle
    assert angles[5] == pytest.approx(45.0)
    stats = force_statistics(student[None], teacher[None], [1] * 6, min_teacher_force=0.05)
    assert stats["n_angles"] == 4
    assert stats["angle_median_deg"] == pytest.approx(np.median([0.0, 180.0, 90.0, 45.0]), abs=ARCCOS_DEG)


def test_identical_forces_are_perfect(rng):
    forces = rng.normal(size=(3, 5, 3))
    stats = force_statistics(forces, forces.copy(), [1, 6, 7, 8, 1])
    assert stats["rmse"] == 0.0 and stats["mae"] == 0.0 and stats["r2"] == 1.0
    assert stats["angle_median_deg"] == pytest.approx(0.0, abs=ARCCOS_DEG)


def test_frame_sampling_spans_the_run():
    assert sample_frames(10, 50) == list(range(10))
    frames = sample_frames(101, 5)
    assert frames == [0, 25, 50, 75, 100]


def test_worst_atoms_equal_numpy(rng):
    numbers = np.array([8, 6, 6, 8, 1, 1, 1, 1])
    teacher = rng.normal(scale=1.5, size=(12, len(numbers), 3))
    student = teacher + rng.normal(scale=0.2, size=teacher.shape)
    student[:, 3] += rng.normal(scale=1.0, size=(12, 3))  # one oxygen badly learnt
    student[4, 6] += np.array([3.0, -3.0, 1.0])  # one large error, on one hydrogen of one frame
    stats = force_statistics(student, teacher, numbers, n_worst=3)
    expected = np.array([np.sqrt(np.mean((student[:, i] - teacher[:, i]) ** 2)) for i in range(len(numbers))])
    np.testing.assert_allclose(stats["per_atom_rmse"], expected, rtol=EXACT)
    assert stats["per_atom_rmse"].shape == (len(numbers),)
    ranked = sorted(range(len(numbers)), key=lambda i: -expected[i])[:3]
    assert [w["atom"] for w in stats["worst_atoms"]] == ranked and ranked[0] == 3
    assert [w["element"] for w in stats["worst_atoms"]] == [{1: "H", 6: "C", 8: "O"}[numbers[i]] for i in ranked]
    assert [w["rmse"] for w in stats["worst_atoms"]] == pytest.approx(expected[ranked], rel=EXACT)
    assert stats["worst_atom_rmse"] == pytest.approx(expected.max(), rel=EXACT)
    errors = [[np.sqrt(np.sum((student[f, i] - teacher[f, i]) ** 2)) for i in range(len(numbers))] for f in range(12)]
    frame, atom = divmod(int(np.argmax(errors)), len(numbers))
    assert (stats["max_atom_error_frame"], stats["max_atom_error_atom"]) == (frame, atom) == (4, 6)
    assert stats["max_atom_error"] == pytest.approx(np.max(errors), rel=EXACT)
