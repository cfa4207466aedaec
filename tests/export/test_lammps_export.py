"""The LAMMPS export: the model file pair_style mlffd reads, its metadata, and a verification that
runs the file's weights through the C++ network the pair style compiles (a file it refuses or that
disagrees with the student is not written)."""

import re

import torch

import pytest
from kit import ENGINE64, assert_close

from mlff_distiller.errors import MLFFDError, OverwriteError
from mlff_distiller.export import ExportVerificationError, export_lammps, read_metadata
from mlff_distiller.export import lammps as lammps_export
from mlff_distiller.export.metadata import load_exported, save_with_metadata
from mlff_distiller.export.verify import verify_lammps
from mlff_distiller.models import load_checkpoint
from mlff_distiller.models.kernel.weights import kernel_weights


@pytest.fixture
def checkpoint(make_checkpoint):
    return make_checkpoint("ultra-tiny", elements=["H", "C", "O"])


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_round_trip_metadata_and_weights(checkpoint, tmp_path, precision):
    output = export_lammps(checkpoint, tmp_path / "model.pt", precision=precision)
    student = load_checkpoint(checkpoint)
    metadata = read_metadata(output)
    assert metadata["engine"] == "lammps" and metadata["precision"] == precision
    assert metadata["pair_style"] == "pair_style mlffd model.pt" and metadata["lammps_units"] == "metal"
    assert metadata["elements"] == ["H", "C", "O"] and metadata["newton_pair"] == "on"
    assert metadata["layers"] == 3 and metadata["features"] == 22
    assert metadata["receptive_field_angstrom"] == pytest.approx(3 * student.cutoff)
    module, _ = load_exported(output)
    assert (module.layers, module.width, list(module.symbols)) == (3, 88, ["H", "C", "O"])
    expected = kernel_weights(load_checkpoint(checkpoint, dtype=getattr(torch, precision)))
    assert set(module.kernel_weights) == set(expected)
    for name, weight in module.kernel_weights.items():
        assert weight.dtype == getattr(torch, precision) and torch.equal(weight, expected[name]), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "student.ckpt"]  # no staging folder left


def test_files_forward_agrees_with_the_student(checkpoint, tmp_path):
    """The autograd forward kept in the file (all atoms, nothing communicated)."""
    output = export_lammps(checkpoint, tmp_path / "model.pt", precision="float64")
    student = load_checkpoint(checkpoint)
    module, _ = load_exported(output)
    positions = torch.tensor([[0.0, 0.0, 0.0], [1.1, 0.0, 0.0], [0.0, 1.2, 0.3], [1.3, 1.1, 0.9]], dtype=torch.float64)
    species = torch.tensor([0, 1, 2, 0])
    src, dst, _ = student.edges(positions, torch.zeros((3, 3), dtype=torch.float64), torch.zeros(3, dtype=torch.bool))
    energy = module(positions, species, src, dst, 4)[0]
    assert_close(energy, student.energy_and_forces(positions, species)[0], ENGINE64, "energy")


def test_verification_runs_the_cpp_network_and_leaves_no_file(checkpoint, tmp_path, monkeypatch):
    """Weights that only the C++ network reads (the file's autograd forward is untouched) are caught,
    and nothing is left where the output was to go, nor beside it."""

    def off_by_a_little(student):
        weights = kernel_weights(student)
        weights["interactions.1.gate_out.bias"] = weights["interactions.1.gate_out.bias"] + 0.05
        return weights

    monkeypatch.setattr(lammps_export, "kernel_weights", off_by_a_little)
    with pytest.raises(
        ExportVerificationError, match=re.escape("pair_style mlffd's C++ network disagrees with the student in vacuum")
    ):
        export_lammps(checkpoint, tmp_path / "out" / "model.pt")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_failed_export_keeps_the_file_it_would_overwrite(checkpoint, tmp_path, monkeypatch):
    output = export_lammps(checkpoint, tmp_path / "model.pt")
    before = output.read_bytes()

    def misshapen(student):
        weights = kernel_weights(student)
        weights["interactions.0.filter.weight_t"] = weights["interactions.0.filter.weight_t"][:-1].contiguous()
        return weights

    monkeypatch.setattr(lammps_export, "kernel_weights", misshapen)
    with pytest.raises(
        ExportVerificationError,
        match=r"refuses the file: mlffd: weight 'interactions.0.filter.weight_t' has shape \[20, 66\], expected \[21, 66\]",
    ):
        export_lammps(checkpoint, output, overwrite=True)
    assert output.read_bytes() == before


#: A model file altered after export, and what the C++ network says of it.
TAMPERING = {
    "weight missing": (lambda w: w.pop("readout_out.bias"), "weight 'readout_out.bias' is missing"),
    "wrong shape": (
        lambda w: w.update({"embedding.weight": w["embedding.weight"][:2].contiguous()}),
        "weight 'reference_energies' has shape [3], expected [2]",
    ),
    "wrong dtype": (
        lambda w: w.update({"energy_scale": w["energy_scale"].double()}),
        "weight 'energy_scale' is Double, expected Float",
    ),
    "unknown name": (
        lambda w: w.update({"interactions.0.extra": w["energy_scale"]}),
        "unexpected weight 'interactions.0.extra'",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_verify_refuses_a_tampered_file(case, checkpoint, tmp_path):
    output = export_lammps(checkpoint, tmp_path / "model.pt", precision="float32")
    change, message = TAMPERING[case]
    module, metadata = load_exported(output)
    weights = dict(module.kernel_weights)
    change(weights)
    module.kernel_weights = weights
    tampered = save_with_metadata(module, tmp_path / "tampered.pt", metadata)
    with pytest.raises(
        ExportVerificationError, match=re.escape("tampered.pt: the C++ network of pair_style mlffd refuses the file")
    ) as caught:
        verify_lammps(tampered, load_checkpoint(checkpoint, dtype=torch.float32))
    assert message in str(caught.value)


def test_verify_refuses_another_students_file(make_checkpoint, checkpoint, tmp_path):
    other = make_checkpoint("ultra-tiny", elements=["H", "C", "O"], seed=11, name="other.ckpt")
    output = export_lammps(other, tmp_path / "other.pt", precision="float64")
    with pytest.raises(ExportVerificationError, match="disagrees with the student in vacuum"):
        verify_lammps(output, load_checkpoint(checkpoint))


def test_refuses_a_topology_and_an_existing_file(checkpoint, tmp_path):
    with pytest.raises(MLFFDError, match="LAMMPS models take no topology"):
        export_lammps(checkpoint, tmp_path / "model.pt", topology="system.pdb")
    (tmp_path / "model.pt").write_bytes(b"keep me")
    with pytest.raises(OverwriteError, match="exists; pass --overwrite"):
        export_lammps(checkpoint, tmp_path / "model.pt")
    assert (tmp_path / "model.pt").read_bytes() == b"keep me"
