"""Every number an ``mlffd`` command takes has a rule: a bad one is one line on stderr and exit code 2.

The rules live in :mod:`mlff_distiller.inputs`, and the Python API checks the same quantities with
them (MDSettings, TrainingSettings, SamplingSettings, Thresholds): those are tested here too.
"""

import argparse
import math

import pytest

from mlff_distiller import inputs
from mlff_distiller.cli import build_parser
from mlff_distiller.distillation import SamplingSettings, TrainingSettings
from mlff_distiller.errors import InvalidValueError, MLFFDError, SimulationError
from mlff_distiller.plugin.openmm.md_settings import MDSettings
from mlff_distiller.validation.thresholds import Thresholds

#: Values every rule refuses, whatever its range.
NOT_FINITE = ["nan", "inf", "-inf", "1e400", "NaN", "ten", ""]

#: (command and the arguments it needs to get as far as its options, option, bad values).
TABLE = [
    ("md aspirin --model organic-ultra-tiny -o {tmp}/run", "--time", ["0", "-1", *NOT_FINITE]),
    ("md aspirin --model organic-ultra-tiny -o {tmp}/run", "--timestep", ["0", "-0.5", "1e6", *NOT_FINITE]),
    ("md aspirin --model organic-ultra-tiny -o {tmp}/run", "--equilibrate", ["-1", *NOT_FINITE]),
    ("md aspirin --model organic-ultra-tiny -o {tmp}/run", "--temperature", ["-1", *NOT_FINITE]),
    ("md aspirin --model organic-ultra-tiny -o {tmp}/run", "--friction", ["-5", *NOT_FINITE]),
    ("md aspirin --model organic-ultra-tiny -o {tmp}/run", "--seed", ["-1", "99999999999", "2147483648", "1.5"]),
    (
        "md aspirin --model organic-ultra-tiny -o {tmp}/run",
        "--report-interval",
        ["0", "-2", "2.5", "ten", "1" + "0" * 20],
    ),
    ("md aspirin --model organic-ultra-tiny -o {tmp}/run", "--checkpoint-interval", ["0", "-2"]),
    ("md aspirin --model organic-ultra-tiny -o {tmp}/run", "--temperature-limit", ["0", "-3", "nan"]),
    ("md aspirin --model organic-ultra-tiny -o {tmp}/run", "--audit-every", ["-1", "1e3"]),
    ("md aspirin --model organic-ultra-tiny -o {tmp}/run", "--audit-max-rmse", ["0", "-1", "nan"]),
    ("demo", "--timestep", ["0", "nan"]),
    ("demo", "--time", ["0", "inf"]),
    ("demo", "--frames", ["0", "-1"]),
    ("demo", "--reference-budget", ["-1", "nan"]),
    ("study -o {tmp}/study", "--temperature", ["nan", "-10"]),
    ("study -o {tmp}/study", "--equilibrate", ["-1", "inf"]),
    ("distill data.h5 -o {tmp}/s.ckpt", "--batch-size", ["0", "-16", "1.5"]),
    ("distill data.h5 -o {tmp}/s.ckpt", "--epochs", ["0"]),
    ("distill data.h5 -o {tmp}/s.ckpt", "--lr", ["0", "-1e-3", "-.5", "nan", "-nan"]),
    ("distill data.h5 -o {tmp}/s.ckpt", "--energy-weight", ["-1", "inf"]),
    ("distill data.h5 -o {tmp}/s.ckpt", "--val-fraction", ["-0.1", "1", "1.5", "nan"]),
    ("distill data.h5 -o {tmp}/s.ckpt", "--test-fraction", ["1", "nan"]),
    ("distill data.h5 -o {tmp}/s.ckpt", "--patience", ["0"]),
    ("distill data.h5 -o {tmp}/s.ckpt", "--time-limit", ["0", "-5", "inf"]),
    ("distill data.h5 -o {tmp}/s.ckpt", "--seed", ["-1", "99999999999"]),
    ("sample aspirin -o {tmp}/d.h5", "--stride", ["0", "-10"]),
    ("sample aspirin -o {tmp}/d.h5", "--frames", ["0"]),
    ("sample aspirin -o {tmp}/d.h5", "--threads", ["0"]),
    ("sample aspirin -o {tmp}/d.h5", "--temperatures", ["nan", "-300", "0"]),
    ("sample aspirin -o {tmp}/d.h5", "--random-fraction", ["-0.1", "1.5", "nan"]),
    ("sample aspirin -o {tmp}/d.h5", "--normal-mode-fraction", ["2"]),
    ("sample aspirin -o {tmp}/d.h5", "--displacement", ["-0.02", "inf"]),
    ("sample aspirin -o {tmp}/d.h5", "--timestep", ["0"]),
    ("sample aspirin -o {tmp}/d.h5", "--equilibration", ["-1"]),
    ("sample aspirin -o {tmp}/d.h5", "--friction", ["-0.01"]),
    ("check-engines organic-ultra-tiny aspirin", "--tolerance", ["-1", "0", "nan"]),
    ("new -o {tmp}/n.ckpt", "--cutoff", ["0", "-3", "nan", "inf", "1e6"]),
    ("new -o {tmp}/n.ckpt", "--seed", ["-1", "99999999999"]),
    ("validate run -o {tmp}/r", "--frames", ["0"]),
    ("validate run -o {tmp}/r", "--workers", ["0"]),
    ("validate run -o {tmp}/r", "--temperature", ["0", "nan"]),
    ("validate run -o {tmp}/r", "--frame-interval", ["0", "-0.01"]),
    ("validate run -o {tmp}/r", "--warmup", ["-0.1", "1", "nan"]),
    ("validate run -o {tmp}/r", "--reference-time", ["0"]),
    ("validate run -o {tmp}/r", "--reference-budget", ["-1", "0"]),
    ("bench", "--ranks", ["0"]),
    ("bench", "--threads", ["0"]),
    ("bench", "--rounds", ["0"]),
    ("bench", "--block", ["0"]),
    ("bench", "--budget", ["-1"]),
    ("bench", "--teacher-budget", ["nan"]),
    ("bench", "--memory-limit", ["0"]),
    ("bench", "--timestep", ["inf"]),
]


def _cases():
    return [
        pytest.param(head, option, value, id=f"{head.split()[0]} {option} {value or 'empty'}")
        for head, option, values in TABLE
        for value in values
    ]


def one_error_line(result) -> str:
    """The single stderr line of a refused call (exit code 2), with no traceback anywhere."""
    assert "Traceback" not in result.err + result.out
    assert result.code == 2, result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("mlffd") and ": error: " in lines[0]
    return lines[0]


@pytest.mark.parametrize("head, option, value", _cases())
def test_a_bad_number_is_one_line_and_exit_code_2(head, option, value, tmp_path, mlffd):
    args = head.format(tmp=tmp_path).split() + [option, value]
    line = one_error_line(mlffd(*args))
    assert f"argument {option}" in line and f"'{value}'" in line and "give " in line
    assert not any(tmp_path.iterdir())  # nothing was written


def test_every_numeric_option_takes_a_rule():
    """No option of any command takes a bare int or float: each names the rule of its quantity."""

    def parsers(parser):
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from parsers(sub)

    bare = [
        f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"
        for parser in parsers(build_parser())
        for action in parser._actions
        if action.type in (int, float)
    ]
    assert bare == []


def test_the_message_says_what_is_accepted(mlffd, tmp_path):
    line = one_error_line(
        mlffd("md", "aspirin", "--model", "organic-ultra-tiny", "-o", tmp_path / "r", "--seed", "99999999999")
    )
    assert line == (
        "mlffd md: error: argument --seed: '99999999999' is not accepted; "
        "give a whole number (seed) from 0 to 2147483647"
    )
    line = one_error_line(mlffd("new", "-o", tmp_path / "n.ckpt", "--cutoff", "nan"))
    assert "greater than 0" in line and "at most 50" in line


def test_other_usage_errors_are_one_line_too(mlffd, tmp_path):
    assert "invalid choice: 'huge'" in one_error_line(mlffd("new", "--size", "huge", "-o", tmp_path / "n.ckpt"))
    assert "required" in one_error_line(mlffd("new"))
    assert "invalid choice" in one_error_line(mlffd("no-such-command"))


def test_a_time_shorter_than_one_step_is_refused(mlffd, tmp_path):
    """0.0001 ps at 0.5 fs would be 0 steps: refused before anything is built or written."""
    run = tmp_path / "run"
    line = one_error_line(mlffd("md", "aspirin", "--model", "organic-ultra-tiny", "--time", "0.0001", "-o", run))
    assert "one time step" in line and not run.exists()
    line = one_error_line(
        mlffd("md", "aspirin", "--model", "organic-ultra-tiny", "--time", "1", "--equilibrate", "0.0001", "-o", run)
    )
    assert "equilibrate" in line and "one time step" in line


def test_study_names_unknown_students_and_refuses_an_empty_study(mlffd, tmp_path):
    line = one_error_line(mlffd("study", "--students", "bogus", "-o", tmp_path / "s"))
    assert "'bogus'" in line and "organic-standard" in line and "water-standard" in line
    line = one_error_line(mlffd("study", "--systems", "nosuch", "-o", tmp_path / "s"))
    assert "'nosuch'" in line and "aspirin" in line
    line = one_error_line(mlffd("study", "--students", "water-standard", "--systems", "aspirin", "-o", tmp_path / "s"))
    assert "no case" in line
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("command", ["new -o {tmp}/n.ckpt", "distill data.h5 -o {tmp}/s.ckpt"])
def test_elements_are_symbols_of_the_periodic_table(command, mlffd, tmp_path):
    head = command.format(tmp=tmp_path).split()
    for bad in ("Xx", "X", "Q"):
        line = one_error_line(mlffd(*head, "--elements", "H", bad))
        assert f"'{bad}' is not a chemical element" in line and "Og (118)" in line
    assert "more than once" in one_error_line(mlffd(*head, "--elements", "H", "h", "C"))


# -- the rules themselves -----------------------------------------------------------------------------


def test_rules_parse_and_check():
    assert inputs.TIME_PS("2.5") == 2.5 and inputs.SEED("2147483647") == 2**31 - 1 and inputs.STEPS("0") == 0
    assert inputs.SEED.check(7.0, "seed") == 7 and isinstance(inputs.SEED.check(7.0, "seed"), int)
    assert inputs.FRACTION.check(1, "f") == 1.0 and inputs.FRACTION_BELOW_ONE.problem(1.0)
    for value in (math.nan, math.inf, -math.inf, "1", None, True):
        assert inputs.TEMPERATURE_K.problem(value), value
    with pytest.raises(argparse.ArgumentTypeError, match="'1e400' is not accepted"):
        inputs.TIME_PS("1e400")
    with pytest.raises(InvalidValueError, match=r"^timestep = 0\.0 is not accepted; give a finite time step in fs"):
        inputs.TIMESTEP_FS.check(0.0, "timestep")
    assert issubclass(InvalidValueError, MLFFDError) and issubclass(InvalidValueError, ValueError)


# -- the API checks the same quantities ----------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("time", math.inf, "time = inf"),
        ("time", 0.0001, "one time step"),
        ("timestep", 0.0, "timestep = 0.0"),
        ("seed", 99999999999, "seed = 99999999999"),
        ("friction", -5.0, "friction = -5.0"),
        ("temperature", math.nan, "temperature = nan"),
        ("report_interval", 0, "report_interval = 0"),
        ("temperature_limit", 100.0, "above the temperature"),
        ("timestep", "0.5", "timestep = '0.5'"),
        ("report_interval", 10**6, "longer than the run .20000 steps."),
        ("teacher", "gfn2-xtb", "teacher is given for audits, but audit_every is 0"),
        ("audit_max_rmse", 0.5, "audit_max_rmse is given for audits"),
    ],
)
def test_md_settings(field, value, words):
    settings = MDSettings(structure="aspirin", model="organic-ultra-tiny", **{field: value})
    with pytest.raises(SimulationError, match=words):
        settings.check()


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"batch_size": 0}, "batch_size = 0"),
        ({"epochs": -1}, "epochs = -1"),
        ({"lr": math.nan}, "lr = nan"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "leaves no training frames"),
        ({"energy_weight": 0.0, "force_weight": 0.0}, "nothing to learn"),
        ({"seed": -3}, "seed = -3"),
        ({"size": "huge"}, "size must be one of"),
        ({"elements": [1, 0]}, "X .atomic number 0. is not a chemical element"),
        ({"time_limit_minutes": 0}, "time_limit_minutes = 0"),
    ],
)
def test_training_settings(kwargs, words):
    with pytest.raises(InvalidValueError, match=words):
        TrainingSettings(**kwargs)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"stride": 0}, "stride = 0"),
        ({"frames": 0}, "frames = 0"),
        ({"temperatures": [300.0, math.nan]}, r"temperatures\[1\] = nan"),
        ({"temperatures": []}, "non-empty list"),
        ({"random_fraction": 0.6, "normal_mode_fraction": 0.5}, "leaves no MD frames"),
        ({"timestep_fs": -0.5}, "timestep_fs = -0.5"),
        ({"seed": 2**31}, "seed = 2147483648"),
    ],
)
def test_sampling_settings(kwargs, words):
    with pytest.raises(InvalidValueError, match=words):
        SamplingSettings(**kwargs)


def test_thresholds(tmp_path):
    for kwargs, words in (
        ({"min_r2": 5.0}, "min_r2 = 5.0 .* at most 1"),
        ({"min_r2": math.nan}, "min_r2 = nan"),
        ({"max_force_rmse": -0.1}, "max_force_rmse"),
        ({"max_internal_outside_fraction": 1.5}, "fraction from 0 to 1"),
        ({"max_median_angle_deg": 200.0}, "angle in degrees from 0 to 180"),
        ({"max_relative_drift_percent": 0.0}, "greater than 0"),
        ({"min_kinetic_variance_ratio": 3.0}, "above max_kinetic_variance_ratio"),
    ):
        with pytest.raises(InvalidValueError, match=words):
            Thresholds(**kwargs)
    toml = tmp_path / "t.toml"
    toml.write_text("min_r2 = nan\n")
    with pytest.raises(InvalidValueError, match=f"{toml}: min_r2 = nan"):
        Thresholds.from_toml(toml)
    toml.write_text("[thresholds]\nmin_r2 = 5\nmax_force_rmse = 0.3\n")
    with pytest.raises(InvalidValueError, match="min_r2 = 5.0"):
        Thresholds.from_toml(toml)
    assert Thresholds(min_r2=-0.5, max_force_rmse=0.0).min_r2 == -0.5  # reachable lines are fine
