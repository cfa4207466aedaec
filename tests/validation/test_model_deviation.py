"""The report's model deviation against numpy: trajectories written by ASE, by OpenMM's DCDReporter, by mlffd md --committee.

Expected values come from fresh StudentCalculators on the frames as the writers stored them, the
deviation formula written out here, a fresh GFN2-xTB (tblite) per frame for the teacher's errors,
and numpy's own Pearson and rank correlations.
"""

import json

import ase.io
import h5py
import jsonschema
import numpy as np
import pytest
from ase import units
from ase.md.velocitydistribution import thermalize_momenta
from ase.md.verlet import VelocityVerlet
from kit import EXACT, FLOAT32_FIGURES, FRESH_TEACHER

from mlff_distiller.data import resolve_model, resolve_structure
from mlff_distiller.models import StudentCalculator
from mlff_distiller.validation.model_deviation import TRUST_HI_EV_PER_A, TRUST_LO_EV_PER_A
from mlff_distiller.validation.report import SCHEMA_PATH

DRIVER, MEMBER = "organic-ultra-tiny", "organic-tiny"


def _sigma_by_hand(forces: list[np.ndarray]) -> tuple[float, float]:
    """Per atom sqrt(mean over members of |F_k - <F>|²); its max and mean over atoms."""
    stacked = np.stack(forces)
    centre = stacked.sum(axis=0) / len(forces)
    sigma = np.sqrt(((stacked - centre) ** 2).sum(axis=2).sum(axis=0) / len(forces))
    return float(sigma.max()), float(sigma.mean())


def _committee_by_hand(frames: list) -> np.ndarray:
    """(F, 2) max and mean deviation of DRIVER and MEMBER, fresh calculators, on ASE Atoms frames."""
    calculators = [StudentCalculator(resolve_model(DRIVER)), StudentCalculator(resolve_model(MEMBER))]
    rows = []
    for atoms in frames:
        forces = []
        for calculator in calculators:
            calculator.calculate(atoms, ["forces"])
            forces.append(calculator.results["forces"].copy())
        rows.append(_sigma_by_hand(forces))
    return np.array(rows)


def _ranks(values: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(values)).astype(float)


def _teacher_errors(frames: list, student_forces: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame force RMSE and largest per-atom error against a fresh GFN2-xTB on each frame (eV/Å)."""
    from tblite.ase import TBLite

    rmse, largest = [], []
    for atoms, student in zip(frames, student_forces, strict=True):
        atoms = atoms.copy()
        atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
        difference = student - atoms.get_forces()
        rmse.append(np.sqrt(np.mean(difference**2)))
        largest.append(np.linalg.norm(difference, axis=1).max())
    return np.array(rmse), np.array(largest)


def _check_statistics(figures: dict, deviation: np.ndarray) -> None:
    largest, mean = deviation[:, 0], deviation[:, 1]
    expected = {
        "max_deviation_mean": largest.mean(),
        "max_deviation_median": np.median(largest),
        "max_deviation_max": largest.max(),
        "mean_deviation_mean": mean.mean(),
        "fraction_above_trust_lo": np.count_nonzero(largest > TRUST_LO_EV_PER_A) / len(largest),
        "fraction_above_trust_hi": np.count_nonzero(largest > TRUST_HI_EV_PER_A) / len(largest),
        "n_frames": len(largest),
    }
    for key, value in expected.items():
        assert figures[key]["value"] == pytest.approx(value, rel=FLOAT32_FIGURES), key


def _check_correlation(figures: dict, deviation: np.ndarray, rmse: np.ndarray, largest_error: np.ndarray) -> None:
    for name, error in (("rmse", rmse), ("max_error", largest_error)):
        pearson = np.corrcoef(deviation, error)[0, 1]
        spearman = np.corrcoef(_ranks(deviation), _ranks(error))[0, 1]
        assert figures[f"pearson_{name}"]["value"] == pytest.approx(pearson, abs=FRESH_TEACHER)
        assert figures[f"spearman_{name}"]["value"] == pytest.approx(spearman, abs=FRESH_TEACHER)
    assert figures["n_correlated"]["value"] == len(deviation)


@pytest.fixture(scope="module")
def ase_trajectory(tmp_path_factory):
    """Ethanol driven by DRIVER in ASE's VelocityVerlet (0.5 fs), a frame every 4 steps, written by ase.io.Trajectory."""
    path = tmp_path_factory.mktemp("ase") / "md.traj"
    atoms = ase.io.read(resolve_structure("ethanol"))
    atoms.calc = StudentCalculator(resolve_model(DRIVER))
    thermalize_momenta(atoms, 600, rng=np.random.default_rng(5))
    dynamics = VelocityVerlet(atoms, timestep=0.5 * units.fs, trajectory=str(path), loginterval=4)
    dynamics.run(36)
    return path


def test_validate_committee_on_an_ase_trajectory(ase_trajectory, tmp_path, mlffd):
    result = mlffd(
        "validate", ase_trajectory, "--frame-interval", "0.002", "--model", DRIVER, "--committee", MEMBER,
        "--frames", "10", "--quiet", "-o", tmp_path / "report",
    )  # fmt: skip
    assert result.code in (0, 1), result.err
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    frames = ase.io.read(ase_trajectory, ":")
    assert len(frames) == 10
    deviation = _committee_by_hand(frames)
    per_frame = data["details"]["model_deviation_per_frame"]
    assert per_frame["n_members"] == 2 and per_frame["source"] == "committee evaluated on the frames"
    # MDAnalysis holds the frames' positions in float32
    np.testing.assert_allclose(per_frame["max_eV_per_A"], deviation[:, 0], rtol=FLOAT32_FIGURES)
    np.testing.assert_allclose(per_frame["mean_eV_per_A"], deviation[:, 1], rtol=FLOAT32_FIGURES)
    figures = data["figures"]["model_deviation"]
    _check_statistics(figures, deviation)
    rmse, largest_error = _teacher_errors(frames, [a.get_forces() for a in frames])
    _check_correlation(figures, deviation[:, 0], rmse, largest_error)
    assert "model_deviation.png" in data["plots"] and (tmp_path / "report" / "model_deviation.png").is_file()
    assert "Model deviation" in (tmp_path / "report" / "report.md").read_text()
    assert not any(row["section"] == "model_deviation" for row in data["verdict"]["criteria"])
    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text()))


def test_validate_committee_on_openmm_dcd(tmp_path, mlffd):
    """A DCD and PDB written by OpenMM's own reporters; positions kept from the OpenMM state at each report."""
    import openmm
    from openmm import app, unit

    from mlff_distiller.plugin.openmm import build_system, structure_to_openmm

    structure = structure_to_openmm(resolve_structure("ethanol"))
    system = build_system(structure, resolve_model(DRIVER))
    integrator = openmm.VerletIntegrator(0.5 * unit.femtoseconds)
    simulation = app.Simulation(structure.topology, system, integrator, openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(structure.positions)
    simulation.context.setVelocitiesToTemperature(600 * unit.kelvin, 3)
    with open(tmp_path / "top.pdb", "w") as handle:
        app.PDBFile.writeFile(structure.topology, structure.positions * 10 * unit.angstrom, handle)
    simulation.reporters.append(app.DCDReporter(str(tmp_path / "md.dcd"), 4))
    kept = []
    for _ in range(8):
        simulation.step(4)
        kept.append(
            simulation.context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.angstrom)
        )
    simulation.reporters[0]._out.close()
    result = mlffd(
        "validate", tmp_path / "md.dcd", "--top", tmp_path / "top.pdb", "--teacher", "none", "--model", DRIVER,
        "--committee", MEMBER, "--quiet", "-o", tmp_path / "report",
    )  # fmt: skip
    assert result.code in (0, 1), result.err
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    numbers = ase.io.read(resolve_structure("ethanol")).numbers
    deviation = _committee_by_hand([ase.Atoms(numbers=numbers, positions=p) for p in kept])
    per_frame = data["details"]["model_deviation_per_frame"]
    np.testing.assert_allclose(per_frame["max_eV_per_A"], deviation[:, 0], rtol=FLOAT32_FIGURES)
    np.testing.assert_allclose(per_frame["mean_eV_per_A"], deviation[:, 1], rtol=FLOAT32_FIGURES)
    _check_statistics(data["figures"]["model_deviation"], deviation)
    assert data["figures"]["model_deviation"]["pearson_rmse"]["value"] is None  # no teacher: nothing to correlate


def test_validate_reads_the_deviation_mlffd_md_recorded(tmp_path, mlffd):
    run = tmp_path / "run"
    md = mlffd(
        "md", "ethanol", "--model", DRIVER, "--committee", MEMBER, "--temperature", "600", "--time", "0.02",
        "--report-interval", "4", "--quiet", "-o", run,
    )  # fmt: skip
    assert md.code == 0, md.err
    result = mlffd("validate", run, "--frames", "11", "--quiet", "-o", tmp_path / "report")
    assert result.code in (0, 1), result.err
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    with h5py.File(run / "trajectory.h5md", "r") as handle:
        recorded = np.stack(
            [handle["observables/force_deviation_max/value"][:], handle["observables/force_deviation_mean/value"][:]],
            axis=1,
        )
        positions = handle["particles/system/position/value"][:].astype(np.float64) * 10.0
        kj_per_mol_nm = handle["particles/system/force/value"][:].astype(np.float64)
    forces = kj_per_mol_nm * (units.kJ / units.mol) / 10.0  # eV/Å by ASE's constants
    assert data["details"]["model_deviation_per_frame"]["source"] == "recorded during MD"
    _check_statistics(data["figures"]["model_deviation"], recorded)
    numbers = ase.io.read(resolve_structure("ethanol")).numbers
    frames = [ase.Atoms(numbers=numbers, positions=p) for p in positions]
    rmse, largest_error = _teacher_errors(frames, list(forces))
    _check_correlation(data["figures"]["model_deviation"], recorded[:, 0], rmse, largest_error)


def test_plain_runs_have_no_model_deviation_and_committee_needs_the_model(ase_trajectory, tmp_path, mlffd):
    plain = mlffd(
        "validate", ase_trajectory, "--frame-interval", "0.002", "--teacher", "none", "--quiet", "-o", tmp_path / "a"
    )
    assert plain.code in (0, 1), plain.err
    data = json.loads((tmp_path / "a" / "report.json").read_text())
    assert "model_deviation" not in data["figures"] and "model_deviation.png" not in data["plots"]
    result = mlffd(
        "validate", ase_trajectory, "--frame-interval", "0.002", "--teacher", "none", "--committee", MEMBER,
        "-o", tmp_path / "b",
    )  # fmt: skip
    lines = result.err.strip().splitlines()
    assert result.code == 2 and len(lines) == 1 and "pass it with --model" in lines[0], result.err
    assert not (tmp_path / "b").exists()


def test_correlation_pairs_the_teacher_frames_with_their_deviation(rng):
    """Teacher frames in any order, a frame without a deviation left out, too few frames give no correlation."""
    from mlff_distiller.validation.model_deviation import correlation_with_teacher

    deviation = {"frames": np.arange(10), "max_deviation": rng.uniform(0.01, 0.3, 10)}
    deviation["max_deviation"][5] = np.nan
    student, teacher = rng.normal(size=(5, 4, 3)), rng.normal(size=(5, 4, 3))
    rmse = np.sqrt(((student - teacher) ** 2).mean(axis=(1, 2)))
    largest = np.linalg.norm(student - teacher, axis=2).max(axis=1)
    forces = {
        "frames": np.array([9, 0, 5, 3, 7]),
        "student_forces": student,
        "teacher_forces": teacher,
        "per_frame_rmse": rmse,
    }
    result = correlation_with_teacher(deviation, forces)
    kept, devi = [0, 1, 3, 4], deviation["max_deviation"][[9, 0, 3, 7]]
    assert result["n_correlated"] == 4
    assert result["pearson_rmse"] == pytest.approx(np.corrcoef(devi, rmse[kept])[0, 1], abs=EXACT)
    assert result["spearman_max_error"] == pytest.approx(
        np.corrcoef(_ranks(devi), _ranks(largest[kept]))[0, 1], abs=EXACT
    )
    two = {**forces, "frames": np.array([9, 0, 5, 5, 5])}
    assert np.isnan(correlation_with_teacher(deviation, two)["pearson_rmse"])
