"""Mistakes a user can make are caught with a clear error before any MD step."""

import os
import subprocess
import sys
from pathlib import Path

import torch

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

from mlff_distiller.errors import (
    CheckpointError,
    OverwriteError,
    SimulationError,
    StructureError,
    UnsupportedElementError,
)
from mlff_distiller.export import export_openmm
from mlff_distiller.models import Student, preset, save_checkpoint
from mlff_distiller.plugin.openmm import (
    MDRun,
    MDSettings,
    available_platforms,
    build_system,
    create_torch_force,
    select_platform,
)

MLFFD = str(Path(sys.executable).parent / "mlffd")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An ultra-tiny student for H, C and O only."""
    torch.manual_seed(1)
    student = Student(preset("ultra-tiny", elements=[1, 6, 8])).double().eval()
    return save_checkpoint(student, tmp_path_factory.mktemp("model") / "hco.ckpt")


@pytest.fixture
def water_box(tmp_path):
    """A periodic box of 8 water molecules as extended XYZ (Å)."""
    rng = np.random.default_rng(0)
    molecule = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
    centres = np.array([[i, j, k] for i in range(2) for j in range(2) for k in range(2)]) * 3.1 + 0.5
    positions = np.concatenate([molecule + c + rng.normal(0, 0.05, 3) for c in centres])
    atoms = Atoms("OH2" * 8, positions=positions, cell=[6.2, 6.2, 6.2], pbc=True)
    path = tmp_path / "water.extxyz"
    write(path, atoms)
    return path


def _md(structure, model, run_dir, **overrides):
    return MDRun(MDSettings(structure=str(structure), model=str(model), platform="Reference", **overrides), run_dir)


def test_element_the_model_lacks(checkpoint, tmp_path):
    with pytest.raises(UnsupportedElementError, match="does not support element.*N"):
        _md("C#N", checkpoint, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_corrupt_model_file(tmp_path):
    corrupt = tmp_path / "broken.pt"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a model")
    with pytest.raises(CheckpointError):
        _md("CCO", corrupt, tmp_path / "run")
    with pytest.raises(CheckpointError, match="no such"):
        _md("CCO", tmp_path / "missing.ckpt", tmp_path / "run")


def test_periodic_system_with_a_non_periodic_export(checkpoint, water_box, tmp_path):
    model = export_openmm(checkpoint, tmp_path / "vacuum.pt", periodic=False)
    with pytest.raises(StructureError, match="without periodic support"):
        _md(water_box, model, tmp_path / "run")
    # the same export is fine for a molecule, and the periodic default is fine for the box
    assert build_system("CCO", model).getNumParticles() == 9
    assert build_system(water_box, export_openmm(checkpoint, tmp_path / "pbc.pt")).usesPeriodicBoundaryConditions()


def test_self_contained_export_for_another_system(checkpoint, tmp_path):
    model = export_openmm(checkpoint, tmp_path / "ethanol.pt", topology="CCO")
    with pytest.raises(StructureError, match="fixed system of 9 atoms"):
        build_system("CC(=O)O", model)


def test_non_finite_positions(checkpoint, tmp_path):
    path = tmp_path / "nan.xyz"
    path.write_text("2\n\nC 0.0 0.0 0.0\nO nan 0.0 1.2\n")
    with pytest.raises(StructureError, match="non-finite"):
        _md(path, checkpoint, tmp_path / "run")


def test_inconsistent_settings(checkpoint, tmp_path):
    with pytest.raises(SimulationError, match="multiple of the report interval"):
        _md("CCO", checkpoint, tmp_path / "run", report_interval=10, audit_every=15, teacher="gfn2-xtb")
    with pytest.raises(SimulationError, match="time step|timestep"):
        _md("CCO", checkpoint, tmp_path / "run", timestep=-1.0)


def test_existing_run_is_not_overwritten(checkpoint, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "settings.json").write_text("{}")
    with pytest.raises(OverwriteError, match="--overwrite"):
        _md("CCO", checkpoint, run_dir)


def test_platform_selection():
    """'auto' takes the fastest platform that loaded; CUDA/OpenCL get the Precision property (unverified here: no GPU)."""
    platform, properties = select_platform("auto", "mixed")
    assert platform.getName() in ("CUDA", "OpenCL", "CPU")
    if platform.getName() == "CPU":
        assert properties == {"Threads": str(torch.get_num_threads())}
        # a System of the student alone: Reference, whose steps cost microseconds, not the CPU thread pool
        assert select_platform("auto", "mixed", model_only=True)[0].getName() == "Reference"
    with pytest.raises(SimulationError, match="Precision|precision"):
        select_platform("CPU", "quadruple")
    if "CUDA" not in available_platforms():
        with pytest.raises(SimulationError, match="cuda12"):
            select_platform("CUDA", "mixed")


def test_cuda_graphs_property_is_set(checkpoint):
    force = create_torch_force(checkpoint, [6, 8], cuda_graphs=True)
    assert force.getProperties()["useCUDAGraphs"] == "true"
    assert create_torch_force(checkpoint, [6, 8]).getProperties()["useCUDAGraphs"] == "false"


def test_cli_reports_one_line_and_exit_code_2(checkpoint, tmp_path):
    result = subprocess.run(
        [MLFFD, "md", "[Fe]", "--model", str(checkpoint), "-o", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("mlffd: error:") and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
