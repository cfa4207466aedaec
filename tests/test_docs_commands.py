"""Every ``mlffd`` command of README.md and docs/*.md runs as written from a fresh clone.

Each shell block (```bash, ```sh, ```console or unlabelled) is replayed line by line in a scratch
copy of the clone (tracked files only; a fresh clone has nothing else), following its ``cd``:

- every ``mlffd`` line is parsed by the real argument parser, so every command and option shown
  exists and accepts the values shown, and structure and model arguments resolve;
- every file it reads exists: a path of the clone, a bundled name, or an output of an earlier line
  of the same block (an ``mlffd`` output, a dump or log of ``lmp -in FILE``, an output of a
  repository script such as ``label_organic.sh``);
- the quick commands (:data:`QUICK`) run for real there, in order; every other command is named in
  :data:`EXERCISED_BY` with the test that runs it. Together: every documented command is exercised.

Lines in ```text blocks are syntax, with placeholders in capitals, and are not replayed.
"""

import argparse
import itertools
import re
import shlex
import shutil
import string
import subprocess
from pathlib import Path

import pytest

from mlff_distiller.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SHELL = {"", "bash", "sh", "shell", "console"}
#: Commands fast enough (seconds) to run here for real, when every file they read was made for real.
QUICK = {"new", "info", "export"}
#: The test module (under tests/) that runs each command, and a string it runs it with.
EXERCISED_BY = {
    "new": ("cli/test_model_commands.py", '"new"'),
    "info": ("cli/test_model_commands.py", '"info"'),
    "export": ("export/test_openmm_export.py", '"export"'),
    "md": ("plugin/openmm/test_md_run.py", '"md"'),
    "validate": ("validation/test_report.py", '"validate"'),
    "compare": ("validation/test_report.py", '"compare"'),
    "sample": ("distillation/test_sampling.py", '"sample"'),
    "distill": ("distillation/test_training.py", '"distill"'),
    "evaluate": ("distillation/test_training.py", '"evaluate"'),
    "refine": ("distillation/test_refine.py", '"refine"'),
    "check-engines": ("validation/test_check_engines.py", '"check-engines"'),
    "lammps": ("plugin/lammps/test_lammps_cli.py", '"lammps"'),
    "bench": ("benchmark/test_bench_run.py", "run_plan"),
    "study": ("study/test_study_job.py", "run_study"),
    "demo": ("demo/test_demo_job.py", "run_demo"),
}
#: Options whose value the command writes, never reads.
OUTPUTS = {"output", "json", "images", "test_output"}
#: Files a command writes inside its output folder that a later line may read (docs/refine.md).
FOLDER_OUTPUTS = {"refine": ("student.ckpt", "dataset.h5", "heldout.h5")}
#: ``mlffd validate --reference teacher`` names the teacher, not a file.
WORDS = {("reference", "teacher")}


def shell_blocks():
    """(document, block number, text) of every shell block with an ``mlffd`` line."""
    for document in DOCUMENTS:
        for number, (language, text) in enumerate(BLOCK.findall(document.read_text()), start=1):
            if language in SHELL and any(words[:1] == ["mlffd"] for words in block_commands(text)):
                yield document.relative_to(ROOT).as_posix(), number, text


def block_commands(text: str):
    """The commands of a block as word lists: continuation lines joined, comments, ``&&`` chains and
    leading ``NAME=value`` assignments split off, ``{a,b}`` expanded."""
    for line in text.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        for is_separator, group in itertools.groupby(words, lambda word: word == "&&"):
            command = list(group)
            while command and re.fullmatch(r"[A-Z_]+=\S*", command[0]):
                command.pop(0)
            if command and not is_separator:
                yield [expanded for word in command for expanded in expand_braces(word)]


def expand_braces(word: str) -> list:
    """``a/{b,c}.h5`` -> ``["a/b.h5", "a/c.h5"]`` (one group, as the docs use it)."""
    match = re.search(r"\{([^{}]*,[^{}]*)\}", word)
    if not match:
        return [word]
    return [word[: match.start()] + option + word[match.end() :] for option in match.group(1).split(",")]


def sub_parser(argv: list) -> argparse.ArgumentParser:
    """The parser of the (possibly nested) command ``argv`` starts with."""
    parser = build_parser()
    for word in argv:
        choices = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if not choices or word not in choices:
            return parser
        parser = choices[word]
    return parser


def file_arguments(argv: list) -> tuple:
    """The paths ``mlffd ARGV`` reads and writes, from the real parser's ``type=Path`` options."""
    args = build_parser().parse_args(argv)  # resolves structures and models: a missing one raises here
    reads, writes = [], []
    for action in sub_parser(argv)._actions:
        value = getattr(args, action.dest, None)
        if action.type is not Path or value is None:
            continue
        for path in value if isinstance(value, list) else [value]:
            if (action.dest, str(path)) not in WORDS:
                (writes if action.dest in OUTPUTS else reads).append(path)
    return args, reads, writes


def lammps_outputs(words: list, cwd: Path) -> list:
    """The log and the dump files ``lmp -in FILE`` writes (names as its input states them)."""
    script = (cwd / words[words.index("-in") + 1]).read_text()
    log = words[words.index("-log") + 1] if "-log" in words else "log.lammps"
    return [Path(log)] + [Path(name) for name in re.findall(r"^dump\s+\S+\s+\S+\s+\S+\s+\S+\s+(\S+)", script, re.M)]


def script_outputs(script: Path) -> list:
    """The ``-o`` files of a repository shell script, its ``NAME=value`` and ``for NAME in ...`` expanded."""
    text = script.read_text()
    values = dict(re.findall(r"^\s*(\w+)=([^\s;]+)\s*$", text, re.M))
    loops = re.findall(r"for (\w+) in ([^;]+); do", text)
    outputs = []
    for template in re.findall(r"-o \"?([^\"\s]+)\"?", text):
        for name, options in loops or [("", "")]:
            for option in options.split() or [""]:
                path = string.Template(template).safe_substitute(values, **{name: option} if name else {})
                if "$" not in path:
                    outputs.append(Path(path))
    return outputs


def fresh_clone(folder: Path) -> Path:
    """The tracked files of the repository in ``folder``: folders a block may write into are copied,
    the others linked (read-only use)."""
    listing = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    tracked = listing.stdout.split() if listing.returncode == 0 else [p.name for p in ROOT.iterdir()]
    folder.mkdir(parents=True)
    for top in sorted({Path(p).parts[0] for p in tracked} - {".venv"}):
        if top in ("benchmarks", "docs", "examples"):
            shutil.copytree(ROOT / top, folder / top)
        elif (ROOT / top).exists():
            (folder / top).symlink_to(ROOT / top)
    return folder


def place(path: Path, made: set) -> None:
    """An empty stand-in for an output a line would write (a folder when it has no suffix)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix:
        path.touch()
    else:
        path.mkdir()
    made.add(path.resolve())


BLOCKS = list(shell_blocks())


@pytest.mark.parametrize("document, number, text", BLOCKS, ids=[f"{d}-block{n}" for d, n, _ in BLOCKS])
def test_block_runs_from_a_fresh_clone(document, number, text, tmp_path, monkeypatch, mlffd):
    clone = fresh_clone(tmp_path / "clone")
    cwd, stand_ins = clone, set()
    for words in block_commands(text):
        where = f"{document}, block {number}: {shlex.join(words)}"
        if words[0] == "cd":
            cwd = (cwd / words[1]).resolve()
            assert cwd.is_dir(), f"{where}: no such folder"
            continue
        monkeypatch.chdir(cwd)
        if words[0] == "mlffd":
            assert len(words) > 1 and words[1] in EXERCISED_BY, f"{where}: no test named for this command"
            args, reads, writes = file_arguments(words[1:])
            assert hasattr(args, "func"), where
            for path in reads:
                assert path.exists(), f"{where}: {path} does not exist in a fresh clone"
            for path in writes:
                assert clone in (cwd / path).resolve().parents, f"{where}: writes {path} outside the clone's copy"
            if words[1] in QUICK and not any((cwd / p).resolve() in stand_ins for p in reads):
                result = mlffd(*words[1:])
                assert result.code == 0, f"{where}: exit {result.code}\n{result.err}"
            for path in writes:
                place(cwd / path, stand_ins)
                for name in FOLDER_OUTPUTS.get(words[1], ()) if not path.suffix else ():
                    place(cwd / path / name, stand_ins)
        elif "lmp" in words and "-in" in words:
            for path in lammps_outputs(words, cwd):
                place(cwd / path, stand_ins)
        elif words[0].endswith(".sh") and (cwd / words[0]).is_file():
            for path in script_outputs(cwd / words[0]):
                place(cwd / path, stand_ins)


def test_every_command_names_a_test_that_runs_it():
    for command, (module, needle) in EXERCISED_BY.items():
        path = ROOT / "tests" / module
        assert path.is_file() and needle in path.read_text(), f"mlffd {command}: {module} does not run it"


def test_every_document_with_commands_is_replayed():
    documented = {d for d, _, _ in BLOCKS}
    assert {"README.md", "docs/openmm.md", "docs/lammps.md", "docs/validation.md", "docs/students.md"} <= documented
