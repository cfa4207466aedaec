"""Ensembles, temperatures, selections and verdict boundaries, each against numbers computed here."""

from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.units import kB as BOLTZMANN_EV_PER_K_ASE
from kit import FLOAT32_STORED, PDB_POSITIONS
from openmm import app, unit

from mlff_distiller.data import bundled_student
from mlff_distiller.errors import TrajectoryError
from mlff_distiller.models import StudentCalculator
from mlff_distiller.validation import (
    EnergySeries,
    Thresholds,
    canonical_variance_ratio,
    resolve_ensemble,
    validate,
    verdict,
)
from mlff_distiller.validation.thresholds import CRITERIA, judge

ETHANOL = Path(__file__).resolve().parents[2] / "mlff_distiller" / "data" / "molecules" / "ethanol.xyz"


def series_with(fixes, source="log.lammps (LAMMPS log, units metal)") -> EnergySeries:
    zeros = np.zeros(3)
    return EnergySeries(zeros, zeros, zeros, zeros, None, source, fixes=fixes)


@pytest.mark.parametrize(
    "fixes, name, target",
    [
        ([("nve", [])], "nve", None),
        ([("nvt", ["temp", "300.0", "310.0", "0.1"])], "nvt", 310.0),
        ([("nve", []), ("langevin", ["250", "250", "0.1", "48279"])], "nvt", 250.0),
        ([("npt", ["temp", "300", "300", "0.1", "iso", "1", "1", "1"])], "npt", 300.0),
        ([("nve", []), ("temp/csvr", ["v_t", "v_t", "0.1", "1"])], "nvt", None),
        ([("nve", []), ("temp/rescale", ["10", "300", "320", "5", "1.0"])], "nvt", 320.0),
    ],
)
def test_lammps_fixes_give_the_ensemble(fixes, name, target):
    ensemble = resolve_ensemble(None, None, {}, series_with(fixes))
    assert (ensemble.name, ensemble.target_temperature_K) == (name, target)
    assert ensemble.source.startswith("LAMMPS log")


def test_ensemble_precedence():
    settings = {"ensemble": "nvt", "temperature": 300.0, "production_start_ps": 2.0}
    from_settings = resolve_ensemble(None, None, settings, series_with([("nve", [])]))
    assert (from_settings.name, from_settings.target_temperature_K, from_settings.production_start_ps) == (
        "nvt",
        300.0,
        2.0,
    )
    forced = resolve_ensemble("npt", 280.0, settings, None)
    assert (forced.name, forced.target_temperature_K, forced.source) == ("npt", 280.0, "--ensemble")
    assumed = resolve_ensemble(None, None, {}, None)
    assert assumed.name == "nve" and assumed.assumed
    with pytest.raises(TrajectoryError, match="--ensemble"):
        resolve_ensemble("nph", None, {}, None)
    with pytest.raises(TrajectoryError, match="--temperature"):
        resolve_ensemble(None, float("nan"), {}, None)


def test_canonical_kinetic_energy_variance(rng):
    """E_kin of f canonical degrees of freedom is Gamma(f/2, k_B T): the ratio is 1, and 1/2 for a halved spread."""
    dof, temperature = 60, 300.0
    kt = BOLTZMANN_EV_PER_K_ASE * temperature
    samples = rng.gamma(dof / 2.0, kt, size=200_000)
    assert canonical_variance_ratio(samples, dof, temperature) == pytest.approx(1.0, abs=0.02)
    squeezed = samples.mean() + (samples - samples.mean()) / np.sqrt(2.0)
    assert canonical_variance_ratio(squeezed, dof, temperature) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("value, passes", [(1.9999999999998352, True), (2.0, True), (1.9999, False)])
def test_stable_time_at_the_boundary(value, passes):
    """A 2 ps run stores 1.9999999999998352 ps after 4,000 steps of 0.5 fs: it lasted 2 ps."""
    criterion = next(c for c in CRITERIA if c.figure == "stable_time_ps")
    assert judge(value, criterion, 2.0) is passes
    accumulated = 0.0
    for _ in range(4000):
        accumulated += 0.0005
    assert judge(accumulated, criterion, 2.0) is True


def test_strict_and_two_sided_comparisons_at_the_boundary():
    slope = next(c for c in CRITERIA if c.figure == "slope_meV_per_atom_per_ps")  # |x| < 0.5
    assert judge(-0.5, slope, 0.5) is False and judge(0.4999, slope, 0.5) is True
    variance = next(c for c in CRITERIA if c.figure == "kinetic_variance_ratio")
    assert judge(0.5, variance, (0.5, 2.0)) and judge(2.0 * (1 + 1e-12), variance, (0.5, 2.0))
    assert not judge(2.01, variance, (0.5, 2.0)) and judge(None, variance, (0.5, 2.0)) is None


def ethanol_in_water(path: Path, shift_A: float) -> np.ndarray:
    """A PDB of ethanol (resname LIG) among 8 waters (HOH) in a 12 Å box, ethanol moved by ``shift_A`` along x and
    wrapped into the box (so that it is cut by the boundary). Returns ethanol's unwrapped positions (Å)."""
    ethanol = ase.io.read(ETHANOL)
    length = 12.0
    whole = ethanol.positions + np.array([length - 0.5 + shift_A, 6.0, 6.0]) - ethanol.positions.mean(0)
    topology = app.Topology()
    chain = topology.addChain()
    positions = []
    residue = topology.addResidue("LIG", chain)
    for i, (symbol, xyz) in enumerate(zip(ethanol.get_chemical_symbols(), whole, strict=False)):
        topology.addAtom(f"{symbol}{i + 1}", app.Element.getBySymbol(symbol), residue)
        positions.append(xyz % length)
    water = np.array([[0.0, 0.0, 0.0], [0.9572, 0.0, 0.0], [-0.24, 0.927, 0.0]])
    for corner in np.ndindex(2, 2, 2):
        residue = topology.addResidue("HOH", chain)
        origin = np.array(corner) * 6.0 + np.array([1.0, 1.0, 1.0]) + np.array([0.0, 0.0, 3.0])
        for symbol, xyz in zip("OHH", water, strict=False):
            topology.addAtom(symbol, app.Element.getBySymbol(symbol), residue)
            positions.append(origin + xyz)
    topology.setPeriodicBoxVectors(np.eye(3) * length / 10.0 * unit.nanometer)
    with open(path, "w") as handle:
        app.PDBFile.writeFile(topology, np.array(positions) * unit.angstrom, handle)
    return whole


def test_selection_judges_the_students_atoms_alone(tmp_path):
    from tblite.ase import TBLite

    pdb = tmp_path / "mlmm.pdb"
    whole = ethanol_in_water(pdb, shift_A=0.0)
    checkpoint = bundled_student("organic-ultra-tiny")
    with pytest.raises(TrajectoryError, match="--select"):
        validate(pdb, teacher="gfn2-xtb", student=checkpoint)
    report = validate(pdb, teacher="gfn2-xtb", student=checkpoint, select="resname LIG", frames=1)
    selection = report.data["input"]["selection"]
    assert (selection["n_atoms"], selection["n_total"]) == (9, 33)
    # independent evaluation: the teacher (tblite directly) and the student on the whole molecule in vacuum
    stored = ase.io.read(pdb)[:9]  # the positions as the PDB holds them (3 decimals), ethanol cut by the boundary
    offsets = stored.positions - stored.positions[0]
    offsets -= 12.0 * np.round(offsets / 12.0)
    np.testing.assert_allclose(
        stored.positions[0] + offsets, whole - (whole[0] - stored.positions[0]), atol=PDB_POSITIONS
    )
    molecule = ase.Atoms(numbers=stored.numbers, positions=stored.positions[0] + offsets)
    molecule.calc = TBLite(method="GFN2-xTB", verbosity=0)
    teacher = molecule.get_forces()
    molecule.calc = StudentCalculator(checkpoint)
    student = molecule.get_forces()
    rmse = np.sqrt(np.mean((student - teacher) ** 2))
    assert report.figure("force_fidelity", "rmse") == pytest.approx(rmse, rel=FLOAT32_STORED)
    assert report.figure("energy_drift", "slope_meV_per_atom_per_ps") is None  # a single PDB frame has no energies
    assert any("resname LIG" in note for note in report.data["notes"])


def test_bad_selections_are_one_line_errors(tmp_path, mlffd):
    pdb = tmp_path / "mlmm.pdb"
    ethanol_in_water(pdb, shift_A=0.3)
    for selection, message in (
        ("resname NOPE", "selects no atom"),
        ("resname LIG and (", "not a valid MDAnalysis selection"),
    ):
        result = mlffd("validate", pdb, "--teacher", "none", "--select", selection, "-o", tmp_path / "r")
        assert result.code == 2 and message in result.err
    result = mlffd("validate", pdb, "--teacher", "none", "-o", tmp_path / "r")
    assert result.code == 2 and '--select "resname LIG"' in result.err


def test_a_thermostatted_run_needs_no_conserved_energy(rng):
    """An NVT run without a conserved quantity: drift rows are not applicable, temperature rows judge it."""
    from mlff_distiller.validation import Ensemble, temperature_figures

    dof, target = 21, 300.0
    kinetic = rng.gamma(dof / 2.0, BOLTZMANN_EV_PER_K_ASE * target, size=5000)
    time = np.arange(5000) * 0.01
    series = EnergySeries(time, np.zeros(5000), kinetic, kinetic, 2 * kinetic / (dof * BOLTZMANN_EV_PER_K_ASE), "test")
    figures = temperature_figures(series, 9, Ensemble("nvt", "--ensemble", target))
    assert figures["degrees_of_freedom"] == dof
    assert figures["temperature_deviation_percent"] == pytest.approx(
        100 * (kinetic.mean() * 2 / (dof * BOLTZMANN_EV_PER_K_ASE) - target) / target, rel=1e-3
    )
    assert figures["kinetic_variance_ratio"] == pytest.approx(
        kinetic.var(ddof=1) / (0.5 * dof * (BOLTZMANN_EV_PER_K_ASE * target) ** 2), rel=1e-3
    )
    nve = temperature_figures(series, 9, Ensemble("nve", "--ensemble", target))
    assert np.isnan(nve["kinetic_variance_ratio"])
    assert Thresholds().max_temperature_deviation_percent == 10.0


def test_nve_temperature_line_follows_the_expected_scatter(rng):
    """One NVE run's mean temperature strays by chance: E_tot of a canonical harmonic start is Gamma(f, k_B T) and the
    NVE mean kinetic energy is E_tot / 2, so T_NVE / T scatters by 1/sqrt(f). Halving the temperature is still flagged."""
    from mlff_distiller.validation import Ensemble, temperature_figures

    dof, target = 24, 300.0
    kt = BOLTZMANN_EV_PER_K_ASE * target
    runs = rng.gamma(dof, kt, size=200_000) / 2.0 / (0.5 * dof * BOLTZMANN_EV_PER_K_ASE)  # mean T of each NVE run
    kinetic = np.full(10, 0.5 * dof * kt)
    series = EnergySeries(np.arange(10.0), np.zeros(10), kinetic, kinetic, np.full(10, target), "test")
    figures = temperature_figures(series, 9, Ensemble("nve", "--ensemble", target))
    assert figures["nve_scatter_percent"] == pytest.approx(100 * runs.std() / target, rel=0.01)

    def status(deviation):
        entry = {"temperature_deviation_percent": deviation, "nve_scatter_percent": figures["nve_scatter_percent"]}
        data = {"temperature": {k: {"value": v, "unit": "%"} for k, v in entry.items()}}
        rows = verdict(data, Thresholds(), {"name": "nve", "target_temperature_K": target})["criteria"]
        return next(r["status"] for r in rows if r["figure"] == "temperature_deviation_percent")

    assert status(36.0) == "pass" and status(-47.0) == "fail"  # 2 x 20.4 %: an honest ethanol run, a halved one
    assert np.mean(np.abs(runs / target - 1) > 0.408) < 0.06  # honest runs fail about 5 % of the time
