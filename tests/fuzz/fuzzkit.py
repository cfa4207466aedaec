"""The fuzz sweep's kit: damaged inputs made from bundled data, the case table's row and its checks.

A row (:class:`Case`) names a class of fault, an id, the ``mlffd`` arguments with ``{name}``
placeholders and the exit code a user must get. ``{name}`` is an input from :func:`make_inputs`,
copied into the test's own folder before the call (so no case can damage another's input) and
hashed before and after; ``{out}``, ``{out2}``: paths in that folder that do not exist yet;
``{tmp}``: the folder itself. Every case asserts the exit code, exactly one ``mlffd: error:`` line
on stderr (and nothing else there) when the code is 2, no ``Traceback`` anywhere, and every
staged input byte-identical afterwards.
"""

import hashlib
import json
import re
import shutil
import signal
import string
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

import pytest

#: Classes of fault the sweep counts separately (the summary prints them in this order).
CLASSES = (
    "bad-number",
    "damaged-model",
    "damaged-structure",
    "damaged-data",
    "missing-or-directory",
    "same-path",
    "existing-output",
    "bad-choice",
    "legitimate",
    "api",
    "pair-style",
    "signal",
)

#: Bad values for a number that must be positive and finite (floats) ...
BAD_POSITIVE_FLOATS = {"zero": "0", "negative": "-3", "nan": "nan", "inf": "inf", "minus-inf": "-inf"}
#: ... and for a count that must be a positive integer.
BAD_POSITIVE_INTS = {"zero": "0", "negative": "-2", "huge": "99999999999999999999", "text": "ten"}
#: Bad values of a float that may be zero but must be finite and not negative.
BAD_NON_NEGATIVE_FLOATS = {"negative": "-1", "nan": "nan", "inf": "inf"}
#: Bad values of a fraction (0 to 1).
BAD_FRACTIONS = {"negative": "-0.1", "above-one": "1.5", "nan": "nan", "inf": "inf"}
#: Bad seeds: negative, beyond int64 (OpenMM's seeds, ``mlffd md``, must also fit in 32 bits).
BAD_SEEDS = {"negative": "-1", "beyond-int64": "99999999999999999999999"}

#: Most CPU time (s, all threads of the process) an in-process call may use: a case that starts real
#: work instead of refusing ends here. CPU time, not wall-clock time: a machine loaded by other jobs
#: stretches a legitimate case's wall-clock time, not the work it does.
CASE_CPU_LIMIT_S = 30


@dataclass
class Case:
    """One row of a command's table (see the module docstring)."""

    cls: str
    id: str
    args: list
    code: int = 2
    xfail: str | None = None
    slow: bool = False
    match: str | None = None  # a regular expression the error line must contain
    writes: tuple = ()  # staged inputs the command may legitimately change (a restarted run directory)
    extra: dict = field(default_factory=dict)

    def param(self):
        marks = [pytest.mark.slow] if self.slow else []
        if self.xfail:
            strict = not self.slow  # a slow case's xfail is a timing one: it may pass on an idle machine
            marks.append(pytest.mark.xfail(strict=strict, reason=self.xfail))
        return pytest.param(self, id=f"{self.cls}:{self.id}", marks=marks)


def params(cases: list[Case], xfails: dict[str, str] | None = None, slow: set[str] = frozenset()) -> list:
    """pytest params of ``cases``; ``xfails`` maps ``cls:id`` to the open defect's description."""
    out, seen = [], set()
    for case in cases:
        key = f"{case.cls}:{case.id}"
        assert key not in seen, f"duplicate case {key}"
        seen.add(key)
        if xfails and key in xfails:
            case.xfail = xfails[key]
        if key in slow:
            case.slow = True
        out.append(case.param())
    return out


def sha256(path: Path) -> str:
    if path.is_dir():
        return json.dumps({str(p.relative_to(path)): sha256(p) for p in sorted(path.rglob("*")) if p.is_file()})
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Timeout(Exception):
    pass


def _over_limit(signum, frame):
    raise _Timeout(f"used {CASE_CPU_LIMIT_S} s of CPU time: the input was accepted and real work started")


@contextmanager
def cpu_limit():
    """Raise ``_Timeout`` in the block once the process has used ``CASE_CPU_LIMIT_S`` of CPU time."""
    previous = signal.signal(signal.SIGPROF, _over_limit)
    signal.setitimer(signal.ITIMER_PROF, CASE_CPU_LIMIT_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def placeholders(args: list) -> set[str]:
    names = set()
    for arg in args:
        if isinstance(arg, str):
            names |= {name for _, name, _, _ in string.Formatter().parse(arg) if name}
    return names


def stage(names: set[str], inputs: dict[str, Path], folder: Path) -> dict[str, Path]:
    """Copy the named inputs into ``folder`` (keeping their file names); outputs are fresh paths."""
    staged = {"tmp": folder, "out": folder / "out", "out2": folder / "out2"}
    for name in names - set(staged):
        source = inputs[name]
        target = folder / "in" / name / source.name
        target.parent.mkdir(parents=True)
        if source.is_dir():
            shutil.copytree(source, target)
        elif source.exists():
            shutil.copy2(source, target)
        staged[name] = target
    return staged


#: The error line: ``mlffd: error: ...``, or argparse's ``mlffd COMMAND: error: ...`` after the usage.
ERROR_LINE = re.compile(r"^mlffd( [a-z-]+)*: error: ")


def check_outcome(case: Case, code: int, out: str, err: str) -> None:
    assert "Traceback" not in err and "Traceback" not in out, f"traceback shown to the user:\n{err[-3000:]}"
    assert code == case.code, f"exit code {code}, expected {case.code}\nstdout: {out[-1500:]}\nstderr: {err[-1500:]}"
    if case.code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        errors = [line for line in lines if ERROR_LINE.match(line)]
        # argparse's own refusals (a bad choice, a non-number) print the usage block above their line
        usage = lines[:1] and lines[0].startswith("usage: mlffd")
        assert len(errors) == 1 and (len(lines) == 1 or usage) and errors[0] == lines[-1], (
            f"not one error line:\n{err[-3000:]}"
        )
        if case.match:
            assert re.search(case.match, errors[0]), f"{errors[0]!r} does not say {case.match!r}"


def run_cli_case(case: Case, inputs: dict[str, Path], folder: Path, runner: Callable) -> None:
    """Stage, hash, run ``mlffd`` in this process (under a timeout), check the outcome and the hashes."""
    staged = stage(placeholders(case.args), inputs, folder)
    hashed = {
        name: sha256(path)
        for name, path in staged.items()
        if name not in ("tmp", "out", "out2", *case.writes) and path.exists()
    }
    args = [a.format(**staged) if isinstance(a, str) else str(a) for a in case.args]
    try:
        with cpu_limit():
            code, out, err = runner(*args)
    except _Timeout as exc:
        pytest.fail(str(exc))
    except BaseException as exc:  # anything escaping main() is a traceback for the user
        raise AssertionError(f"exception escaped mlffd: {type(exc).__name__}: {exc}") from exc
    check_outcome(case, code, out, err)
    for name, digest in hashed.items():
        assert sha256(staged[name]) == digest, f"input {name} ({staged[name].name}) was changed"


# -- damaged inputs -------------------------------------------------------------------------------


def _xyz(symbols: list[str], positions, comment: str = "fuzz") -> str:
    lines = [str(len(symbols)), comment]
    lines += [f"{s} {x!r} {y!r} {z!r}" for s, (x, y, z) in zip(symbols, positions, strict=True)]
    return "\n".join(lines) + "\n"


def _read_xyz(path: Path) -> tuple[list[str], list[list[float]]]:
    lines = path.read_text().splitlines()
    n = int(lines[0])
    rows = [line.split() for line in lines[2 : 2 + n]]
    return [r[0] for r in rows], [[float(v) for v in r[1:4]] for r in rows]


def _damaged_checkpoint(source: Path, target: Path, change: Callable[[dict], None]) -> Path:
    payload = torch.load(source, map_location="cpu", weights_only=True)
    change(payload)
    torch.save(payload, target)
    return target


def make_inputs(folder: Path) -> dict[str, Path]:
    """Every input the tables name, made once per session from bundled data."""
    from mlff_distiller.data import bundled_structure, resolve_model
    from mlff_distiller.export import export_lammps, export_openmm

    f: dict[str, Path] = {}
    ckpt = f["ckpt"] = Path(shutil.copy(resolve_model("organic-ultra-tiny"), folder / "student.ckpt"))
    f["ckpt2"] = Path(shutil.copy(resolve_model("organic-tiny"), folder / "other.ckpt"))
    f["ckpt_water"] = Path(shutil.copy(resolve_model("water-standard"), folder / "water.ckpt"))
    data = ckpt.read_bytes()
    (folder / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    f["ckpt_truncated"] = folder / "truncated.ckpt"
    flipped = bytearray(data)
    middle = len(data) // 2
    flipped[middle : middle + 400] = bytes(b ^ 0x5A for b in flipped[middle : middle + 400])
    (folder / "flipped.ckpt").write_bytes(bytes(flipped))
    f["ckpt_flipped"] = folder / "flipped.ckpt"
    (folder / "empty.ckpt").write_bytes(b"")
    f["ckpt_empty"] = folder / "empty.ckpt"
    (folder / "text.ckpt").write_text("this is not a checkpoint\n")
    f["ckpt_text"] = folder / "text.ckpt"

    def first_weight(payload) -> str:
        return next(k for k, v in payload["state_dict"].items() if v.is_floating_point() and v.dim() == 2)

    def nan_weight(p):
        p["state_dict"][first_weight(p)][0, 0] = float("nan")

    def nan_weight_resigned(p):  # a NaN weight with a matching checksum: only a finiteness check catches it
        from mlff_distiller.models.checkpoint import weights_sha256

        nan_weight(p)
        p["weights_sha256"] = weights_sha256(p["state_dict"])

    def inf_weight_resigned(p):
        from mlff_distiller.models.checkpoint import weights_sha256

        p["state_dict"][first_weight(p)][0, 0] = float("inf")
        p["weights_sha256"] = weights_sha256(p["state_dict"])

    def wrong_shape(
        p,
    ):  # in the format before checksums (water-standard's, users' older files): no checksum to catch it
        p.pop("weights_sha256", None)
        key = first_weight(p)
        p["state_dict"][key] = p["state_dict"][key][:, :-1].contiguous()

    def config(key, value):
        def change(p):
            p["config"][key] = value
            if key == "cutoff":
                p["cutoff"] = value

        return change

    def future(p):
        p["format_version"] = 999

    def no_state(p):
        del p["state_dict"]

    changes = {
        "ckpt_nan": nan_weight,
        "ckpt_nan_signed": nan_weight_resigned,
        "ckpt_inf_signed": inf_weight_resigned,
        "ckpt_shape": wrong_shape,
        "ckpt_cutoff_negative": config("cutoff", -1.0),
        "ckpt_cutoff_nan": config("cutoff", float("nan")),
        "ckpt_future": future,
        "ckpt_no_state": no_state,
    }
    for name, change in changes.items():
        f[name] = _damaged_checkpoint(ckpt, folder / f"{name}.ckpt", change)

    f["pt_openmm"] = export_openmm(ckpt, folder / "openmm.pt")
    f["pt_lammps"] = export_lammps(ckpt, folder / "lammps.pt")
    pt = f["pt_openmm"].read_bytes()
    (folder / "truncated.pt").write_bytes(pt[: len(pt) // 2])
    f["pt_truncated"] = folder / "truncated.pt"
    flipped = bytearray(pt)
    flipped[len(pt) // 3 : len(pt) // 3 + 400] = bytes(400)
    (folder / "flipped.pt").write_bytes(bytes(flipped))
    f["pt_flipped"] = folder / "flipped.pt"

    xyz = f["xyz"] = Path(shutil.copy(bundled_structure("ethanol"), folder / "ethanol.xyz"))
    f["water"] = Path(shutil.copy(bundled_structure("water-32"), folder / "water-32.xyz"))
    symbols, positions = _read_xyz(xyz)

    def variant(name: str, syms, pos, text: str | None = None) -> None:
        path = folder / f"{name}.xyz"
        path.write_text(text if text is not None else _xyz(syms, pos))
        f[name] = path

    for tag, value in {"nan": float("nan"), "inf": float("inf"), "huge": 1e30}.items():
        variant(f"xyz_{tag}", symbols, [[value, *positions[0][1:]], *positions[1:]])
    for element in ("X", "Og", "Xx", "U", "Si"):
        variant(f"xyz_{element}", [element, *symbols[1:]], positions)
    variant("xyz_coincident", symbols, [positions[0], positions[0], *positions[2:]])
    variant("xyz_empty", [], [], text="")
    variant("xyz_zero_atoms", [], [], text="0\nnothing\n")
    variant("xyz_truncated", [], [], text="\n".join(xyz.read_text().splitlines()[:5]) + "\n")
    variant("xyz_garbage", [], [], text="\x00\x01 not an xyz file \xff\n" * 3)
    variant("xyz_single", symbols[:1], positions[:1])

    h5 = f["h5"] = Path(shutil.copy(resolve_model("organic-ultra-tiny").parent / "organic-test.h5", folder / "d.h5"))
    raw = h5.read_bytes()
    (folder / "truncated.h5").write_bytes(raw[: len(raw) // 2])
    f["h5_truncated"] = folder / "truncated.h5"
    (folder / "empty.h5").write_bytes(b"")
    f["h5_empty"] = folder / "empty.h5"
    (folder / "text.h5").write_text("not HDF5\n")
    f["h5_text"] = folder / "text.h5"

    (folder / "a-directory").mkdir()
    f["dir"] = folder / "a-directory"
    f["missing"] = folder / "no-such-file.xyz"  # never created
    (folder / "existing.txt").write_text("precious\n")
    f["existing"] = folder / "existing.txt"
    return f
