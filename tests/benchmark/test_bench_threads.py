"""``mlffd bench`` with SevenNet-0, mlffd md with and without reporters and two thread counts on a tiny
configuration: the report's ratios, GFLOP/s and overheads are computed here again from the medians in its
JSON; results saved before threads were recorded render."""

import json
import statistics
import warnings
from pathlib import Path

import torch

import pytest

from mlff_distiller.benchmark import benchmark_system
from mlff_distiller.benchmark.contenders import benchmark_student
from mlff_distiller.benchmark.flops import step_flops
from mlff_distiller.benchmark.suite import MD_BLOCK_STEPS
from mlff_distiller.plugin.openmm import MDSettings
from mlff_distiller.teachers import load_teacher

#: The report prints 3 significant digits: half a unit of the third, relative.
PRINTED_3G = 5e-3
SAVED_RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results.json"
#: Fields a results file written before thread counts, GFLOP/s and reporting shares lacks.
NEWER_FIELDS = ("threads", "flops", "bound", "reporting_share")


def section_table(text: str, heading: str) -> list[dict[str, str]]:
    """The rows of the table under the Markdown heading ``heading``, as {column header: cell}."""
    body = text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in body.splitlines() if line.startswith("|")]
    return [dict(zip(rows[0], row, strict=True)) for row in rows[2:]]


def median_ms(saved: dict, system: str, engine: str, model: str, threads: int) -> float:
    """Median over blocks of the saved seconds per step of one contender, in ms."""
    (row,) = [
        m
        for m in saved["measurements"]
        if (m["system"], m["engine"], m["model"], m.get("threads", 1)) == (system, engine, model, threads)
    ]
    return 1e3 * statistics.median(row["seconds_per_step"])


def number(cell: str) -> float:
    return float(cell.replace(",", ""))


def test_bench_runs_sevenn_at_two_thread_counts(tmp_path, mlffd):
    pytest.importorskip("sevenn")
    report, saved = tmp_path / "bench.md", tmp_path / "results.json"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = mlffd(
            "bench", "--quick", "--systems", "aspirin", "--teachers", "sevenn-0", "--threads", "1", "2",
            "--engines", "bare", "openmm", "ase", "md", "md-no-reporters", "teacher", "--rounds", "1",
            "--block", "0.05", "--budget", "600", "--teacher-budget", "30", "--json", saved, "-o", report,
        )  # fmt: skip
        load_teacher("sevenn-0")  # outside the bench, SevenNet warns that no tensor-product accelerator is enabled
    assert run.code == 0, run.err
    accelerator = [w for w in caught if "tensor product accelerator" in str(w.message)]
    assert len(accelerator) == 1  # the direct load only: the bench built SevenNet-0 twice, silenced
    data = json.loads(saved.read_text())
    measured = {(m["engine"], m["model"], m["threads"]): m["status"] for m in data["measurements"]}
    students = [(engine, "ultra-tiny") for engine in ("bare", "openmm", "ase", "md", "md-no-reporters")]
    engines = students + [("teacher", "sevenn-0")]
    assert measured == {(e, m, t): "ok" for e, m in engines for t in (1, 2)}
    text = report.read_text()

    ratios = {
        (r["student"], r["engine"], r["threads"]): number(r["aspirin"]) for r in section_table(text, "## × sevenn-0")
    }
    for engine in ("bare", "openmm", "ase"):
        for threads in (1, 2):
            expected = median_ms(data, "aspirin", "teacher", "sevenn-0", threads)
            expected /= median_ms(data, "aspirin", engine, "ultra-tiny", threads)
            assert ratios["ultra-tiny", engine, str(threads)] == pytest.approx(expected, rel=PRINTED_3G)

    scaling = {(r["model"], r["engine"]): number(r["aspirin"]) for r in section_table(text, "## Threads")}
    assert set(scaling) == {(model, engine) for engine, model in engines}
    for engine, model in engines:
        expected = median_ms(data, "aspirin", engine, model, 1) / median_ms(data, "aspirin", engine, model, 2)
        assert scaling[model, engine] == pytest.approx(expected, rel=PRINTED_3G)

    cost = {(r["student"], r["threads"], r["system"]): r for r in section_table(text, "## Reporting cost")}
    assert set(cost) == {("ultra-tiny", str(threads), "aspirin") for threads in (1, 2)}
    for threads in (1, 2):
        row = cost["ultra-tiny", str(threads), "aspirin"]
        (shares,) = [
            m["reporting_share"] for m in data["measurements"] if (m["engine"], m["threads"]) == ("md", threads)
        ]
        assert len(shares) == 1 and 0 < shares[0] < 1  # one round
        assert row["reporting share (median)"] == f"{100 * shares[0]:.2g} %"
        for engine, column in (("md", "ns/day with reporters"), ("md-no-reporters", "ns/day without")):
            ns_per_day = (
                data["plan"]["timestep_fs"]
                * 1e-6
                * 86400
                / (median_ms(data, "aspirin", engine, "ultra-tiny", threads) * 1e-3)
            )
            (cell,) = [value for header, value in row.items() if header.startswith(column)]
            assert number(cell) == pytest.approx(ns_per_day, rel=PRINTED_3G)

    counted = step_flops(benchmark_student("ultra-tiny", torch.float32, molecule=True), benchmark_system("aspirin"))
    rates = {r["threads"]: r["aspirin"] for r in section_table(text, "## How close to the machine")}
    assert number(rates["MFLOP/step"]) == pytest.approx(counted.total / 1e6, rel=PRINTED_3G)
    for threads in (1, 2):
        rate = counted.total / (median_ms(data, "aspirin", "bare", "ultra-tiny", threads) * 1e-3) / 1e9
        percent = 100 * rate / data["machine"]["peak_gflops"][str(threads)]
        assert rates[str(threads)] == f"{rate:.3g} ({percent:.0f} %)"

    bounds = {m["threads"]: m["bound"] for m in data["measurements"] if m["engine"] == "bare"}
    assert bounds[1].startswith("step ") and bounds[2] is None  # profiled at the fewest threads
    assert f"- ultra-tiny, aspirin, 1 thread(s): {bounds[1]}" in text

    rows = {r["contender"]: r for r in section_table(text, "## All measurements")}
    expected = median_ms(data, "aspirin", "teacher", "sevenn-0", 2) / median_ms(
        data, "aspirin", "openmm", "ultra-tiny", 2
    )
    assert number(rows["openmm ultra-tiny (2 threads)"]["× sevenn-0"]) == pytest.approx(expected, rel=PRINTED_3G)
    assert "| threads | each contender at 1 and 2" in text


def old_results(path: Path) -> dict:
    """The shipped results as a file written before thread counts: 1-thread contenders only, no newer fields."""
    saved = json.loads(SAVED_RESULTS.read_text())
    saved["measurements"] = [
        {key: value for key, value in m.items() if key not in NEWER_FIELDS}
        for m in saved["measurements"]
        if m.get("threads", 1) == 1
    ]
    saved["plan"]["threads"] = 1
    path.write_text(json.dumps(saved))
    return saved


def test_results_saved_before_threads_still_render(tmp_path, mlffd):
    saved = old_results(tmp_path / "old.json")
    report = tmp_path / "old.md"
    assert mlffd("bench", "--from-json", tmp_path / "old.json", "-o", report).code == 0
    text = report.read_text()
    assert "threads) |" not in text and "## Threads" not in text  # no contender on 2 threads, no scaling table
    assert "| threads | each contender at 1 (" in text
    gfn2 = {(r["student"], r["engine"], r["threads"]): r for r in section_table(text, "## × gfn2-xtb")}
    expected = median_ms(saved, "water-192", "teacher", "gfn2-xtb", 1)
    expected /= median_ms(saved, "water-192", "openmm", "standard", 1)
    assert number(gfn2["standard", "openmm", "1"]["water-192"]) == pytest.approx(expected, rel=PRINTED_3G)


def test_md_blocks_hold_whole_checkpoint_intervals():
    assert MD_BLOCK_STEPS % MDSettings.checkpoint_interval == 0
