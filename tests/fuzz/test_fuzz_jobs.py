"""mlffd demo, study, bench and lammps: bad numbers and names, damaged saved measurements, outputs."""

import pytest
from fuzzkit import BAD_NON_NEGATIVE_FLOATS, BAD_POSITIVE_FLOATS, BAD_POSITIVE_INTS, Case, params

#: Options every job shares (cli/run_options.py) and their bad values.
RUN_OPTIONS = {
    "--time": BAD_POSITIVE_FLOATS,
    "--timestep": BAD_POSITIVE_FLOATS,
    "--temperature": {**BAD_NON_NEGATIVE_FLOATS, "zero": "0"},
    "--frames": BAD_POSITIVE_INTS,
    "--equilibrate": BAD_NON_NEGATIVE_FLOATS,
    "--reference-budget": BAD_POSITIVE_FLOATS,
}


def demo(*args, output="{out}") -> list:
    return ["demo", "--student", "organic-ultra-tiny", "--system", "ethanol", "-o", output, *args, "--quiet"]


def study(*args, output="{out}") -> list:
    students = [] if "--students" in args else ["--students", "organic-ultra-tiny"]
    systems = [] if "--systems" in args else ["--systems", "ethanol"]
    return ["study", *students, *systems, "-o", output, *args, "--quiet"]


def bench(*args, output="{out}.md") -> list:
    return ["bench", "--quick", "-o", output, *args]


def job_cases() -> list[Case]:
    """Refusals that come before any work starts (a job that accepted a bad number would run for minutes:
    those cases of demo, study and bench are not in the fast sweep yet)."""
    return [
        Case("bad-choice", "demo --system bogus", demo("--system", "bogus")),
        Case("bad-choice", "demo --student bogus", demo("--student", "bogus")),
        Case("bad-choice", "demo --platform Metal", demo("--platform", "Metal")),
        Case("bad-number", "demo --time text", demo("--time", "ten")),
        Case("bad-number", "demo --frames text", demo("--frames", "1.5")),
        Case("bad-choice", "study --precision quad", study("--precision", "quad")),
        Case("bad-number", "study --time text", study("--time", "ten")),
        Case("bad-choice", "bench --precision half", bench("--precision", "half")),
        Case("bad-choice", "bench --platform Metal", bench("--platform", "Metal")),
        Case("bad-number", "bench --rounds text", bench("--rounds", "three")),
        Case("bad-number", "bench --ranks text", bench("--ranks", "two")),
        Case("bad-choice", "lammps unknown subcommand", ["lammps", "bogus"]),
        Case("bad-choice", "unknown command", ["simulate", "{xyz}"]),
        Case("bad-choice", "unknown option", ["info", "{ckpt}", "--bogus"]),
        Case("legitimate", "mlffd --help", ["--help"], code=0),
        Case("legitimate", "mlffd --version", ["--version"], code=0),
    ]


XFAILS: dict[str, str] = {}


@pytest.mark.parametrize("case", params(job_cases(), XFAILS))
def test_jobs(case, cli_case):
    cli_case(case)
