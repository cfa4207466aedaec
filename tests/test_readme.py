"""The README's snippets cannot rot: Python blocks run, and every ``make`` line names a real target.

Python blocks (```python) are executed in order, in one namespace, in a temporary folder. The
``mlffd`` lines of the README and docs are replayed by tests/test_docs_commands.py.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(language: str):
    return [body for lang, body in BLOCK.findall(README) if lang == language]


def command_lines(body: str):
    for raw in body.splitlines():
        line = raw.split(" #")[0].strip()
        for part in line.split("&&"):
            words = part.split()
            while words and re.match(r"^[A-Z_]+=", words[0]):  # environment assignments
                words.pop(0)
            if words:
                yield " ".join(words)


def test_readme_has_the_two_commands_on_its_first_screen():
    first_screen = "\n".join(README.splitlines()[:25])
    assert "make demo" in first_screen and "make test" in first_screen


def test_python_snippets_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for body in blocks("python"):
        exec(compile(body, "README.md", "exec"), namespace)


def test_make_lines_name_real_targets():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, re.M))
    for body in blocks("bash"):
        for line in command_lines(body):
            if line.startswith("make "):
                assert line.split()[1] in targets, line
