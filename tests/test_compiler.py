"""Building the package's C++ parts: cache, lock, and errors a user can act on."""

import pytest

from mlff_distiller.compiler import BuildError, build_library


def _command(source):
    return lambda output: ["g++", "-shared", "-fPIC", str(source), "-o", str(output)]


def test_builds_once_and_reuses_the_library(tmp_path):
    source = tmp_path / "ok.cpp"
    source.write_text('extern "C" int answer() { return 42; }\n')
    target = tmp_path / "cache" / "libok.so"
    assert build_library(target, _command(source), "a test library") == target
    built = target.stat().st_mtime_ns
    source.write_text("this would not compile\n")
    assert build_library(target, _command(source), "a test library") == target  # cached: not rebuilt
    assert target.stat().st_mtime_ns == built
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(".libok")] == []  # no partial files left


def test_compiler_errors_are_reported_in_one_message(tmp_path):
    source = tmp_path / "bad.cpp"
    source.write_text("int f() { return undefined_name; }\n")
    with pytest.raises(BuildError, match="(?s)compiling a test library failed:.*undefined_name"):
        build_library(tmp_path / "libbad.so", _command(source), "a test library")
    assert not (tmp_path / "libbad.so").exists()


def test_missing_compiler(tmp_path):
    with pytest.raises(BuildError, match="no C\\+\\+ compiler"):
        build_library(
            tmp_path / "lib.so", lambda output: [str(tmp_path / "no-such-g++"), str(output)], "a test library"
        )
