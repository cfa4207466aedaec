"""The OpenMM export: metadata, self-verification, self-contained files in a plain OpenMM script."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

import numpy as np
import pytest
from kit import ENGINE64, assert_close
from openmm import app, unit

from mlff_distiller.errors import CheckpointError, OverwriteError, UnsupportedElementError
from mlff_distiller.export import EXPORTERS, ExportVerificationError, export_openmm, read_metadata
from mlff_distiller.export.verify import verify_openmm
from mlff_distiller.models import save_checkpoint
from mlff_distiller.models.checkpoint import file_sha256
from mlff_distiller.plugin.openmm import structure_to_openmm
from mlff_distiller.units import EV_TO_KJ_PER_MOL

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkpoint(tiny_student, tmp_path):
    return save_checkpoint(tiny_student, tmp_path / "student.ckpt")


@pytest.fixture
def ethanol_pdb(tmp_path):
    structure = structure_to_openmm("CCO")
    path = tmp_path / "ethanol.pdb"
    with open(path, "w") as handle:
        app.PDBFile.writeFile(structure.topology, structure.positions * unit.nanometer, handle)
    return path


def test_metadata_travels_in_the_file(tiny_student, checkpoint, ethanol_pdb, tmp_path):
    path = export_openmm(checkpoint, tmp_path / "ethanol.pt", topology=ethanol_pdb, precision="float32")
    metadata = read_metadata(path)
    assert metadata["engine"] == "openmm"
    assert metadata["units"] == {"length": "nm", "energy": "kJ/mol", "force": "kJ/mol/nm"}
    assert metadata["precision"] == "float32"
    assert metadata["atomic_numbers"] == tiny_student.elements
    assert metadata["cutoff_angstrom"] == tiny_student.cutoff
    assert metadata["parameters"] == tiny_student.parameter_count()
    assert metadata["source_checkpoint_sha256"] == file_sha256(checkpoint)
    assert metadata["species"] == [6, 6, 8, 1, 1, 1, 1, 1, 1]
    assert metadata["periodic"] is True


def mlffd(*args):
    command = [str(Path(sys.executable).parent / "mlffd"), *map(str, args)]
    return subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300
    )


def test_mlffd_export_and_info(checkpoint, tmp_path):
    output = tmp_path / "model.pt"
    result = mlffd("export", checkpoint, "--engine", "openmm", "--no-periodic", "-o", output)
    assert result.returncode == 0 and "verified" in result.stdout, result.stderr
    assert "to use it:" in result.stdout and "model.set_species(" in result.stdout  # no topology: species by hand
    info = json.loads(mlffd("info", output, "--json").stdout)
    assert info["kind"] == "exported model" and info["periodic"] is False and info["species"] is None
    assert info["precision"] == "float64" and info["outputs_forces"] is False  # the default for openmm
    assert info["usage"] == result.stdout.split("to use it:\n")[1].replace("    ", "").splitlines()
    assert "float64 for openmm, float32 for lammps" in " ".join(mlffd("export", "--help").stdout.split())
    again = mlffd("export", checkpoint, "--engine", "openmm", "-o", output)
    assert again.returncode == 2 and "--overwrite" in again.stderr and "Traceback" not in again.stderr


def test_engine_choices_come_from_the_registry():
    import argparse

    from mlff_distiller.cli import export_commands

    parser = argparse.ArgumentParser()
    export_commands.register(parser.add_subparsers())
    export = parser._subparsers._group_actions[0].choices["export"]
    engine = next(a for a in export._actions if a.dest == "engine")
    assert sorted(engine.choices) == sorted(EXPORTERS)


def test_overwrite_refused(checkpoint, tmp_path):
    output = tmp_path / "model.pt"
    output.write_text("precious")
    with pytest.raises(OverwriteError):
        export_openmm(checkpoint, output)
    assert output.read_text() == "precious"


def test_verification_catches_a_different_model(tiny_student, checkpoint, tmp_path):
    path = export_openmm(checkpoint, tmp_path / "model.pt")
    other = type(tiny_student)(tiny_student.config).double().eval()
    with pytest.raises(ExportVerificationError, match="disagrees"):
        verify_openmm(path, other, None, periodic=True)


def test_non_finite_model_is_refused(tiny_student, tmp_path):
    with torch.no_grad():
        tiny_student.network.energy_scale.fill_(float("nan"))
    checkpoint = save_checkpoint(tiny_student, tmp_path / "nan.ckpt")
    with pytest.raises(CheckpointError, match="NaN or inf"):  # refused at load, before any export work
        export_openmm(checkpoint, tmp_path / "nan.pt")
    assert not (tmp_path / "nan.pt").exists()


def test_bad_inputs(checkpoint, tmp_path):
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"not a model")
    with pytest.raises(CheckpointError):
        export_openmm(corrupt, tmp_path / "a.pt")
    with pytest.raises(UnsupportedElementError, match="Fe"):
        export_openmm(checkpoint, tmp_path / "b.pt", topology="[Fe]")


def test_self_contained_export_runs_in_a_plain_openmm_script(tiny_student, checkpoint, ethanol_pdb, tmp_path):
    model = export_openmm(checkpoint, tmp_path / "ethanol.pt", topology=ethanol_pdb)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    script = ROOT / "examples" / "openmm_plain_script.py"
    result = subprocess.run(
        [sys.executable, "-I", str(script), str(ethanol_pdb), str(model), "20"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "mlff_distiller imported: False" in result.stdout
    energy = float(result.stdout.split("initial potential energy: ")[1].split()[0])
    pdb = app.PDBFile(str(ethanol_pdb))
    positions = torch.tensor(pdb.getPositions(asNumpy=True).value_in_unit(unit.angstrom))
    expected, _ = tiny_student.energy_and_forces(positions, tiny_student.species([6, 6, 8, 1, 1, 1, 1, 1, 1]))
    assert_close(energy, float(expected) * EV_TO_KJ_PER_MOL, ENGINE64, "plain-script energy")


def test_exported_weights_need_no_gradient(tiny_student, checkpoint, tmp_path):
    """A portable file returns the energy alone; autograd reaches the positions, never the weights."""
    path = export_openmm(checkpoint, tmp_path / "any.pt")
    module = torch.jit.load(str(path))
    assert read_metadata(path)["outputs_forces"] is False
    assert not any(parameter.requires_grad for parameter in module.parameters())
    module.set_species(torch.tensor([8, 1, 1]), torch.arange(3))
    positions = torch.rand(3, 3, dtype=torch.float64, requires_grad=True)
    energy = module(positions)
    assert isinstance(energy, torch.Tensor) and energy.shape == () and energy.requires_grad
    assert torch.autograd.grad(energy, positions)[0].shape == (3, 3)
    assert all(parameter.requires_grad for parameter in tiny_student.parameters())  # the caller's student is untouched


#: A plain OpenMM script (argv: model, "load" or "plain", PDB, forces.npy) that prints the energy in kJ/mol.
PLAIN_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch
    if sys.argv[2] == "load":
        import mlff_distiller
        mlff_distiller.load_kernel()
    import openmm, openmmtorch
    from openmm import app, unit
    pdb = app.PDBFile(sys.argv[3])
    system = openmm.System()
    for atom in pdb.topology.atoms():
        system.addParticle(atom.element.mass)
    force = openmmtorch.TorchForce(sys.argv[1])
    if sys.argv[2] == "load":
        force.setOutputsForces(True)  # the fused file returns (energy, forces)
    system.addForce(force)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(pdb.positions)
    state = context.getState(getEnergy=True, getForces=True)
    np.save(sys.argv[4], state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))
    print(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
    """
)


def _plain_run(model, mode, pdb, tmp_path):
    forces = tmp_path / f"{Path(model).stem}-{mode}.npy"
    result = subprocess.run(
        [sys.executable, "-c", PLAIN_SCRIPT, str(model), mode, str(pdb), str(forces)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    return result, forces


def test_fused_export_equals_portable_in_a_plain_script(checkpoint, ethanol_pdb, tmp_path):
    """A --kernel fused file runs in a plain OpenMM script once load_kernel() ran (and setOutputsForces(True)),
    with the portable file's energy and forces; without it, openmm-torch names the missing operator."""
    portable = export_openmm(checkpoint, tmp_path / "portable.pt", topology=ethanol_pdb)
    fused = export_openmm(checkpoint, tmp_path / "fused.pt", topology=ethanol_pdb, kernel="fused")
    assert read_metadata(fused)["kernel"] == "fused" and read_metadata(portable)["kernel"] == "portable"
    assert read_metadata(fused)["outputs_forces"] is True
    plain, plain_forces = _plain_run(portable, "plain", ethanol_pdb, tmp_path)
    loaded, loaded_forces = _plain_run(fused, "load", ethanol_pdb, tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert loaded.returncode == 0, loaded.stderr
    assert_close(float(loaded.stdout), float(plain.stdout), ENGINE64, "fused energy")
    assert_close(np.load(loaded_forces), np.load(plain_forces), ENGINE64, "fused forces")
    missing, _ = _plain_run(fused, "plain", ethanol_pdb, tmp_path)
    assert missing.returncode != 0 and "Unknown builtin op: mlffd::painn_" in missing.stderr


def test_fused_export_on_the_command_line(checkpoint, tmp_path):
    result = mlffd("export", checkpoint, "--engine", "openmm", "--kernel", "fused", "-o", tmp_path / "fused.pt")
    assert result.returncode == 0, result.stderr
    assert "fused kernel" in result.stdout
    info = mlffd("info", tmp_path / "fused.pt")  # a fresh process: the metadata says to load the kernel first
    assert info.returncode == 0, info.stderr
    assert "kernel: fused" in info.stdout
    assert "    force.setOutputsForces(True)" in info.stdout and "mlff_distiller.load_kernel()" in info.stdout
    refused = mlffd("export", checkpoint, "--engine", "lammps", "--kernel", "fused", "-o", tmp_path / "l.pt")
    assert refused.returncode == 2 and "--engine openmm only" in refused.stderr
    assert not (tmp_path / "l.pt").exists()
