"""The report, targets and CLI of the benchmark on synthetic measurements (nothing is timed)."""

import json

import pytest

from mlff_distiller.benchmark import BenchmarkPlan, BenchmarkResult, Measurement, check_targets, write_report
from mlff_distiller.benchmark.report import SCALING_PLOT, SPEEDUP_PLOT
from mlff_distiller.benchmark.timing import steps_for


def synthetic_result() -> BenchmarkResult:
    """Fixed timings (s/step) chosen so that every target has a known value."""
    rows = [
        ("aspirin", 21, "teacher", "gfn2-xtb", 1, 0.010),
        ("aspirin", 21, "bare", "ultra-tiny", 1, 0.0010),
        ("aspirin", 21, "openmm", "ultra-tiny", 1, 0.0011),
        ("aspirin", 21, "ase", "ultra-tiny", 1, 0.0033),
        ("water-192", 192, "teacher", "gfn2-xtb", 1, 8.0),
        ("water-192", 192, "openmm", "standard", 1, 0.1),
        ("water-1536", 1536, "openmm", "standard", 1, 1.536),
        ("water-12288", 12288, "openmm", "standard", 1, 2 * 12.288),
        ("water-6144", 6144, "lammps", "standard", 1, 2.0),
        ("water-6144", 6144, "lammps", "standard", 2, 1.0),
    ]
    measurements = [Measurement(s, n, e, m, r, 0.5, [t, t * 1.1, t * 0.9], 3) for s, n, e, m, r, t in rows]
    threaded = [  # (system, atoms, engine, model, s/step on 1 thread, on 2)
        ("aspirin", 21, "bare", "standard", 0.004, 0.0032),
        ("water-1536", 1536, "bare", "standard", 1.5, 0.8),
        ("water-1536", 1536, "ase", "standard", 1.6, 1.2),
    ]
    for s, n, e, m, one, two in threaded:
        measurements += [Measurement(s, n, e, m, 1, 0.5, [t], 1, threads=k) for k, t in ((1, one), (2, two))]
    measurements.append(Measurement("water-1536", 1536, "openmm", "standard", 1, 0.5, [0.9], 1, threads=2))
    for m in measurements:  # 60 GFLOP/s on water-1536 (peak 100: 60 %), 25 on aspirin (25 %)
        if (m.engine, m.model, m.threads) == ("bare", "standard", 1):
            m.flops = (60e9 if m.system == "water-1536" else 25e9) * m.seconds_per_step[0]
            m.bound = f"profiled on {m.system}: arithmetic"
    measurements += [  # reporters: 2.2 and 2.6 % of each block outside the integrator (median 2.4 %)
        Measurement(
            "aspirin", 21, "md", "ultra-tiny", 1, 0.5, [0.00102, 0.00103], 2000, reporting_share=[0.022, 0.026]
        ),
        Measurement("aspirin", 21, "md-no-reporters", "ultra-tiny", 1, 0.5, [0.001, 0.001], 2000),
    ]
    measurements.append(
        Measurement("water-768", 768, "teacher", "gfn2-xtb", status="skipped: too slow (~500 s/step predicted)")
    )
    measurements.append(
        Measurement("water-96", 96, "lammps", "standard", status="skipped: LAMMPS not planned on this system")
    )
    machine = {
        "cpu": "Test CPU",
        "cores": 2,
        "gpu": None,
        "torch_threads": 1,
        "omp_num_threads": "1",
        "load_average_1min": 0.5,
        "date_utc": "2026-01-01 00:00 UTC",
        "versions": {"torch": "2.9.1"},
        "peak_gflops": {"1": 100.0, "2": 190.0},
    }
    plan = BenchmarkPlan(sizes=["standard", "ultra-tiny"], teachers=["gfn2-xtb"], threads=[1, 2])
    from dataclasses import asdict

    return BenchmarkResult(machine, asdict(plan), measurements)


def test_measurement_figures():
    m = Measurement("aspirin", 20, "openmm", "tiny", seconds_per_step=[0.002, 0.001, 0.003], steps=30)
    assert m.ms_per_step == pytest.approx(2.0)
    assert m.us_per_atom_step == pytest.approx(100.0)
    assert m.ns_per_day == pytest.approx(0.5e-6 * 86400 / 0.002)
    skipped = Measurement("water-24576", 24576, "teacher", "gfn2-xtb", status="skipped: too slow")
    assert not skipped.ok and skipped.ms_per_step is None
    assert Measurement.from_dict(m.to_dict()) == m
    assert steps_for(0.01, 1.0, 50) == 50 and steps_for(10.0, 1.0, 50) == 1


def test_targets_are_ratios_of_one_run():
    checks = {c.figure: c for c in check_targets(synthetic_result())}
    values = {figure.split(",")[0]: (c.value, c.verdict) for figure, c in checks.items()}
    assert values["standard student over gfn2-xtb"] == (pytest.approx(80.0), "met")
    assert values["ultra-tiny student over gfn2-xtb"] == (pytest.approx(10 / 1.1), "missed")
    assert values["OpenMM step over bare model energy+forces"] == (pytest.approx(1.1), "met")
    assert values["OpenMM over ASE driving the same student"] == (pytest.approx(3.0), "met")
    assert values["µs/atom/step spread"] == (pytest.approx(2.0), "missed")
    assert values["LAMMPS 2 ranks over 1 rank"] == (pytest.approx(2.0), "met")
    water = checks["2 threads over 1, standard, water-1536 (fused kernel)"]
    assert (water.value, water.verdict) == (pytest.approx(1.536 / 0.9), "met")  # openmm, worse than bare's 1.875
    assert "ase 1.33 (not counted)" in water.detail
    aspirin = checks["2 threads over 1, standard, aspirin (fused kernel)"]
    assert (aspirin.value, aspirin.verdict) == (pytest.approx(0.004 / 0.0032), "missed")
    peak = "fused kernel's GFLOP/s, % of one core's float32 matrix-product peak"
    water, aspirin = checks[f"standard on water-1536: {peak}"], checks[f"standard on aspirin: {peak}"]
    assert (water.value, water.verdict, water.goal_text) == (pytest.approx(60.0), "met", "≥ 50 %")
    assert water.detail.endswith("profile: profiled on water-1536: arithmetic")
    assert (aspirin.value, aspirin.verdict) == (pytest.approx(25.0), "missed")
    overhead = checks["reporting overhead of mlffd md at default intervals, aspirin ultra-tiny, % of ns/day"]
    assert (overhead.value, overhead.verdict, overhead.goal_text) == (pytest.approx(2.4), "met", "≤ 3 %")
    assert overhead.detail.startswith("share of the run's wall time outside its integrator steps, same blocks")
    assert "(rounds 2.2 to 2.6 %)" in overhead.detail and "subject to load" in overhead.detail


def test_ratios_show_their_range_over_the_rounds():
    result = synthetic_result()
    two_ranks = result.find("water-6144", "lammps", "standard", 2)
    two_ranks.seconds_per_step = [1.0, 1.25, 0.9]  # against 2.0, 2.2, 1.8 on one rank: 2.0, 1.76, 2.0
    lammps = {c.figure: c for c in check_targets(result)}["LAMMPS 2 ranks over 1 rank, ≥ 4,000 atoms"]
    assert "(rounds 1.76-2)" in lammps.detail and lammps.value == pytest.approx(2.0 / 1.0)


def test_report_has_tables_plots_and_command(tmp_path):
    written = write_report(
        synthetic_result(), tmp_path / "docs" / "benchmarks.md", tmp_path / "docs" / "img", "mlffd bench -o x.md"
    )
    text = (tmp_path / "docs" / "benchmarks.md").read_text()
    assert "mlffd bench -o x.md" in text and "Test CPU" in text
    assert "| water-192 | 192 | openmm standard | 100 |" in text
    assert "skipped: too slow" in text
    assert "not planned" not in text
    assert "| standard | 1 | 25 (25 %) | 60 (60 %) |" in text  # GFLOP/s (% of the 1-thread peak)
    with_ns, without_ns = (0.5e-6 * 86400 / seconds for seconds in (0.001025, 0.001))  # medians, ns/day
    assert f"| ultra-tiny | 1 | aspirin | 2.4 % | 2.2-2.6 % | {with_ns:.3g} | {without_ns:.3g} |" in text
    assert "ns/day without (separate blocks, subject to load)" in text
    assert "| standard | bare | 2 over 1 | 1.25 | 1.88 |" in text  # thread scaling: aspirin, water-1536
    assert "100 GFLOP/s on 1 thread, 190 GFLOP/s on 2 threads" in text
    assert "- standard, water-1536, 1 thread(s): profiled on water-1536: arithmetic" in text
    assert f"](img/{SPEEDUP_PLOT})" in text and f"](img/{SCALING_PLOT})" in text
    for path in written:
        assert path.stat().st_size > 0
    assert (tmp_path / "docs" / "img" / SCALING_PLOT).read_bytes()[:4] == b"\x89PNG"


def test_cli_renders_saved_measurements_and_refuses_to_overwrite(tmp_path, mlffd):
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps(synthetic_result().to_dict()))
    report = tmp_path / "bench.md"
    assert mlffd("bench", "--from-json", saved, "-o", report).code == 0
    assert report.exists() and (tmp_path / "img" / SPEEDUP_PLOT).exists()
    refused = mlffd("bench", "--from-json", saved, "-o", report)
    assert refused.code == 2 and "--overwrite" in refused.err
    assert mlffd("bench", "--from-json", saved, "-o", report, "--overwrite").code == 0


def test_results_saved_before_the_reporting_share_render(tmp_path):
    """A saved ``md`` measurement without ``reporting_share`` loads with none: its ns/day are shown, its
    share and the target are not measured."""
    saved = synthetic_result().to_dict()
    for m in saved["measurements"]:
        del m["reporting_share"]
    old = BenchmarkResult.from_dict(json.loads(json.dumps(saved)))
    assert old.find("aspirin", "md", "ultra-tiny").reporting_share == []
    write_report(old, tmp_path / "benchmarks.md", tmp_path / "img", "mlffd bench")
    text = (tmp_path / "benchmarks.md").read_text()
    with_ns, without_ns = (0.5e-6 * 86400 / seconds for seconds in (0.001025, 0.001))
    assert f"| ultra-tiny | 1 | aspirin | - | - | {with_ns:.3g} | {without_ns:.3g} |" in text
    overhead = {c.figure: c for c in check_targets(old)}[
        "reporting overhead of mlffd md at default intervals, aspirin ultra-tiny, % of ns/day"
    ]
    assert overhead.verdict == "not measured"
