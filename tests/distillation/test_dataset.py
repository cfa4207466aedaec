"""The HDF5 dataset: round trip, splits, content hash, interrupted writes and bad files."""

import h5py
import numpy as np
import pytest

from mlff_distiller.distillation import Dataset, DatasetError, Frame
from mlff_distiller.distillation.dataset import append, create, stored_frame_ids


def make_frames(rng, sizes=(3, 5, 4)):
    frames = []
    for i, n in enumerate(sizes):
        periodic = i == 1
        frames.append(
            Frame(
                numbers=rng.choice([1, 6, 8], size=n),
                positions=rng.normal(size=(n, 3)),
                energy=float(rng.normal()),
                forces=rng.normal(size=(n, 3)),
                cell=np.eye(3) * 7.0 if periodic else np.zeros((3, 3)),
                pbc=np.array([periodic] * 3),
                stress=rng.normal(size=6) if periodic else np.full(6, np.nan),
                kind="md",
                temperature=300.0 + i,
                frame_id=i,
            )
        )
    return frames


def assert_same_frames(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=False):
        for name in ("numbers", "positions", "forces", "cell", "pbc", "stress"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name))
        assert (x.energy, x.kind, x.frame_id) == (y.energy, y.kind, y.frame_id)
        assert x.temperature == y.temperature


def test_round_trip_with_variable_sizes_and_periodic_frames(tmp_path, rng):
    frames = make_frames(rng)
    dataset = Dataset(frames, {"teacher": "gfn2-xtb", "seed": 3, "settings": {"frames": 3}})
    dataset.save(tmp_path / "d.h5")
    loaded = Dataset.load(tmp_path / "d.h5")
    assert_same_frames(loaded.frames, frames)
    assert loaded.attrs["teacher"] == "gfn2-xtb" and loaded.attrs["settings"] == {"frames": 3}
    assert loaded.content_hash() == dataset.content_hash()
    assert loaded.elements == sorted(set(np.concatenate([f.numbers for f in frames]).tolist()))
    with h5py.File(tmp_path / "d.h5") as handle:  # what a user sees with h5py
        assert handle["positions"].shape == (12, 3) and handle["energies"].shape == (3,)
        assert "eV" in handle.attrs["units"]


def test_loading_several_files_concatenates(tmp_path, rng):
    frames = make_frames(rng)
    Dataset(frames[:2]).save(tmp_path / "a.h5")
    Dataset(frames[2:]).save(tmp_path / "b.h5")
    assert_same_frames(Dataset.load([tmp_path / "a.h5", tmp_path / "b.h5"]).frames, frames)


def test_content_hash_changes_with_a_label(rng):
    frames = make_frames(rng)
    before = Dataset(frames).content_hash()
    frames[1].forces[2, 0] += 1e-9
    assert Dataset(frames).content_hash() != before


def test_split_is_disjoint_complete_and_seeded(rng):
    dataset = Dataset(make_frames(rng, sizes=[2] * 50))
    train, val, test = dataset.split(0.2, 0.1, seed=4)
    assert (len(train), len(val), len(test)) == (35, 10, 5)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(50))
    again = dataset.split(0.2, 0.1, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip((train, val, test), again, strict=False))
    assert not np.array_equal(test, dataset.split(0.2, 0.1, seed=5)[2])
    with pytest.raises(DatasetError):
        dataset.split(0.6, 0.5)


def test_interrupted_append_reads_complete_frames_only(tmp_path, rng):
    frames = make_frames(rng)
    path = tmp_path / "d.h5"
    create(path, {})
    append(path, frames[:2])
    with h5py.File(path, "a") as handle:  # a crash after the atom arrays grew, before energies were written
        handle["positions"].resize(20, axis=0)
        handle["n_atoms"].resize(3, axis=0)
    assert stored_frame_ids(path) == [0, 1]
    append(path, frames[2:])
    assert_same_frames(Dataset.load(path).frames, frames)


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such dataset"):
        Dataset.load(tmp_path / "missing.h5")
    create(tmp_path / "empty.h5", {})
    with pytest.raises(DatasetError, match="no labelled frames"):
        Dataset.load(tmp_path / "empty.h5")
    with h5py.File(tmp_path / "foreign.h5", "w") as handle:
        handle["x"] = [1]
    with pytest.raises(DatasetError, match="not an mlff-distiller dataset"):
        Dataset.load(tmp_path / "foreign.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(DatasetError, match="not a readable HDF5"):
        Dataset.load(tmp_path / "text.h5")
