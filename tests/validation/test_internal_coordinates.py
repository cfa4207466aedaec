"""Internal-coordinate distributions: a planted angle shift is named first, identical runs score 0, teacher MD runs."""

import MDAnalysis as mda
import numpy as np
import pytest
from ase.data import atomic_masses, chemical_symbols
from ase.io import read
from kit import RECOMPUTED, random_rotation
from MDAnalysis.coordinates.memory import MemoryReader

from mlff_distiller.data import bundled_structure
from mlff_distiller.validation.figures import section_figures
from mlff_distiller.validation.internal import InternalCoordinates, worst_coordinates
from mlff_distiller.validation.plots import plot_internal_coordinates
from mlff_distiller.validation.teacher_md import teacher_md
from mlff_distiller.validation.thresholds import CRITERIA, Thresholds, judge

#: Hydrogen peroxide, H0-O1-O2-H3.
PEROXIDE = [1, 8, 8, 1]


def universe(frames: np.ndarray, numbers) -> mda.Universe:
    u = mda.Universe.empty(len(numbers), n_residues=1, atom_resindex=[0] * len(numbers), trajectory=True)
    u.add_TopologyAttr("elements", [chemical_symbols[z] for z in numbers])
    u.add_TopologyAttr("names", [f"{chemical_symbols[z]}{i}" for i, z in enumerate(numbers)])
    u.add_TopologyAttr("masses", [atomic_masses[z] for z in numbers])
    u.load_new(frames.astype(np.float32), format=MemoryReader, dt=0.01)
    return u


def peroxide(rng, n: int, angle_deg=100.0, dihedral_deg: float = 115.0):
    """Frames of H-O-O-H built from drawn internal coordinates (randomly rotated), and the drawn H0-O1-O2 angles.

    ``angle_deg`` is the mean H0-O1-O2 angle, or an array of n means (one per frame).
    """
    r1, r3 = rng.normal(0.97, 0.02, n), rng.normal(0.97, 0.02, n)
    r2 = rng.normal(1.45, 0.03, n)
    t1, t2 = np.radians(rng.normal(angle_deg, 4.0, n)), np.radians(rng.normal(100.0, 4.0, n))
    phi = np.radians(rng.normal(dihedral_deg, 8.0, n))
    frames = np.zeros((n, 4, 3))
    frames[:, 0] = r1[:, None] * np.stack([np.cos(t1), np.sin(t1), 0 * t1], axis=1)
    frames[:, 2, 0] = r2
    frames[:, 3] = frames[:, 2] + r3[:, None] * np.stack(
        [-np.cos(t2), np.sin(t2) * np.cos(phi), np.sin(t2) * np.sin(phi)], axis=1
    )
    frames = np.array([f @ random_rotation(rng).T + rng.normal(size=3) for f in frames])
    return frames, np.degrees(t1)


def test_a_shifted_angle_is_named_first(rng, tmp_path):
    reference, reference_angles = peroxide(rng, 300)
    run, run_angles = peroxide(rng, 200, angle_deg=140.0)
    ic = InternalCoordinates(universe(run, PEROXIDE), universe(reference, PEROXIDE)).run()
    r = ic.results
    assert r.n_coordinates == 3 + 2 + 1
    first = r.worst[0]
    assert first["label"] == "H0-O1-O2 angle" and first["atoms"] == [0, 1, 2] and first["kind"] == "angle"
    assert first["divergence"] > 0.95 and r.max_divergence == first["divergence"]
    assert first["shift"] == pytest.approx(run_angles.mean() - reference_angles.mean(), abs=1e-2)
    assert first["shift"] == pytest.approx(40.0, abs=2.0)
    spread = reference_angles.std()
    low, high = reference_angles.min() - spread, reference_angles.max() + spread  # range widened by one sd
    assert first["outside_fraction"] == pytest.approx(np.mean((run_angles < low) | (run_angles > high)), abs=RECOMPUTED)
    assert first["outside_fraction"] > 0.95 and r.max_outside_fraction == first["outside_fraction"]
    others = [w["divergence"] for w in r.worst[1:]] + [w["divergence"] for w in r.worst_dihedrals]
    assert max(others) < 0.25  # the same distributions, drawn independently
    assert worst_coordinates(r)[0].startswith("H0-O1-O2 angle: JS")
    for w in r.worst:  # plot densities integrate to 1 over their bins
        assert np.sum(w["density"] * np.diff(w["edges"])) == pytest.approx(1.0)
        assert np.sum(w["reference_density"] * np.diff(w["edges"])) == pytest.approx(1.0)
    assert plot_internal_coordinates(r, tmp_path / "internal.png").stat().st_size > 0


def test_a_minority_of_frames_outside_the_teacher_range_is_named(rng):
    """A fifth of the frames with the angle opened to 160 degrees: little divergence, but 20% outside the teacher's range."""
    reference, _ = peroxide(rng, 300)
    opened = np.where(np.arange(250) % 5 == 0, 160.0, 100.0)
    run, run_angles = peroxide(rng, 250, angle_deg=opened)
    r = InternalCoordinates(universe(run, PEROXIDE), universe(reference, PEROXIDE)).run().results
    first = r.worst[0]
    assert first["label"] == "H0-O1-O2 angle"
    assert first["outside_fraction"] == pytest.approx(0.2, abs=0.01)
    assert first["divergence"] < 0.5  # the Jensen-Shannon divergence alone would not stand out
    criterion = next(c for c in CRITERIA if c.section == "internal_coordinates")
    figures = section_figures("internal_coordinates", r)
    assert figures[criterion.figure]["value"] == r.max_outside_fraction
    assert judge(r.max_outside_fraction, criterion, getattr(Thresholds(), criterion.threshold_key)) is False
    same, _ = peroxide(rng, 250)
    r = InternalCoordinates(universe(same, PEROXIDE), universe(reference, PEROXIDE)).run().results
    assert judge(r.max_outside_fraction, criterion, getattr(Thresholds(), criterion.threshold_key)) is True


def test_identical_runs_score_zero(rng):
    frames, _ = peroxide(rng, 100)
    r = InternalCoordinates(universe(frames, PEROXIDE), universe(frames.copy(), PEROXIDE)).run().results
    assert r.max_divergence == 0.0 and r.max_dihedral_divergence == 0.0 and r.max_outside_fraction == 0.0
    np.testing.assert_allclose(r.shift, 0.0, atol=RECOMPUTED)


def test_dihedrals_across_180_degrees_are_neighbours(rng):
    """Dihedrals near +175 and -175 degrees are 10 degrees apart, not 350."""
    reference, _ = peroxide(rng, 300, dihedral_deg=-175.0)
    run, _ = peroxide(rng, 300, dihedral_deg=175.0)
    r = InternalCoordinates(universe(run, PEROXIDE), universe(reference, PEROXIDE)).run().results
    dihedral = r.worst_dihedrals[0]
    assert dihedral["label"] == "H0-O1-O2-H3 dihedral"
    assert abs(dihedral["shift"]) == pytest.approx(10.0, abs=2.0)
    same, _ = peroxide(rng, 300, dihedral_deg=-175.0)
    r = InternalCoordinates(universe(same, PEROXIDE), universe(reference, PEROXIDE)).run().results
    assert r.max_dihedral_divergence < 0.25 and abs(r.worst_dihedrals[0]["shift"]) < 2.0


def test_teacher_md_of_ethanol_within_a_small_budget():
    ethanol = read(bundled_structure("ethanol"))
    run = teacher_md(ethanol, temperature_K=300.0, time_ps=50.0, budget_s=1.0, equilibration_ps=0.01, stride=5, seed=1)
    assert run.budget_reached and run.wall_s < 1.0 + 1.0  # the budget, plus at most one stride of steps
    assert run.positions.shape[1:] == (9, 3) and len(run.positions) >= 2
    assert np.isfinite(run.positions).all()
    assert np.all(np.diff(run.time_ps) == pytest.approx(5 * 0.5e-3))
    assert run.time_ps[0] == pytest.approx(0.01)
    assert list(run.numbers) == list(ethanol.numbers)
    assert np.linalg.norm(run.positions[-1] - run.positions[0], axis=1).max() > 0.01  # the atoms moved
    u = run.universe()
    assert len(u.trajectory) == len(run.positions) and u.atoms.n_atoms == 9
    short = teacher_md(ethanol, time_ps=0.05, budget_s=30.0, equilibration_ps=0.0, stride=10)
    assert not short.budget_reached and len(short.positions) == 0.05 / (10 * 0.5e-3) + 1
