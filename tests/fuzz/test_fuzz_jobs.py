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
    cases = []
    for option, values in RUN_OPTIONS.items():
        for key, value in values.items():
            cases.append(Case("bad-number", f"demo {option} {key}", demo(option, value)))
            cases.append(Case("bad-number", f"study {option} {key}", study(option, value)))
    cases += [
        Case("bad-choice", "demo --system bogus", demo("--system", "bogus")),
        Case("bad-choice", "demo --student bogus", demo("--student", "bogus")),
        Case("bad-choice", "demo --platform Metal", demo("--platform", "Metal")),
        Case("missing-or-directory", "demo -o a file", demo(output="{existing}")),
        Case("existing-output", "demo -o a folder with files", demo(output="{run}")),
        Case("bad-choice", "study --students bogus", study("--students", "bogus")),
        Case("bad-choice", "study --systems bogus", study("--systems", "bogus")),
        Case("bad-choice", "study --precision quad", study("--precision", "quad")),
        Case("bad-choice", "study --teacher bogus", study("--teacher", "bogus")),
        Case("missing-or-directory", "study -o a file", study(output="{existing}")),
        Case("existing-output", "study -o a run folder", study(output="{run}")),
    ]
    bench_numbers = {
        "--rounds": BAD_POSITIVE_INTS,
        "--threads": BAD_POSITIVE_INTS,
        "--block": BAD_POSITIVE_FLOATS,
        "--budget": BAD_POSITIVE_FLOATS,
        "--teacher-budget": BAD_POSITIVE_FLOATS,
        "--timestep": BAD_POSITIVE_FLOATS,
        "--memory-limit": BAD_POSITIVE_FLOATS,
        "--ranks": {"zero": "0", "negative": "-1", "huge": "100000"},
    }
    cases += [
        Case("bad-number", f"bench {option} {key}", bench(option, value))
        for option, values in bench_numbers.items()
        for key, value in values.items()
    ]
    cases += [
        Case("bad-choice", "bench --sizes huge", bench("--sizes", "huge")),
        Case("bad-choice", "bench --engines gromacs", bench("--engines", "gromacs")),
        Case("bad-choice", "bench --systems bogus", bench("--systems", "bogus")),
        Case("bad-choice", "bench --teachers bogus", bench("--teachers", "bogus")),
        Case("damaged-data", "bench --from-json garbage", bench("--from-json", "{xyz_garbage}")),
        Case("damaged-data", "bench --from-json empty", bench("--from-json", "{xyz_empty}")),
        Case("damaged-data", "bench --from-json a report", bench("--from-json", "{report}/report.json")),
        Case("missing-or-directory", "bench --from-json missing", bench("--from-json", "{missing}")),
        Case("missing-or-directory", "bench --from-json directory", bench("--from-json", "{dir}")),
        Case("missing-or-directory", "bench -o directory", bench(output="{dir}")),
        Case("existing-output", "bench -o existing", bench(output="{existing}")),
        Case(
            "same-path",
            "bench --json the --from-json",
            bench("--from-json", "{existing}", "--json", "{existing}", "--overwrite"),
        ),
        Case("bad-choice", "lammps unknown subcommand", ["lammps", "bogus"]),
        Case("bad-choice", "unknown command", ["simulate", "{xyz}"]),
        Case("bad-choice", "no command", []),
        Case("legitimate", "mlffd --help", ["--help"], code=0),
        Case("legitimate", "mlffd --version", ["--version"], code=0),
    ]
    return cases


XFAILS: dict[str, str] = {}


@pytest.mark.parametrize("case", params(job_cases(), XFAILS))
def test_jobs(case, cli_case):
    cli_case(case)
