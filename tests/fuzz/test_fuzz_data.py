"""mlffd sample, distill and evaluate: bad numbers, damaged datasets and models, same-path and existing outputs."""

import pytest
from fuzzkit import (
    BAD_FRACTIONS,
    BAD_NON_NEGATIVE_FLOATS,
    BAD_POSITIVE_FLOATS,
    BAD_POSITIVE_INTS,
    BAD_SEEDS,
    Case,
    params,
)
from test_fuzz_models import DAMAGED_CHECKPOINTS

SAMPLE_BASE = {"--frames": "2", "--temperatures": "300", "--equilibration": "1", "--stride": "1"}
DISTILL_BASE = {"--size": "ultra-tiny", "--epochs": "1", "--batch-size": "8"}
DAMAGED_DATASETS = ("h5_truncated", "h5_empty", "h5_text", "ckpt", "xyz")


def with_defaults(head: list, args: tuple, base: dict) -> list:
    defaults = [item for option, value in base.items() if option not in args for item in (option, value)]
    return head + list(args) + defaults + ["--quiet"]


def sample(*args, structure="{xyz}", output="{out}.h5") -> list:
    return with_defaults(["sample", structure, "-o", output], args, SAMPLE_BASE)


def distill(*args, data="{h5}", output="{out}.ckpt") -> list:
    return with_defaults(["distill", data, "-o", output], args, DISTILL_BASE)


def sample_cases() -> list[Case]:
    numbers = {
        "--frames": BAD_POSITIVE_INTS,
        "--threads": BAD_POSITIVE_INTS,
        "--temperatures": {**BAD_POSITIVE_FLOATS},
        "--random-fraction": BAD_FRACTIONS,
        "--normal-mode-fraction": BAD_FRACTIONS,
        "--displacement": BAD_NON_NEGATIVE_FLOATS,
        "--timestep": BAD_POSITIVE_FLOATS,
        "--stride": BAD_POSITIVE_INTS,
        "--equilibration": {"negative": "-1", "huge": "99999999999999999999"},
        "--friction": BAD_NON_NEGATIVE_FLOATS,
        "--seed": BAD_SEEDS,
    }
    cases = [
        Case("bad-number", f"sample {option} {key}", sample(option, value))
        for option, values in numbers.items()
        for key, value in values.items()
    ]
    cases += [
        Case(
            "bad-number",
            "sample fractions above one together",
            sample("--random-fraction", "0.6", "--normal-mode-fraction", "0.6"),
        ),
        Case("damaged-structure", "sample xyz_nan", sample(structure="{xyz_nan}")),
        Case("damaged-structure", "sample xyz_X", sample(structure="{xyz_X}")),
        Case("damaged-structure", "sample xyz_Xx", sample(structure="{xyz_Xx}")),
        Case("damaged-structure", "sample xyz_huge", sample(structure="{xyz_huge}")),
        Case("damaged-structure", "sample xyz_coincident", sample(structure="{xyz_coincident}")),
        Case("damaged-structure", "sample xyz_empty", sample(structure="{xyz_empty}")),
        Case("damaged-structure", "sample xyz_garbage", sample(structure="{xyz_garbage}")),
        Case("damaged-structure", "sample typo file name", sample(structure="aspirn.gro"), match="aspirn.gro"),
        Case("missing-or-directory", "sample structure missing", sample(structure="{missing}")),
        Case("missing-or-directory", "sample structure directory", sample(structure="{dir}")),
        Case("missing-or-directory", "sample -o directory", sample(output="{dir}")),
        Case("missing-or-directory", "sample -o under a file", sample(output="{existing}/d.h5")),
        Case("same-path", "sample -o structure --overwrite", sample("--overwrite", output="{xyz}")),
        Case("existing-output", "sample -o existing", sample(output="{existing}")),
        Case("existing-output", "sample -o existing dataset", sample(output="{h5}")),
        Case("damaged-data", "sample --resume a foreign file", sample("--resume", output="{existing}")),
        Case("damaged-data", "sample --resume a truncated dataset", sample("--resume", output="{h5_truncated}")),
        Case("bad-choice", "sample --teacher bogus", sample("--teacher", "bogus")),
        Case("bad-choice", "sample --teacher module:missing", sample("--teacher", "no_such_module:factory")),
        Case("bad-choice", "sample --resume and --overwrite", sample("--resume", "--overwrite")),
    ]
    return cases


def distill_cases() -> list[Case]:
    numbers = {
        "--epochs": BAD_POSITIVE_INTS,
        "--batch-size": {k: v for k, v in BAD_POSITIVE_INTS.items() if k != "huge"},
        "--lr": BAD_POSITIVE_FLOATS,
        "--time-limit": BAD_POSITIVE_FLOATS,
        "--energy-weight": BAD_NON_NEGATIVE_FLOATS,
        "--force-weight": BAD_NON_NEGATIVE_FLOATS,
        "--angular-weight": BAD_NON_NEGATIVE_FLOATS,
        "--patience": {k: v for k, v in BAD_POSITIVE_INTS.items() if k != "huge"},
        "--seed": BAD_SEEDS,
        "--val-fraction": BAD_FRACTIONS,
        "--test-fraction": BAD_FRACTIONS,
    }
    cases = [
        Case("bad-number", f"distill {option} {key}", distill(option, value))
        for option, values in numbers.items()
        for key, value in values.items()
    ]
    cases += [Case("damaged-data", f"distill {name}", distill(data=f"{{{name}}}")) for name in DAMAGED_DATASETS]
    cases += [
        Case("bad-number", "distill all weights zero", distill("--energy-weight", "0", "--force-weight", "0")),
        Case(
            "bad-number", "distill fractions sum above one", distill("--val-fraction", "0.6", "--test-fraction", "0.5")
        ),
        Case("bad-choice", "distill --size huge", distill("--size", "huge")),
        Case("bad-choice", "distill --elements Xx", distill("--elements", "H", "C", "O", "Xx")),
        Case("bad-choice", "distill --elements missing C", distill("--elements", "H", "O")),
        Case("bad-choice", "distill --dtype half", distill("--dtype", "half")),
        Case("damaged-model", "distill --teacher-student flipped", distill("--teacher-student", "{ckpt_flipped}")),
        Case("damaged-model", "distill --teacher-student nan", distill("--teacher-student", "{ckpt_nan_signed}")),
        Case("missing-or-directory", "distill --teacher-student missing", distill("--teacher-student", "{missing}")),
        Case("missing-or-directory", "distill data missing", distill(data="{missing}")),
        Case("missing-or-directory", "distill data directory", distill(data="{dir}")),
        Case("missing-or-directory", "distill -o directory", distill(output="{dir}")),
        Case("same-path", "distill -o data --overwrite", distill("--overwrite", output="{h5}")),
        Case("same-path", "distill -o data", distill(output="{h5}")),
        Case("same-path", "distill --test-output data --overwrite", distill("--overwrite", "--test-output", "{h5}")),
        Case(
            "same-path",
            "distill -o teacher-student --overwrite",
            distill("--overwrite", "--teacher-student", "{ckpt}", output="{ckpt}"),
        ),
        Case("existing-output", "distill -o existing", distill(output="{existing}")),
        Case("existing-output", "distill -o existing checkpoint", distill(output="{ckpt}")),
    ]
    return cases


def evaluate_cases() -> list[Case]:
    cases = [
        Case("damaged-model", f"evaluate {name}", ["evaluate", f"{{{name}}}", "{h5}"]) for name in DAMAGED_CHECKPOINTS
    ]
    cases += [
        Case("damaged-data", f"evaluate data {name}", ["evaluate", "{ckpt}", f"{{{name}}}"])
        for name in DAMAGED_DATASETS
    ]
    cases += [
        Case("missing-or-directory", "evaluate model missing", ["evaluate", "{missing}", "{h5}"]),
        Case("missing-or-directory", "evaluate data missing", ["evaluate", "{ckpt}", "{missing}"]),
        Case("missing-or-directory", "evaluate data directory", ["evaluate", "{ckpt}", "{dir}"]),
        Case("missing-or-directory", "evaluate --json directory", ["evaluate", "{ckpt}", "{h5}", "--json", "{dir}"]),
        Case(
            "missing-or-directory",
            "evaluate --json under a file",
            ["evaluate", "{ckpt}", "{h5}", "--json", "{existing}/m.json"],
        ),
        Case("same-path", "evaluate --json data", ["evaluate", "{ckpt}", "{h5}", "--json", "{h5}"]),
        Case(
            "same-path",
            "evaluate --json data --overwrite",
            ["evaluate", "{ckpt}", "{h5}", "--json", "{h5}", "--overwrite"],
        ),
        Case(
            "same-path",
            "evaluate --json model --overwrite",
            ["evaluate", "{ckpt}", "{h5}", "--json", "{ckpt}", "--overwrite"],
        ),
        Case("existing-output", "evaluate --json existing", ["evaluate", "{ckpt}", "{h5}", "--json", "{existing}"]),
        Case("bad-choice", "evaluate elements outside the model", ["evaluate", "{ckpt_water}", "{h5}"]),
        Case("legitimate", "evaluate", ["evaluate", "{ckpt}", "{h5}", "--json", "{out}.json"], code=0),
    ]
    return cases


XFAILS: dict[str, str] = {}
#: sample --equilibration 99999999999999999999 is sometimes refused, sometimes still running at the case
#: timeout (20 s) on a loaded machine: slow, and a non-strict xfail until it is refused before any work.
SLOW = {"bad-number:sample --equilibration huge"}


@pytest.mark.parametrize("case", params(sample_cases() + distill_cases() + evaluate_cases(), XFAILS, SLOW))
def test_data_commands(case, cli_case):
    cli_case(case)
