"""``mlffd md --committee``: the recorded force deviation against numpy on the frames, restarts, refusals."""

import csv
import json
import shutil

import ase.io
import h5py
import numpy as np
import pytest
from ase import Atoms
from kit import FLOAT32_FIGURES

from mlff_distiller.data import resolve_model, resolve_structure
from mlff_distiller.models import StudentCalculator

MD = ("md", "ethanol", "--model", "organic-ultra-tiny", "--time", "0.01", "--report-interval", "5", "--quiet")


@pytest.fixture(scope="module")
def committee_run(tmp_path_factory):
    """A 20-step ethanol run of organic-ultra-tiny with organic-tiny and a seeded random tiny student as committee."""
    import torch

    from kit import randomise_buffers, run_mlffd

    from mlff_distiller.elements import numbers_from_symbols
    from mlff_distiller.models import Student, preset, save_checkpoint

    root = tmp_path_factory.mktemp("committee")
    torch.manual_seed(11)
    student = Student(preset("tiny", elements=numbers_from_symbols(["H", "C", "N", "O"]))).double().eval()
    randomise_buffers(student)
    random_member = save_checkpoint(student, root / "random-tiny.ckpt")
    members = [resolve_model("organic-tiny"), random_member]
    result = run_mlffd(*MD, "--committee", *members, "-o", root / "run")
    assert result.code == 0, result.err
    return root / "run", members, result


def _sigma_by_hand(forces: list[np.ndarray]) -> tuple[float, float]:
    """DeePMD's force deviation written out: per atom sqrt(mean_k |F_k - <F>|²); its max and mean over atoms."""
    stacked = np.stack(forces)  # (K, N, 3)
    mean_force = stacked.sum(axis=0) / len(forces)
    sigma = np.sqrt(((stacked - mean_force) ** 2).sum(axis=2).sum(axis=0) / len(forces))
    return float(sigma.max()), float(sigma.mean())


def _recorded_against_numpy(run, members) -> dict:
    """Check the run's recorded deviation against fresh calculators (organic-ultra-tiny and ``members``); the values."""
    calculators = [StudentCalculator(resolve_model("organic-ultra-tiny"))] + [StudentCalculator(m) for m in members]
    with h5py.File(run / "trajectory.h5md", "r") as handle:
        positions_nm = handle["particles/system/position/value"][:]
        observables = {
            name: handle[f"observables/{name}/value"][:] for name in ("force_deviation_max", "force_deviation_mean")
        }
        units = {name: handle[f"observables/{name}/value"].attrs["unit"] for name in observables}
        steps = handle["observables/force_deviation_max/step"][:]
    numbers = ase.io.read(resolve_structure("ethanol")).numbers  # the run keeps the file's atom order
    assert units == {"force_deviation_max": "eV Angstrom-1", "force_deviation_mean": "eV Angstrom-1"}
    assert list(steps) == [0, 5, 10, 15, 20]
    for frame, positions in enumerate(positions_nm):
        atoms = Atoms(numbers=numbers, positions=positions.astype(np.float64) * 10.0)
        forces = []
        for calculator in calculators:
            calculator.calculate(atoms, ["forces"])
            forces.append(calculator.results["forces"].copy())
        largest, mean = _sigma_by_hand(forces)
        assert observables["force_deviation_max"][frame] == pytest.approx(largest, rel=FLOAT32_FIGURES)
        assert observables["force_deviation_mean"][frame] == pytest.approx(mean, rel=FLOAT32_FIGURES)
    return observables


def test_recorded_deviation_equals_numpy_on_the_frames(committee_run):
    run, members, result = committee_run
    observables = _recorded_against_numpy(run, members)
    with open(run / "energies.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["force_deviation_max_eV_per_A"]) for r in rows] == list(observables["force_deviation_max"])
    assert [float(r["force_deviation_mean_eV_per_A"]) for r in rows] == list(observables["force_deviation_mean"])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["max_force_deviation_eV_per_A"] == pytest.approx(observables["force_deviation_max"].max())
    settings = json.loads((run / "settings.json").read_text())
    assert settings["committee"] == [str(m) for m in members] and len(settings["committee_sha256"]) == 2
    assert "max committee force deviation" in result.out


def test_an_export_drives_the_run_and_is_refused_as_a_member(tmp_path, mlffd):
    """The driving model's forces come from OpenMM: an export (float64) gives the checkpoint's deviation."""
    export = tmp_path / "ultra-tiny.pt"
    assert mlffd("export", "organic-ultra-tiny", "--engine", "openmm", "-o", export).code == 0
    run = mlffd("md", "ethanol", "--model", export, *MD[4:], "--committee", "organic-tiny", "-o", tmp_path / "run")
    assert run.code == 0, run.err
    _recorded_against_numpy(tmp_path / "run", [resolve_model("organic-tiny")])
    member = mlffd(*MD, "--committee", export, "-o", tmp_path / "refused")
    lines = member.err.strip().splitlines()
    assert member.code == 2 and len(lines) == 1 and f"committee member {export}" in lines[0], member.err
    assert not (tmp_path / "refused").exists()


def test_restart_continues_with_the_committee_and_refuses_another(committee_run, tmp_path, mlffd):
    run, members, _ = committee_run
    copy = shutil.copytree(run, tmp_path / "run")
    other = mlffd("md", "--restart", copy, "--committee", "organic-standard", "--quiet")
    assert other.code == 2 and "a restart continues with the same committee" in other.err.strip().splitlines()[-1]
    fewer = mlffd("md", "--restart", copy, "--committee", members[0], "--quiet")
    assert fewer.code == 2, fewer.err
    same = mlffd("md", "--restart", copy, "--time", "0.015", "--committee", *reversed(members), "--quiet")
    assert same.code == 0, same.err
    with h5py.File(copy / "trajectory.h5md", "r") as handle:
        steps = handle["observables/force_deviation_max/step"][:]
        values = handle["observables/force_deviation_max/value"][:]
    assert list(steps) == [0, 5, 10, 15, 20, 25, 30] and np.isfinite(values).all()


def test_restart_of_a_run_without_committee_refuses_one(tmp_path, mlffd):
    plain = mlffd(*MD, "-o", tmp_path / "plain")
    assert plain.code == 0, plain.err
    result = mlffd("md", "--restart", tmp_path / "plain", "--committee", "organic-tiny", "--quiet")
    assert result.code == 2 and "was run with no committee" in result.err


def test_member_without_an_element_of_the_structure_is_refused_before_the_run(make_checkpoint, tmp_path, mlffd):
    member = make_checkpoint("tiny", elements=["H", "O"], name="no-carbon.ckpt")
    result = mlffd(*MD, "--committee", member, "-o", tmp_path / "run")
    lines = result.err.strip().splitlines()
    assert result.code == 2 and len(lines) == 1 and "Traceback" not in result.err, result.err
    assert f"committee member {member} does not support element(s) C" in lines[0]
    assert not (tmp_path / "run").exists()


def test_periodic_box_deviation_equals_numpy(make_checkpoint, tmp_path, mlffd):
    """A water box: members see the frame's box (minimum image), as a fresh calculator with the stored edges does."""
    member = make_checkpoint("tiny", elements=["H", "O"], name="water-member.ckpt")
    run = tmp_path / "run"
    result = mlffd(
        "md", "water-32", "--model", "water-standard", "--committee", member, "--time", "0.002",
        "--report-interval", "2", "--quiet", "-o", run,
    )  # fmt: skip
    assert result.code == 0, result.err
    calculators = [StudentCalculator(resolve_model("water-standard")), StudentCalculator(member)]
    numbers = ase.io.read(resolve_structure("water-32")).numbers
    with h5py.File(run / "trajectory.h5md", "r") as handle:
        positions_nm = handle["particles/system/position/value"][:]
        edges_nm = handle["particles/system/box/edges/value"][:]
        recorded = (
            handle["observables/force_deviation_max/value"][:],
            handle["observables/force_deviation_mean/value"][:],
        )
    assert len(positions_nm) == 3
    for frame, (positions, edges) in enumerate(zip(positions_nm, edges_nm, strict=True)):
        atoms = Atoms(numbers=numbers, positions=positions * 10.0, cell=edges * 10.0, pbc=True)
        forces = []
        for calculator in calculators:
            calculator.calculate(atoms, ["forces"])
            forces.append(calculator.results["forces"].copy())
        largest, mean = _sigma_by_hand(forces)
        assert recorded[0][frame] == pytest.approx(largest, rel=FLOAT32_FIGURES)
        assert recorded[1][frame] == pytest.approx(mean, rel=FLOAT32_FIGURES)
