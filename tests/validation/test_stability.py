"""Stability: planted broken bonds, lost hydrogens and explosions are found at the right frame."""

import MDAnalysis as mda
import numpy as np
import pytest
from ase.build import molecule
from MDAnalysis.coordinates.memory import MemoryReader
from MDAnalysisTests.datafiles import DCD, PSF
from validation_systems import pdb_topology, write_h5md

from mlff_distiller.validation import Stability

DT_PS = 0.01


def ethanol_universe(coordinates: np.ndarray, numbers) -> mda.Universe:
    from ase.data import atomic_masses, chemical_symbols

    n = len(numbers)
    universe = mda.Universe.empty(n, n_residues=1, atom_resindex=[0] * n, trajectory=True)
    universe.add_TopologyAttr("elements", [chemical_symbols[z] for z in numbers])
    universe.add_TopologyAttr("names", [f"{chemical_symbols[z]}{i}" for i, z in enumerate(numbers)])
    universe.add_TopologyAttr("masses", [atomic_masses[z] for z in numbers])
    universe.load_new(coordinates.astype(np.float32), format=MemoryReader, dt=DT_PS)
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
    assert r.stable_time_ps == pytest.approx((expected - 1) * DT_PS, rel=1e-5)


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
    assert r.stable_time_ps == pytest.approx(0.39, rel=1e-5)
    assert r.fraction_completed == pytest.approx(0.5, rel=1e-5)


def test_temperature_explosion_and_nonfinite_energy(tmp_path, ethanol_frames):
    frames, numbers = ethanol_frames
    time = np.arange(40) * DT_PS
    temperature = np.where(np.arange(40) >= 12, 2.0e4, 300.0)
    path = write_h5md(tmp_path / "hot.h5md", numbers, frames, time,
                      {"potential_energy": np.full(40, -100.0), "kinetic_energy": np.full(40, 0.3), "temperature": temperature})
    universe = mda.Universe(str(pdb_topology(tmp_path / "e.pdb", numbers)), str(path))
    r = Stability(universe).run().results
    assert r.explosion["frame"] == 12 and "temperature" in r.explosion["reason"]
    potential = np.where(np.arange(40) >= 7, np.nan, -100.0)
    path = write_h5md(tmp_path / "nan.h5md", numbers, frames, time,
                      {"potential_energy": potential, "kinetic_energy": np.full(40, 0.3), "temperature": np.full(40, 300.0)})
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
    assert r.stable_time_ps == pytest.approx(0.25, rel=1e-5)
