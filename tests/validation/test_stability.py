"""Stability: planted broken bonds, lost hydrogens, close contacts and explosions are found at the right frame."""

from pathlib import Path

import ase.io
import MDAnalysis as mda
import numpy as np
import pytest
from ase.build import molecule
from kit import FLOAT32_STORED
from MDAnalysis.coordinates.memory import MemoryReader
from MDAnalysisTests.datafiles import DCD, PSF
from validation_systems import pdb_topology, write_h5md

from mlff_distiller.data import bundled_structure, bundled_student
from mlff_distiller.validation import Stability

DT_PS = 0.01


def ethanol_universe(coordinates: np.ndarray, numbers, box: float = None) -> mda.Universe:
    """Atoms named by element and index; a cubic box of edge ``box`` (Å) when given."""
    from ase.data import atomic_masses, chemical_symbols

    n = len(numbers)
    universe = mda.Universe.empty(n, n_residues=1, atom_resindex=[0] * n, trajectory=True)
    universe.add_TopologyAttr("elements", [chemical_symbols[z] for z in numbers])
    universe.add_TopologyAttr("names", [f"{chemical_symbols[z]}{i}" for i, z in enumerate(numbers)])
    universe.add_TopologyAttr("masses", [atomic_masses[z] for z in numbers])
    dimensions = None if box is None else np.array([box, box, box, 90.0, 90.0, 90.0])
    universe.load_new(coordinates.astype(np.float32), format=MemoryReader, dt=DT_PS, dimensions=dimensions)
    return universe


@pytest.fixture
def ethanol_frames(rng):
    atoms = molecule("CH3CH2OH")
    frames = np.repeat(atoms.positions[None], 40, axis=0) + rng.normal(scale=0.02, size=(40, len(atoms), 3))
    return frames, atoms.numbers


def test_planted_broken_bond(ethanol_frames):
    frames, numbers = ethanol_frames
    c1, c2 = np.flatnonzero(numbers == 6)[:2]
    stretch = np.clip(np.arange(40) - 20, 0, None) * 0.15  # the C-C bond grows by 0.15 Å per frame after frame 20
    axis = (frames[0, c2] - frames[0, c1]) / np.linalg.norm(frames[0, c2] - frames[0, c1])
    hydrogens_of_c2 = [i for i in np.flatnonzero(numbers == 1) if np.linalg.norm(frames[0, i] - frames[0, c2]) < 1.3]
    for atom in [c2, *hydrogens_of_c2]:  # move the whole CH2 group: only the C-C (and nearby O) bonds stretch
        frames[:, atom] += stretch[:, None] * axis
    lengths = np.linalg.norm(frames[:, c2] - frames[:, c1], axis=1)
    expected = int(np.flatnonzero(np.abs(lengths - lengths[:10].mean()) > 0.5)[0])
    r = Stability(ethanol_universe(frames, numbers)).run().results
    assert r.collapse is not None and r.collapse["frame"] == expected
    assert r.hydrogen_loss is None and r.explosion is None
    assert r.first_failure["frame"] == expected
    assert r.stable_time_ps == pytest.approx((expected - 1) * DT_PS, rel=FLOAT32_STORED)


def test_planted_lost_hydrogen(ethanol_frames):
    frames, numbers = ethanol_frames
    moved = int(np.flatnonzero(numbers == 1)[-1])
    heavy = np.flatnonzero(numbers != 1)
    direction = frames[0, moved] - frames[0, heavy].mean(axis=0)
    direction /= np.linalg.norm(direction)
    frames[:, moved] += np.clip(np.arange(40) - 10, 0, None)[:, None] * 0.2 * direction
    nearest = np.linalg.norm(frames[:, moved][:, None] - frames[:, heavy], axis=2).min(axis=1)
    expected = int(np.flatnonzero(nearest > 2.5)[0])
    r = Stability(ethanol_universe(frames, numbers)).run().results
    assert r.hydrogen_loss["frame"] == expected
    assert r.hydrogen_loss["atoms"] == [moved]
    assert r.collapse["frame"] < expected  # its bond to the heavy atom broke first
    assert r.first_failure is r.collapse


def test_intact_molecule_is_stable(ethanol_frames):
    frames, numbers = ethanol_frames
    r = Stability(ethanol_universe(frames, numbers), requested_time_ps=0.78).run().results
    assert r.first_failure is None and r.n_bonds == 8 and r.n_watched_hydrogens == 6
    assert r.stable_time_ps == pytest.approx(0.39, rel=FLOAT32_STORED)
    assert r.fraction_completed == pytest.approx(0.5, rel=FLOAT32_STORED)


def test_temperature_explosion_and_nonfinite_energy(tmp_path, ethanol_frames):
    frames, numbers = ethanol_frames
    time = np.arange(40) * DT_PS
    temperature = np.where(np.arange(40) >= 12, 2.0e4, 300.0)
    path = write_h5md(
        tmp_path / "hot.h5md",
        numbers,
        frames,
        time,
        {"potential_energy": np.full(40, -100.0), "kinetic_energy": np.full(40, 0.3), "temperature": temperature},
    )
    universe = mda.Universe(str(pdb_topology(tmp_path / "e.pdb", numbers)), str(path))
    r = Stability(universe).run().results
    assert r.explosion["frame"] == 12 and "temperature" in r.explosion["reason"]
    potential = np.where(np.arange(40) >= 7, np.nan, -100.0)
    path = write_h5md(
        tmp_path / "nan.h5md",
        numbers,
        frames,
        time,
        {"potential_energy": potential, "kinetic_energy": np.full(40, 0.3), "temperature": np.full(40, 300.0)},
    )
    r = Stability(mda.Universe(str(tmp_path / "e.pdb"), str(path))).run().results
    assert r.explosion["frame"] == 7 and "non-finite" in r.explosion["reason"]


def test_protein_from_mdanalysis_tests_is_stable_with_its_own_bonds():
    """A third-party trajectory (CHARMM adenylate kinase, DCD): our covalent-radius bonds match the PSF's bond list."""
    universe = mda.Universe(PSF, DCD)
    universe.guess_TopologyAttrs(to_guess=["elements"])
    stability = Stability(universe.atoms).run(step=4)
    r = stability.results
    assert r.first_failure is None
    ours = {tuple(sorted((int(i), int(j)))) for i, j in r.bonds}
    psf = {tuple(sorted(b)) for b in universe.bonds.indices.tolist()}
    assert len(ours & psf) >= 0.99 * len(psf)
    assert len(ours - psf) <= 0.01 * len(psf)
    assert r.max_bond_deviation_A.max() < 0.5


def test_explosion_found_in_an_energy_file(ethanol_frames):
    """Energies from a CSV or log (finer than the trajectory): the explosion is timed by the file, mapped to a frame."""
    from mlff_distiller.validation import EnergySeries

    frames, numbers = ethanol_frames
    time = np.arange(400) * DT_PS / 10  # ten energy rows per frame
    temperature = np.where(time >= 0.2545, 5.0e4, 300.0)
    series = EnergySeries(time, np.full(400, -10.0), np.full(400, 0.5), np.full(400, -9.5), temperature, "test")
    r = Stability(ethanol_universe(frames, numbers), energies=series).run().results
    assert r.explosion["time_ps"] == pytest.approx(0.255)
    assert r.explosion["frame"] == 26  # the first frame at or after the explosion
    assert r.stable_time_ps == pytest.approx(0.25, rel=FLOAT32_STORED)


WATER = molecule("H2O")
#: O…O contact distance (Å) the brief asks for; written here, not read from the module.
OO_CONTACT = 2.2
#: Non-bonded distances are searched this far (Å); the closest-distance series is NaN beyond.
SEARCH_A = 3.0


def approaching_waters(distances: np.ndarray, box: float = None) -> np.ndarray:
    """Two rigid waters whose oxygens are ``distances[k]`` apart on frame k, hydrogens pointing away from each other.

    In a box, the second water sits across the boundary: only the minimum image brings it close.
    """
    first = WATER.positions.copy()
    second = first * np.array([1.0, 1.0, -1.0])  # mirrored: its hydrogens point along +z
    frames = []
    for d in distances:
        shift = np.array([0.0, 0.0, 2 * first[0, 2] + d])  # oxygen to oxygen: exactly d along z
        pair = np.concatenate([first, second + shift])
        if box is not None:
            pair = (
                pair + np.array([box / 2, box / 2, -first[0, 2] - d / 2])
            ) % box  # the oxygens' midpoint on the boundary
        frames.append(pair)
    return np.array(frames)


@pytest.mark.parametrize("box", [None, 12.0])
def test_oxygens_pressed_together_are_a_close_contact(box, rng):
    distances = np.concatenate([np.full(10, 3.5), 3.5 - 0.08 * np.arange(1, 21)])  # 3.5 Å, then 0.08 Å closer per frame
    frames = approaching_waters(distances, box) + rng.normal(scale=0.005, size=(30, 6, 3))
    frames = frames.astype(np.float32).astype(np.float64)
    numbers = [8, 1, 1, 8, 1, 1]
    oo = frames[:, 3] - frames[:, 0]
    if box is not None:
        oo -= box * np.round(oo / box)
        assert np.linalg.norm(frames[:, 3] - frames[:, 0], axis=1).min() > 6.0  # close only through the boundary
    oo = np.linalg.norm(oo, axis=1)
    expected = int(np.flatnonzero(oo < OO_CONTACT)[0])
    assert distances[expected] < OO_CONTACT <= distances[expected - 1]
    r = Stability(ethanol_universe(frames, numbers, box)).run().results
    contact = r.close_contact
    assert contact["frame"] == expected and contact["atoms"] == [0, 3] and contact["names"] == ["O0", "O3"]
    assert contact["distance_A"] == pytest.approx(oo[expected], abs=FLOAT32_STORED)
    assert contact["contact_distance_A"] == OO_CONTACT
    assert r.collapse is None and r.hydrogen_loss is None and r.explosion is None
    assert r.first_failure is contact and r.first_failure_kind == "close_contact"
    assert r.stable_time_ps == pytest.approx((expected - 1) * DT_PS, rel=FLOAT32_STORED)
    assert list(r.close_contacts_per_frame) == [0] * expected + [1] * (30 - expected)
    # intramolecular pairs are all 1-2 or 1-3: the closest non-bonded pair is the closest intermolecular one
    inter = frames[:, 3:, None] - frames[:, None, :3]
    if box is not None:
        inter -= box * np.round(inter / box)
    closest = np.linalg.norm(inter, axis=3).min(axis=(1, 2))
    assert np.abs(closest - SEARCH_A).min() > 0.01  # no frame at the edge of the search
    searched = np.where(closest < SEARCH_A, closest, np.nan)
    np.testing.assert_allclose(r.min_nonbonded_distance_per_frame_A, searched, atol=FLOAT32_STORED)
    assert r.min_nonbonded_distance_A == pytest.approx(closest.min(), abs=FLOAT32_STORED)
    assert r.min_distance_by_pair_A["O-O"] == pytest.approx(oo.min(), abs=FLOAT32_STORED)


def test_one_three_pairs_are_not_contacts_but_the_same_distance_between_molecules_is():
    """A water whose H-O-H angle closes until H…H is 1.0 Å (below the 1.2 Å H…H line): its hydrogens share the oxygen."""
    oh = np.linalg.norm(WATER.positions[1] - WATER.positions[0])
    frames = []
    for hh in np.linspace(1.52, 1.0, 20):
        half = np.arcsin(hh / 2 / oh)
        frames.append(
            [[0, 0, 0], [0, oh * np.sin(half), -oh * np.cos(half)], [0, -oh * np.sin(half), -oh * np.cos(half)]]
        )
    frames = np.array(frames)
    assert np.linalg.norm(frames[-1, 1] - frames[-1, 2]) == pytest.approx(1.0)
    r = Stability(ethanol_universe(frames, [8, 1, 1])).run().results
    assert r.first_failure is None and r.close_contact is None and r.n_close_contacts == 0
    # control: a hydrogen of another water 1.0 Å from a hydrogen of the first, along the O-H direction
    first = WATER.positions
    outward = (first[1] - first[0]) / np.linalg.norm(first[1] - first[0])
    second = -first + 2 * first[1] + 1.0 * outward  # inverted copy: its first H sits 1.0 Å further out
    pair = np.concatenate([first, second])
    distances = np.linalg.norm(pair[3:, None] - pair[None, :3], axis=2)
    assert distances.min() == pytest.approx(1.0) and np.sort(distances.ravel())[1] > 1.9  # next: H…O, far from 0.9 Å
    r = Stability(ethanol_universe(np.repeat(pair[None], 12, axis=0), [8, 1, 1, 8, 1, 1])).run().results
    assert r.close_contact["frame"] == 0 and r.close_contact["atoms"] == [1, 4] and r.n_close_contacts == 1


def teacher_md_frames(path: Path, n_atoms: int):
    """Positions (F, n_atoms, 3), atomic numbers and the cell of the teacher's MD frames in a bundled test set."""
    import h5py

    with h5py.File(path) as f:
        sizes = f["n_atoms"][:]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        rows = [k for k in range(len(sizes)) if sizes[k] == n_atoms and f["kinds"][k] == b"md"]
        positions = np.array([f["positions"][starts[k] : starts[k] + n_atoms] for k in rows])
        return positions, f["numbers"][starts[rows[0]] : starts[rows[0]] + n_atoms], f["cells"][rows[0]]


def test_liquid_water_from_the_teacher_has_no_close_contact():
    """The bundled 32-water box as GFN2-xTB relaxed it (read by ASE): hydrogen-bonded, no contact."""
    water = ase.io.read(bundled_structure("water-32"))
    positions, numbers = np.repeat(water.positions[None], 2, axis=0), water.numbers
    box = float(water.cell[0, 0])
    r = Stability(ethanol_universe(positions, numbers, box)).run().results
    assert r.first_failure is None and r.n_close_contacts == 0
    oxygens = positions[:, numbers == 8]
    d = oxygens[:, :, None] - oxygens[:, None]
    d -= box * np.round(d / box)
    d = np.linalg.norm(d, axis=3) + np.eye(oxygens.shape[1]) * 1e3
    assert r.min_distance_by_pair_A["O-O"] == pytest.approx(d.min(), abs=FLOAT32_STORED)
    assert 2.3 < d.min() < 2.8  # first-shell hydrogen bonds, not a collapse


def test_aspirin_from_the_teacher_has_no_close_contact():
    positions, numbers, _ = teacher_md_frames(bundled_student("organic-standard").with_name("organic-test.h5"), 21)
    r = Stability(ethanol_universe(positions, numbers)).run().results
    assert len(positions) >= 20 and r.first_failure is None and r.n_close_contacts == 0


def test_contact_series_stay_aligned_with_time_through_nonfinite_frames(ethanol_frames):
    frames, numbers = ethanol_frames
    frames[25:] = np.nan
    r = Stability(ethanol_universe(frames, numbers)).run().results
    assert r.explosion["frame"] == 25 and r.first_failure_kind == "explosion"
    assert len(r.close_contacts_per_frame) == len(r.min_nonbonded_distance_per_frame_A) == len(r.time_ps) == 40
    assert np.isnan(r.min_nonbonded_distance_per_frame_A[25:]).all()
    assert np.isfinite(r.min_nonbonded_distance_per_frame_A[:25]).all()
