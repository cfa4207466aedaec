"""The fuzz sweep's fixtures (damaged inputs, a short run, its report) and its per-class summary.

Run the sweep: ``OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/fuzz -q`` (add ``-m 'not slow'``
for the fast part); the last lines give the cases per class and how they ended.
"""

import collections
import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fuzzkit import CLASSES, make_inputs, run_cli_case  # noqa: E402
from kit import run_mlffd  # noqa: E402

_OUTCOMES: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


@pytest.fixture(scope="session")
def fuzz_inputs(tmp_path_factory) -> dict[str, Path]:
    """Every damaged and sound input of the tables, plus a short run directory and its report."""
    folder = tmp_path_factory.mktemp("fuzz-inputs")
    inputs = make_inputs(folder)
    run = folder / "run"
    result = run_mlffd(
        "md", inputs["xyz"], "--model", inputs["ckpt"], "--time", "0.02", "--report-interval", "5", "-o", run, "--quiet"
    )
    assert result.code == 0, result.err
    inputs["run"] = run
    report = folder / "report"
    result = run_mlffd("validate", run, "--teacher", "none", "-o", report, "--quiet")
    assert result.code in (0, 1) and (report / "report.json").is_file(), result.err
    inputs["report"] = report
    inputs["report2"] = folder / "report2"
    shutil.copytree(report, inputs["report2"])
    inputs["comparison"] = folder / "comparison"
    result = run_mlffd("compare", report, inputs["report2"], "-o", inputs["comparison"])
    assert result.code == 0, result.err
    for name, damage in {
        "run_bad_settings": lambda d: (d / "settings.json").write_text("{not json"),
        "run_empty_trajectory": lambda d: (d / "trajectory.h5md").write_bytes(b""),
        "run_no_trajectory": lambda d: (d / "trajectory.h5md").unlink(),
        "run_no_checkpoint": lambda d: (d / "checkpoint.chk").unlink(),
        "run_bad_checkpoint": lambda d: (d / "checkpoint.chk").write_bytes(b"\x00" * 64),
        "run_empty_csv": lambda d: (d / "energies.csv").write_bytes(b""),
    }.items():
        copy = folder / name

        shutil.copytree(run, copy)
        damage(copy)
        inputs[name] = copy
    for name, model in {"run_other_model": inputs["ckpt2"], "run_damaged_model": inputs["ckpt_flipped"]}.items():
        copy = folder / name
        shutil.copytree(run, copy)
        settings = json.loads((copy / "settings.json").read_text())
        settings["model"] = str(model)
        (copy / "settings.json").write_text(json.dumps(settings, indent=2))
        inputs[name] = copy
    shutil.copytree(run, folder / "run_no_settings")
    (folder / "run_no_settings" / "settings.json").unlink()
    inputs["run_no_settings"] = folder / "run_no_settings"
    (folder / "traj_only").mkdir()
    for name in ("trajectory.h5md", "energies.csv"):
        shutil.copy(run / name, folder / "traj_only" / name)
    inputs["traj_only"] = folder / "traj_only"
    bad_report = folder / "report_bad"
    shutil.copytree(report, bad_report)
    (bad_report / "report.json").write_text("{truncated")
    inputs["report_bad"] = bad_report
    for name, text in {
        "toml_r2_5": "min_r2 = 5\n",
        "toml_r2_nan": "min_r2 = nan\n",
        "toml_negative": "max_force_rmse = -1.0\n",
        "toml_unknown": "no_such_threshold = 1\n",
        "toml_garbage": "[[[ not toml\n",
        "toml_string": 'min_r2 = "high"\n',
    }.items():
        path = folder / f"{name}.toml"
        path.write_text(text)
        inputs[name] = path
    return inputs


@pytest.fixture
def cli_case(fuzz_inputs, tmp_path):
    """Run one CLI :class:`fuzzkit.Case` in this process and check it."""
    return lambda case: run_cli_case(case, fuzz_inputs, tmp_path, run_mlffd)


@pytest.fixture(autouse=True)
def _fuzz_class(request):
    callspec = getattr(request.node, "callspec", None)
    case = callspec.params.get("case") if callspec else None
    cls = getattr(case, "cls", None) or getattr(request.node.function, "fuzz_class", None)
    count = getattr(request.node.function, "fuzz_cases", 1)
    if cls:
        request.node.user_properties.append(("fuzz_class", cls))
        request.node.user_properties.append(("fuzz_cases", count))
    yield


def pytest_runtest_logreport(report):
    props = dict(report.user_properties)
    cls = props.get("fuzz_class")
    if cls is None:
        return
    count = props.get("fuzz_cases", 1)
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if hasattr(report, "wasxfail"):
            outcome = "xpass" if report.passed else "xfail"
        else:
            outcome = report.outcome
        _OUTCOMES[cls][outcome] += count


def pytest_terminal_summary(terminalreporter):
    if not _OUTCOMES:
        return
    write = terminalreporter.write_line
    write("")
    write("fuzz sweep: cases per class")
    names = ("passed", "xfail", "failed", "skipped", "xpass")
    write(f"{'class':<22}" + "".join(f"{n:>9}" for n in ("total", *names)))
    totals = collections.Counter()
    for cls in [c for c in CLASSES if c in _OUTCOMES] + sorted(set(_OUTCOMES) - set(CLASSES)):
        counts = _OUTCOMES[cls]
        totals.update(counts)
        write(f"{cls:<22}" + f"{sum(counts.values()):>9}" + "".join(f"{counts[n]:>9}" for n in names))
    write(f"{'all':<22}" + f"{sum(totals.values()):>9}" + "".join(f"{totals[n]:>9}" for n in names))
