"""benchmarks/gpu_check.py on the CPU, on a tiny configuration its companion prepared: it needs only
torch (it never imports mlff_distiller), and it agrees with the prepared reference values."""

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "benchmarks" / "gpu_check.py"
PREPARE = ROOT / "benchmarks" / "gpu_check_prepare.py"


def run(*args, cwd: Path):
    return subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=cwd, timeout=600,
    )  # fmt: skip


def test_the_check_imports_nothing_but_torch_numpy_and_the_standard_library():
    imported = set()
    for node in ast.walk(ast.parse(CHECK.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= {"argparse", "json", "sys", "time", "pathlib", "typing", "numpy", "torch"}, imported


def test_prepare_then_check_on_the_cpu(tmp_path):
    prepared = run(PREPARE, tmp_path / "files", "--water-atoms", "96", cwd=tmp_path)
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "files").iterdir()) == [
        "aspirin.npz", "aspirin.pt", "manifest.json", "water-96.npz", "water-96.pt",
    ]  # fmt: skip
    checked = run(CHECK, tmp_path / "files", "--device", "cpu", "--steps", "2", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr[-3000:]
    lines = checked.stdout.splitlines()
    assert [line.split(":")[0].strip() for line in lines[1:3]] == ["aspirin", "water-96"]
    assert all("(ok, tolerance 5e-03)" in line and "ms/step" in line for line in lines[1:3]), checked.stdout
    assert "mlff_distiller imported: False" in checked.stdout
    strict = run(
        CHECK,
        tmp_path / "files",
        "--device",
        "cpu",
        "--steps",
        "1",
        "--only",
        "aspirin",
        "--tolerance",
        "1e-12",
        cwd=tmp_path,
    )
    assert (
        strict.returncode == 1 and "FAILED" in strict.stdout
    )  # a float32 file is not float64-exact: the check can fail
