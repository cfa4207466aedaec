"""Checkpoint round trip and the clear error for each kind of bad file."""

import shutil
import zipfile
from pathlib import Path

import torch

import pytest
from kit import EXACT, assert_close, random_molecule

from mlff_distiller import CheckpointError
from mlff_distiller.models import StudentConfig, load_checkpoint, read_checkpoint, save_checkpoint
from mlff_distiller.models.checkpoint import FORMAT_VERSION


def test_round_trip_keeps_weights_config_and_provenance(tiny_student, tmp_path, rng):
    path = save_checkpoint(tiny_student, tmp_path / "s.ckpt", provenance={"teacher": "gfn2-xtb", "data_sha256": "abc"})
    loaded = load_checkpoint(path)
    positions, species = random_molecule(9, 4, rng)
    e0, f0 = tiny_student.energy_and_forces(positions, species)
    e1, f1 = loaded.energy_and_forces(positions, species)
    assert_close(e1, e0, EXACT, "energy after reload")
    assert_close(f1, f0, EXACT, "forces after reload")
    assert loaded.config == tiny_student.config
    assert loaded.provenance == {"teacher": "gfn2-xtb", "data_sha256": "abc"}
    payload = read_checkpoint(path)
    assert payload["units"]["length"] == "angstrom" and payload["units"]["energy"] == "eV"
    assert payload["format_version"] == FORMAT_VERSION
    assert payload["parameter_count"] == tiny_student.parameter_count()


def test_loads_in_float32(make_checkpoint):
    loaded = load_checkpoint(make_checkpoint("tiny"), dtype=torch.float32)
    assert loaded.network.energy_scale.dtype == torch.float32


def _error(path) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    assert "no such checkpoint" in _error(tmp_path / "absent.ckpt")


def test_text_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.ckpt"
    path.write_text("hello")
    assert "not a checkpoint" in _error(path)


def test_truncated_file_is_corrupt(make_checkpoint):
    path = make_checkpoint("tiny")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "corrupt" in _error(path) or "not a checkpoint" in _error(path)


def test_damaged_member_is_corrupt(make_checkpoint, tmp_path):
    path = make_checkpoint("tiny")
    damaged = tmp_path / "damaged.ckpt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(damaged, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("data.pkl"):
                data = data[:20]
            dst.writestr(item, data)
    assert "corrupt" in _error(damaged)


def test_foreign_torch_file(tmp_path):
    path = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(3)}, path)
    assert "not an mlff-distiller checkpoint" in _error(path)


def test_newer_format_version(make_checkpoint):
    path = make_checkpoint("tiny")
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, path)
    assert "newer" in _error(path)


def test_weights_that_do_not_fit_the_architecture(make_checkpoint):
    path = make_checkpoint("tiny")
    payload = torch.load(path, weights_only=True)
    payload["config"]["features"] = 12
    torch.save(payload, path)
    assert "do not match" in _error(path)


def test_exported_model_is_recognised(tiny_student, tmp_path):
    path = tmp_path / "model.pt"
    torch.jit.script(tiny_student).save(str(path))
    assert "exported TorchScript" in _error(path)


def _flipped(source, path, count: int = 400):
    """A copy of ``source`` at ``path`` with ``count`` bytes inverted in the middle (the weights)."""
    data = bytearray(source.read_bytes())
    middle = len(data) // 2
    data[middle : middle + count] = bytes(b ^ 0xFF for b in data[middle : middle + count])
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("name", ["organic-ultra-tiny", "tiny"])
def test_flipped_bytes_are_refused_as_damaged(make_checkpoint, tmp_path, name):
    """A bundled checkpoint (no recorded SHA-256: its CRC-32s catch it) and a new one, 400 bytes flipped."""
    damaged = _flipped(make_checkpoint(name), tmp_path / "damaged.ckpt")
    assert "is damaged: its weights do not match the checksum recorded when it was saved" in _error(damaged)


def _rewritten(path, change) -> None:
    """Rewrite the checkpoint at ``path`` after ``change(payload)`` (a consistent archive: CRC-32s pass)."""
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


def test_new_checkpoints_record_a_weights_checksum_that_load_verifies(make_checkpoint):
    path = make_checkpoint("tiny")
    assert len(read_checkpoint(path)["weights_sha256"]) == 64
    _rewritten(path, lambda payload: payload["state_dict"]["network.energy_scale"].mul_(2.0))
    assert "is damaged: its weights do not match the checksum" in _error(path)


def test_checkpoints_without_a_checksum_still_load(tmp_path):
    """Files written before checksums existed (water-standard, users' older students) load unchanged."""
    from mlff_distiller.data import resolve_model, student_names

    for name in student_names():
        path = Path(shutil.copy(resolve_model(name), tmp_path / f"{name}.ckpt"))
        _rewritten(path, lambda payload: payload.pop("weights_sha256", None))
        assert "weights_sha256" not in read_checkpoint(path)
        old, new = load_checkpoint(path), load_checkpoint(resolve_model(name))
        for key, value in new.state_dict().items():
            assert torch.equal(old.state_dict()[key], value), key


@pytest.mark.parametrize(
    "key,value,named",
    [
        ("cutoff", -1.0, "cutoff"),
        ("cutoff", float("nan"), "cutoff"),
        ("features", 0, "features"),
        ("layers", -2, "layers"),
        ("elements", [], "elements"),
    ],
)
def test_senseless_architecture_is_refused(make_checkpoint, key, value, named):
    path = make_checkpoint("tiny")
    _rewritten(path, lambda payload: payload["config"].__setitem__(key, value))
    message = _error(path)
    assert f": {named} " in message and "no sense" in message


def test_non_finite_weights_are_refused(make_checkpoint, tiny_student, tmp_path):
    with torch.no_grad():
        tiny_student.network.energy_scale.fill_(float("nan"))
    path = save_checkpoint(tiny_student, tmp_path / "nan.ckpt")
    assert "NaN or inf" in _error(path)


def test_a_senseless_config_cannot_be_built():
    with pytest.raises(ValueError, match="cutoff"):
        StudentConfig(cutoff=0.0)
