"""``mlffd check-engines`` on the bundled students and structures, on exported files, and on a model that truly differs."""

import torch

import numpy as np
import pytest
from kit import ENGINE64

from mlff_distiller.data import bundled_structure, bundled_student
from mlff_distiller.export import export_lammps, export_openmm
from mlff_distiller.models import load_checkpoint, save_checkpoint
from mlff_distiller.validation.finite_strain import EPS64, finite_strain_virial

MOLECULES = [
    "aspirin",
    "benzene",
    "caffeine",
    "ethanol",
    "malonaldehyde",
    "naphthalene",
    "paracetamol",
    "salicylic-acid",
    "toluene",
    "uracil",
]
ORGANIC = ["organic-ultra-tiny", "organic-tiny", "organic-standard"]
#: Each molecule with one organic student (in turn), and aspirin with the other two.
CASES = [(molecule, ORGANIC[i % 3]) for i, molecule in enumerate(MOLECULES)]
CASES += [("aspirin", "organic-tiny"), ("aspirin", "organic-standard")]
EXPORTERS = {"openmm": export_openmm, "lammps": export_lammps}


def test_bundled_structures_cover_the_cases():
    assert sorted(path.stem for path in bundled_structure("aspirin").parent.glob("*.xyz")) == MOLECULES


@pytest.mark.parametrize("molecule, student", CASES)
def test_bundled_molecules_agree(molecule, student, mlffd):
    code, out, _ = mlffd("check-engines", bundled_student(student), bundled_structure(molecule))
    assert code == 0, out
    assert "verdict: all engines agree" in out
    openmm_row = next(line for line in out.splitlines() if line.startswith("OpenMM (Reference)"))
    assert "finite strain (5-point, h 1e-0" in openmm_row
    assert "tol dW is the stencil's error estimate" in out


def test_bundled_water_box_agrees(mlffd):
    code, out, _ = mlffd("check-engines", bundled_student("water-standard"), bundled_structure("water-32"))
    assert code == 0, out
    assert "96 atoms, periodic box" in out
    for engine in ("PyTorch (direct)", "ASE calculator", "OpenMM (Reference)", "LAMMPS (pair_style mlffd)"):
        assert engine in out


def test_finite_strain_error_estimate_covers_the_error():
    """A smooth energy: the virial is exact to round-off; one that bends sharply: the estimate still covers it."""
    strain_weights = np.array([[0.3, -0.1, 0.2], [-0.1, 0.5, 0.05], [0.2, 0.05, -0.4]])
    offset = -1000.0  # eV: round-off of |E| dominates, as for a molecule

    def smooth(deformation: np.ndarray) -> float:
        strain = deformation - np.eye(3)
        return offset + float(np.sum(strain_weights * strain) + 7.0 * np.sum(strain**2))

    virial, error, step = finite_strain_virial(smooth, offset)
    assert step == 1e-5
    assert np.abs(virial + strain_weights).max() <= error
    assert error >= 1.5 * EPS64 * abs(offset) / step
    assert error <= 100 * EPS64 * abs(offset) / step  # round-off-sized, not inflated

    def sharp(deformation: np.ndarray) -> float:  # curvature radius 1e-5 in strain: like a vector feature near zero
        return offset + float(np.sqrt(np.sum((deformation - np.eye(3) + 3e-5) ** 2) + 1e-10))

    virial, error, step = finite_strain_virial(sharp, sharp(np.eye(3)))
    exact = -np.full((3, 3), 3e-5) / np.sqrt(9 * 9e-10 + 1e-10)  # -dE/dD, the same for every entry
    assert np.abs(virial - exact).max() <= error
    assert step == 1e-6  # the smaller step has the smaller error here


@pytest.mark.parametrize("engine, precision", [("openmm", "float64"), ("lammps", "float64"), ("openmm", "float32")])
def test_exported_files_agree(engine, precision, tmp_path, mlffd):
    checkpoint = bundled_student("organic-ultra-tiny")
    model = EXPORTERS[engine](checkpoint, tmp_path / f"{engine}.pt", precision=precision)
    code, out, _ = mlffd("check-engines", model, bundled_structure("ethanol"))
    assert code == 0, out
    name = "OpenMM" if engine == "openmm" else "LAMMPS"
    assert f"{name}: {model} ({precision} export, exported from the reference checkpoint)" in out
    assert f"PyTorch, ASE: {checkpoint}" in out
    if precision == "float32":
        assert " 1.0e-03 " in next(line for line in out.splitlines() if line.startswith(f"{name} ("))


def test_an_export_whose_checkpoint_moved_needs_checkpoint(tmp_path, mlffd, make_checkpoint):
    moved = make_checkpoint("organic-ultra-tiny")
    model = export_openmm(moved, tmp_path / "openmm.pt")
    moved.unlink()
    code, _, err = mlffd("check-engines", model, "CCO")
    assert code == 2
    assert "pass the reference with --checkpoint" in err and len(err.strip().splitlines()) == 1
    code, out, _ = mlffd("check-engines", model, "CCO", "--checkpoint", bundled_student("organic-ultra-tiny"))
    assert code == 0, out


@pytest.mark.parametrize("engine", ["openmm", "lammps"])
def test_a_perturbed_export_disagrees(engine, tmp_path, mlffd):
    """An export of a student one weight of which moved by 1e-6 (relative): energies differ far beyond rounding."""
    reference = bundled_student("organic-ultra-tiny")
    student = load_checkpoint(reference)
    with torch.no_grad():
        next(student.network.parameters()).mul_(1.0 + 1e-6)
    perturbed = save_checkpoint(student, tmp_path / "perturbed.ckpt")
    model = EXPORTERS[engine](perturbed, tmp_path / f"{engine}.pt", precision="float64")
    code, out, _ = mlffd("check-engines", model, bundled_structure("ethanol"), "--checkpoint", reference)
    assert code == 1, out
    assert "exported from ANOTHER checkpoint" in out
    name = "OpenMM (Reference)" if engine == "openmm" else "LAMMPS (pair_style mlffd)"
    assert f"verdict: DISAGREE beyond the tolerances: {name}" in out
    columns = next(line for line in out.splitlines() if line.startswith(name))[len(name) :].split()
    assert float(columns[2]) > ENGINE64 and float(columns[4]) > ENGINE64  # rel dE, rel dF: a real difference


def test_a_file_that_is_neither_is_refused(tmp_path, mlffd):
    text = tmp_path / "model.pt"
    text.write_text("not a model\n")
    code, _, err = mlffd("check-engines", text, "CCO")
    assert code == 2
    assert "neither a student checkpoint nor a model exported by 'mlffd export'" in err
    assert len(err.strip().splitlines()) == 1


def test_an_export_left_out_of_the_engines_is_refused(tmp_path, mlffd):
    model = export_lammps(bundled_student("organic-ultra-tiny"), tmp_path / "lammps.pt")
    code, _, err = mlffd("check-engines", model, "CCO", "--engines", "openmm")
    assert code == 2
    assert "is a lammps export, but --engines leaves lammps out" in err
