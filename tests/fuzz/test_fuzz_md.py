"""mlffd md: bad numbers, damaged models and structures, run directories, restarts."""

import pytest
from fuzzkit import (
    BAD_NON_NEGATIVE_FLOATS,
    BAD_POSITIVE_FLOATS,
    BAD_POSITIVE_INTS,
    BAD_SEEDS,
    Case,
    params,
)
from test_fuzz_models import DAMAGED_CHECKPOINTS, DAMAGED_EXPORTS, DAMAGED_STRUCTURES

#: A short, sound run: every option a case does not set itself.
BASE = {"--time": "0.005", "--report-interval": "5"}


def md(*args, structure="{xyz}", model="{ckpt}", output="{out}") -> list:
    head = ["md"] + ([structure] if structure else []) + (["--model", model] if model else [])
    defaults = [item for option, value in BASE.items() if option not in args for item in (option, value)]
    return head + (["-o", output] if output else []) + list(args) + defaults + ["--quiet"]


def md_cases() -> list[Case]:
    numbers = {
        "--timestep": {**BAD_POSITIVE_FLOATS, "huge": "1e6"},
        "--time": {k: v for k, v in BAD_POSITIVE_FLOATS.items()} | {"below-one-step": "0.0001"},
        "--temperature": BAD_NON_NEGATIVE_FLOATS,
        "--friction": BAD_NON_NEGATIVE_FLOATS,
        "--equilibrate": BAD_NON_NEGATIVE_FLOATS,
        "--report-interval": BAD_POSITIVE_INTS,
        "--checkpoint-interval": BAD_POSITIVE_INTS,
        "--seed": {**BAD_SEEDS, "beyond-int32": "99999999999"},
        "--temperature-limit": BAD_POSITIVE_FLOATS,
        "--audit-max-rmse": BAD_POSITIVE_FLOATS,
    }
    cases = []
    for option, values in numbers.items():
        for key, value in values.items():
            args = [option, value]
            if option == "--friction":
                args = ["--ensemble", "nvt", *args]
            if option == "--audit-max-rmse":
                args = ["--audit-every", "5", "--teacher", "gfn2-xtb", *args]
            cases.append(Case("bad-number", f"md {option} {key}", md(*args)))
    cases += [
        Case("bad-number", f"md --audit-every {k}", md("--audit-every", v, "--teacher", "gfn2-xtb"))
        for k, v in BAD_POSITIVE_INTS.items()
    ]
    cases += [
        Case("damaged-model", f"md --model {name}", md(model=f"{{{name}}}"))
        for name in DAMAGED_CHECKPOINTS + DAMAGED_EXPORTS + ("pt_lammps",)
    ]
    cases += [Case("damaged-structure", f"md {name}", md(structure=f"{{{name}}}")) for name in DAMAGED_STRUCTURES]
    cases += [
        Case("damaged-structure", "md not-a-smiles typo", md(structure="aspirn.gro"), match="aspirn.gro"),
        Case("damaged-structure", "md bad smiles", md(structure="C1CC(")),
        Case("legitimate", "md single atom", md(structure="{xyz_single}"), code=0),
        Case("missing-or-directory", "md structure missing", md(structure="{missing}")),
        Case("missing-or-directory", "md structure directory", md(structure="{dir}")),
        Case("missing-or-directory", "md model missing", md(model="{missing}")),
        Case("missing-or-directory", "md model directory", md(model="{dir}")),
        Case("missing-or-directory", "md -o a file", md(output="{existing}")),
        Case("missing-or-directory", "md -o under a file", md(output="{existing}/run")),
        Case("missing-or-directory", "md no -o", md(output=None)),
        Case("missing-or-directory", "md no model", md(model=None)),
        Case("same-path", "md -o structure", md(output="{xyz}", structure="{xyz}")),
        Case("same-path", "md -o structure --overwrite", md("--overwrite", output="{xyz}", structure="{xyz}")),
        Case("existing-output", "md -o finished run", md(output="{run}")),
        Case("existing-output", "md -o run without settings", md(output="{run_no_settings}")),
        Case("existing-output", "md -o folder with a trajectory", md(output="{traj_only}")),
        Case("bad-choice", "md --ensemble npt", md("--ensemble", "npt")),
        Case("bad-choice", "md --platform Metal", md("--platform", "Metal")),
        Case("bad-choice", "md --precision quad", md("--precision", "quad")),
        Case("bad-choice", "md --kernel gpu", md("--kernel", "gpu")),
        Case("bad-choice", "md --teacher bogus audits", md("--audit-every", "5", "--teacher", "bogus")),
        Case("bad-choice", "md --audit-every without teacher", md("--audit-every", "5")),
        Case("bad-choice", "md --audit-every not a multiple", md("--audit-every", "7", "--teacher", "gfn2-xtb")),
        Case("bad-choice", "md element outside the model", md(structure="{xyz_Si}")),
        Case("legitimate", "md nve", md(), code=0),
        Case("legitimate", "md nvt friction 0.5", md("--ensemble", "nvt", "--friction", "0.5"), code=0),
        Case("legitimate", "md --seed 0 --temperature 0", md("--seed", "0", "--temperature", "0"), code=0),
        Case("legitimate", "md existing --overwrite", md("--overwrite", output="{run}"), code=0, writes=("run",)),
    ]
    restart = ["md", "--time", "0.03", "--quiet", "--restart"]
    cases += [
        Case("damaged-data", f"md --restart {name}", restart + [f"{{{name}}}"])
        for name in (
            "run_bad_settings",
            "run_empty_trajectory",
            "run_no_trajectory",
            "run_no_checkpoint",
            "run_bad_checkpoint",
        )
    ]
    cases += [
        Case("missing-or-directory", "md --restart missing", restart + ["{missing}"]),
        Case("missing-or-directory", "md --restart a file", restart + ["{existing}"]),
        Case("missing-or-directory", "md --restart empty folder", restart + ["{dir}"]),
        Case("damaged-model", "md --restart model replaced", restart + ["{run_other_model}"]),
        Case("damaged-model", "md --restart model damaged", restart + ["{run_damaged_model}"]),
        Case("bad-choice", "md --restart with --model", restart + ["{run}", "--model", "{ckpt2}"]),
        Case("bad-number", "md --restart --time nan", ["md", "--time", "nan", "--quiet", "--restart", "{run}"]),
        Case("bad-number", "md --restart --time -1", ["md", "--time", "-1", "--quiet", "--restart", "{run}"]),
        Case("legitimate", "md --restart longer", restart + ["{run}"], code=0, writes=("run",)),
    ]
    return cases


XFAILS: dict[str, str] = {}


@pytest.mark.parametrize("case", params(md_cases(), XFAILS))
def test_md(case, cli_case):
    cli_case(case)
