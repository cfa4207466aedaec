"""mlffd new, info and export: bad numbers, damaged models and structures, same-path and existing outputs."""

import pytest
from fuzzkit import BAD_POSITIVE_FLOATS, BAD_SEEDS, Case, params

#: Damaged model files every model-reading command must refuse (exit 2).
DAMAGED_CHECKPOINTS = (
    "ckpt_truncated",
    "ckpt_flipped",
    "ckpt_empty",
    "ckpt_text",
    "ckpt_nan",
    "ckpt_nan_signed",
    "ckpt_inf_signed",
    "ckpt_shape",
    "ckpt_cutoff_negative",
    "ckpt_cutoff_nan",
    "ckpt_future",
    "ckpt_no_state",
)
DAMAGED_EXPORTS = ("pt_truncated", "pt_flipped")
DAMAGED_STRUCTURES = (
    "xyz_nan",
    "xyz_inf",
    "xyz_huge",
    "xyz_X",
    "xyz_Og",
    "xyz_Xx",
    "xyz_U",
    "xyz_Si",
    "xyz_coincident",
    "xyz_empty",
    "xyz_zero_atoms",
    "xyz_truncated",
    "xyz_garbage",
)


def new_cases() -> list[Case]:
    cases = [
        Case("bad-number", f"new --cutoff {k}", ["new", "--size", "ultra-tiny", "--cutoff", v, "-o", "{out}"])
        for k, v in BAD_POSITIVE_FLOATS.items()
    ]
    cases += [
        Case("bad-number", "new --cutoff 1e300", ["new", "--size", "ultra-tiny", "--cutoff", "1e300", "-o", "{out}"])
    ]
    cases += [
        Case("bad-number", f"new --seed {k}", ["new", "--size", "ultra-tiny", "--seed", v, "-o", "{out}"])
        for k, v in BAD_SEEDS.items()
    ]
    cases += [
        Case("bad-choice", "new --size huge", ["new", "--size", "huge", "-o", "{out}"]),
        Case(
            "bad-choice", "new --elements Xx", ["new", "--size", "ultra-tiny", "--elements", "H", "Xx", "-o", "{out}"]
        ),
        Case("bad-choice", "new --elements X", ["new", "--size", "ultra-tiny", "--elements", "X", "-o", "{out}"]),
        Case(
            "bad-choice", "new --elements twice", ["new", "--size", "ultra-tiny", "--elements", "H", "H", "-o", "{out}"]
        ),
        Case("existing-output", "new -o existing", ["new", "--size", "ultra-tiny", "-o", "{existing}"]),
        Case("existing-output", "new -o existing checkpoint", ["new", "--size", "ultra-tiny", "-o", "{ckpt}"]),
        Case("missing-or-directory", "new -o directory", ["new", "--size", "ultra-tiny", "-o", "{dir}"]),
        Case(
            "missing-or-directory",
            "new -o directory --overwrite",
            ["new", "--size", "ultra-tiny", "-o", "{dir}", "--overwrite"],
        ),
        Case("missing-or-directory", "new -o under a file", ["new", "--size", "ultra-tiny", "-o", "{existing}/x.ckpt"]),
        Case("legitimate", "new ultra-tiny", ["new", "--size", "ultra-tiny", "-o", "{out}"], code=0),
        Case(
            "legitimate",
            "new --seed 0 --cutoff 4",
            ["new", "--size", "ultra-tiny", "--cutoff", "4", "-o", "{out}"],
            code=0,
        ),
    ]
    return cases


def info_cases() -> list[Case]:
    cases = [
        Case("damaged-model", f"info {name}", ["info", f"{{{name}}}"]) for name in DAMAGED_CHECKPOINTS + DAMAGED_EXPORTS
    ]
    cases += [
        Case("missing-or-directory", "info missing", ["info", "{missing}"]),
        Case("missing-or-directory", "info directory", ["info", "{dir}"]),
        Case("damaged-model", "info a structure", ["info", "{xyz}"]),
        Case("damaged-model", "info a dataset", ["info", "{h5}"]),
        Case("legitimate", "info checkpoint", ["info", "{ckpt}"], code=0),
        Case("legitimate", "info export --json", ["info", "{pt_openmm}", "--json"], code=0),
        Case("legitimate", "info lammps export", ["info", "{pt_lammps}"], code=0),
    ]
    return cases


def export_cases() -> list[Case]:
    cases = [
        Case("damaged-model", f"export {name}", ["export", f"{{{name}}}", "--engine", "lammps", "-o", "{out}.pt"])
        for name in DAMAGED_CHECKPOINTS
    ]
    cases += [
        Case(
            "damaged-model", f"export openmm {name}", ["export", f"{{{name}}}", "--engine", "openmm", "-o", "{out}.pt"]
        )
        for name in ("ckpt_flipped", "ckpt_nan_signed", "ckpt_cutoff_negative")
    ]
    cases += [
        Case("damaged-model", "export an export", ["export", "{pt_openmm}", "--engine", "lammps", "-o", "{out}.pt"])
    ]
    cases += [
        Case(
            "damaged-structure",
            f"export --topology {name}",
            ["export", "{ckpt}", "--engine", "openmm", "--topology", f"{{{name}}}", "-o", "{out}.pt"],
        )
        for name in DAMAGED_STRUCTURES
    ]
    cases += [
        Case("same-path", "export -o input", ["export", "{ckpt}", "--engine", "lammps", "-o", "{ckpt}"]),
        Case(
            "same-path",
            "export -o input --overwrite",
            ["export", "{ckpt}", "--engine", "lammps", "-o", "{ckpt}", "--overwrite"],
        ),
        Case(
            "same-path",
            "export -o topology --overwrite",
            ["export", "{ckpt}", "--engine", "openmm", "--topology", "{xyz}", "-o", "{xyz}", "--overwrite"],
        ),
        Case("existing-output", "export -o existing", ["export", "{ckpt}", "--engine", "lammps", "-o", "{existing}"]),
        Case(
            "existing-output",
            "export -o existing export",
            ["export", "{ckpt}", "--engine", "openmm", "-o", "{pt_openmm}"],
        ),
        Case("missing-or-directory", "export missing", ["export", "{missing}", "--engine", "lammps", "-o", "{out}.pt"]),
        Case("missing-or-directory", "export directory", ["export", "{dir}", "--engine", "lammps", "-o", "{out}.pt"]),
        Case("missing-or-directory", "export -o directory", ["export", "{ckpt}", "--engine", "lammps", "-o", "{dir}"]),
        Case(
            "missing-or-directory",
            "export -o directory --overwrite",
            ["export", "{ckpt}", "--engine", "lammps", "-o", "{dir}", "--overwrite"],
        ),
        Case(
            "missing-or-directory",
            "export -o under a file",
            ["export", "{ckpt}", "--engine", "lammps", "-o", "{existing}/m.pt"],
        ),
        Case(
            "missing-or-directory",
            "export --topology missing",
            ["export", "{ckpt}", "--engine", "openmm", "--topology", "{missing}", "-o", "{out}.pt"],
        ),
        Case(
            "missing-or-directory",
            "export --topology directory",
            ["export", "{ckpt}", "--engine", "openmm", "--topology", "{dir}", "-o", "{out}.pt"],
        ),
        Case("bad-choice", "export --engine gromacs", ["export", "{ckpt}", "--engine", "gromacs", "-o", "{out}.pt"]),
        Case(
            "bad-choice",
            "export --kernel fused lammps",
            ["export", "{ckpt}", "--engine", "lammps", "--kernel", "fused", "-o", "{out}.pt"],
        ),
        Case(
            "bad-choice",
            "export --precision half",
            ["export", "{ckpt}", "--engine", "lammps", "--precision", "half", "-o", "{out}.pt"],
        ),
        Case("legitimate", "export lammps", ["export", "{ckpt}", "--engine", "lammps", "-o", "{out}.pt"], code=0),
        Case(
            "legitimate",
            "export openmm topology",
            ["export", "{ckpt}", "--engine", "openmm", "--topology", "{xyz}", "-o", "{out}.pt"],
            code=0,
        ),
    ]
    return cases


XFAILS: dict[str, str] = {
    "damaged-model:info ckpt_shape": "info: a checkpoint without a recorded checksum (the format before checksums) whose "
    "weight has the wrong shape is described as sound (exit 0); the architecture is not checked against the weights",
}


@pytest.mark.parametrize("case", params(new_cases() + info_cases() + export_cases(), XFAILS))
def test_model_commands(case, cli_case):
    cli_case(case)
