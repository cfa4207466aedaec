"""mlffd validate, compare and check-engines: bad numbers, damaged runs, reports and models, outputs."""

import pytest
from fuzzkit import BAD_FRACTIONS, BAD_NON_NEGATIVE_FLOATS, BAD_POSITIVE_FLOATS, BAD_POSITIVE_INTS, Case, params
from test_fuzz_models import DAMAGED_CHECKPOINTS, DAMAGED_EXPORTS, DAMAGED_STRUCTURES


def validate(*args, run="{run}", output="{out}") -> list:
    teacher = [] if "--teacher" in args else ["--teacher", "none"]
    return ["validate", run, "-o", output, *teacher, *args, "--quiet"]


def validate_cases() -> list[Case]:
    numbers = {
        # more frames or workers than the run has frames are capped, not refused
        "--frames": {k: v for k, v in BAD_POSITIVE_INTS.items() if k != "huge"},
        "--workers": {k: v for k, v in BAD_POSITIVE_INTS.items() if k != "huge"},
        "--temperature": {**BAD_NON_NEGATIVE_FLOATS, "zero": "0"},
        "--warmup": BAD_FRACTIONS,
        "--frame-interval": BAD_POSITIVE_FLOATS,
        "--reference-time": BAD_POSITIVE_FLOATS,
        "--reference-budget": BAD_POSITIVE_FLOATS,
    }
    cases = [
        Case("bad-number", f"validate {option} {key}", validate(option, value))
        for option, values in numbers.items()
        for key, value in values.items()
    ]
    runs = ("run_bad_settings", "run_empty_trajectory", "run_no_trajectory", "run_empty_csv")
    cases += [Case("damaged-data", f"validate {name}", validate(run=f"{{{name}}}")) for name in runs]
    cases += [
        Case("damaged-data", f"validate --thresholds {name}", validate("--thresholds", f"{{{name}}}"))
        for name in ("toml_r2_5", "toml_r2_nan", "toml_negative", "toml_unknown", "toml_garbage", "toml_string")
    ]
    cases += [
        Case("damaged-model", f"validate --model {name}", validate("--select", "all", "--model", f"{{{name}}}"))
        for name in ("ckpt_flipped", "ckpt_truncated", "ckpt_nan_signed", "ckpt_cutoff_negative")
    ]
    cases += [
        Case("damaged-data", "validate a structure as trajectory", validate(run="{xyz_garbage}", output="{out}")),
        Case("damaged-data", "validate --energies garbage", validate("--energies", "{xyz_garbage}")),
        Case("damaged-data", "validate --energies empty", validate("--energies", "{xyz_empty}")),
        Case("damaged-data", "validate --top garbage", validate("--top", "{xyz_garbage}")),
        Case("damaged-data", "validate --reference garbage", validate("--reference", "{xyz_garbage}")),
        Case("bad-choice", "validate --select syntax", validate("--select", "name ((")),
        Case("bad-choice", "validate --select nothing", validate("--select", "name ZZZZ")),
        Case("bad-choice", "validate --teacher bogus", validate("--teacher", "bogus")),
        Case("bad-choice", "validate --units cgs", validate("--units", "cgs")),
        Case("bad-choice", "validate --ensemble npt2", validate("--ensemble", "npt2")),
        Case("missing-or-directory", "validate run missing", validate(run="{missing}")),
        Case("missing-or-directory", "validate empty folder", validate(run="{dir}")),
        Case("missing-or-directory", "validate --top missing", validate("--top", "{missing}")),
        Case("missing-or-directory", "validate --energies missing", validate("--energies", "{missing}")),
        Case("missing-or-directory", "validate --energies directory", validate("--energies", "{dir}")),
        Case("missing-or-directory", "validate --thresholds missing", validate("--thresholds", "{missing}")),
        Case("missing-or-directory", "validate --thresholds directory", validate("--thresholds", "{dir}")),
        Case("missing-or-directory", "validate --model missing", validate("--model", "{missing}")),
        Case("missing-or-directory", "validate -o a file", validate(output="{existing}")),
        Case("missing-or-directory", "validate -o under a file", validate(output="{existing}/r")),
        Case("same-path", "validate -o the run --overwrite", validate("--overwrite", output="{run}")),
        Case("same-path", "validate -o the run", validate(output="{run}")),
        Case("existing-output", "validate -o an existing report", validate(output="{report}")),
        Case("legitimate", "validate --teacher none", validate(), code=1),
        Case(
            "legitimate",
            "validate --overwrite a report",
            validate("--overwrite", output="{report}"),
            code=1,
            writes=("report",),
        ),
    ]
    return cases


def compare_cases() -> list[Case]:
    return [
        Case("damaged-data", "compare a damaged report", ["compare", "{report}", "{report_bad}", "-o", "{out}"]),
        Case("damaged-data", "compare a run, not a report", ["compare", "{report}", "{run}", "-o", "{out}"]),
        Case("missing-or-directory", "compare report missing", ["compare", "{report}", "{missing}", "-o", "{out}"]),
        Case("missing-or-directory", "compare an empty folder", ["compare", "{report}", "{dir}", "-o", "{out}"]),
        Case("missing-or-directory", "compare a file", ["compare", "{report}", "{existing}", "-o", "{out}"]),
        Case("missing-or-directory", "compare -o a file", ["compare", "{report}", "{report2}", "-o", "{existing}"]),
        Case(
            "same-path",
            "compare -o a report --overwrite",
            ["compare", "{report}", "{report2}", "-o", "{report}", "--overwrite"],
        ),
        Case("same-path", "compare -o a report", ["compare", "{report}", "{report2}", "-o", "{report}"]),
        Case(
            "existing-output",
            "compare -o existing comparison",
            ["compare", "{report}", "{report2}", "-o", "{comparison}"],
        ),
        Case("legitimate", "compare two reports", ["compare", "{report}", "{report2}", "-o", "{out}"], code=0),
    ]


def check_engines(*args, model="{ckpt}", structure="{xyz}") -> list:
    engines = [] if "--engines" in args else ["--engines", "ase"]
    return ["check-engines", model, structure, *engines, *args]


def check_engines_cases() -> list[Case]:
    cases = [
        Case("bad-number", f"check-engines --tolerance {key}", check_engines("--tolerance", value))
        for key, value in BAD_POSITIVE_FLOATS.items()
    ]
    cases += [
        Case("damaged-model", f"check-engines {name}", check_engines(model=f"{{{name}}}"))
        for name in DAMAGED_CHECKPOINTS + DAMAGED_EXPORTS
    ]
    cases += [
        Case("damaged-structure", f"check-engines {name}", check_engines(structure=f"{{{name}}}"))
        for name in DAMAGED_STRUCTURES
    ]
    cases += [
        Case(
            "damaged-model",
            "check-engines --checkpoint flipped",
            check_engines(
                "--checkpoint",
                "{ckpt_flipped}",
                model="{pt_openmm}",
            ),
        ),
        Case("bad-choice", "check-engines export left out", check_engines("--engines", "ase", model="{pt_lammps}")),
        Case("bad-choice", "check-engines --engines gromacs", check_engines("--engines", "gromacs")),
        Case("missing-or-directory", "check-engines model missing", check_engines(model="{missing}")),
        Case("missing-or-directory", "check-engines model directory", check_engines(model="{dir}")),
        Case("missing-or-directory", "check-engines structure directory", check_engines(structure="{dir}")),
        Case("legitimate", "check-engines ase", check_engines(), code=0),
        Case("legitimate", "check-engines water box", check_engines(structure="{water}", model="{ckpt_water}"), code=0),
    ]
    return cases


XFAILS: dict[str, str] = {}


@pytest.mark.parametrize("case", params(validate_cases() + compare_cases() + check_engines_cases(), XFAILS))
def test_validation_commands(case, cli_case):
    cli_case(case)
