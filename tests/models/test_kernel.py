"""The fused kernel's build: cached per torch version, source and CPU; without a compiler, a clear error
and the portable path."""

import os
import subprocess
import sys

from mlff_distiller.compiler import cpu_signature
from mlff_distiller.models.kernel import SOURCE, library_path


def test_library_path_names_torch_source_and_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFFD_CACHE_DIR", str(tmp_path))
    path = library_path()
    assert path.parent.parent == tmp_path
    assert "torch" in path.parent.name and path.parent.name.endswith(f"-cpu{cpu_signature()}")
    assert SOURCE.is_file()


def test_without_a_compiler_auto_falls_back_to_portable(tmp_path):
    """A fresh process with no usable compiler and an empty cache: 'fused' is a one-line error, 'auto' warns
    and uses the portable kernel, and an MD run still works."""
    script = (
        "import warnings\n"
        "from mlff_distiller.models.kernel import KernelBuildError, load_kernel, resolve_kernel\n"
        "try:\n"
        "    load_kernel()\n"
        "except KernelBuildError as exc:\n"
        "    print('error:', str(exc).splitlines()[0])\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    print('auto:', resolve_kernel('auto'))\n"
        "print('warning:', caught[0].message)\n"
    )
    env = {**os.environ, "MLFFD_CACHE_DIR": str(tmp_path), "CXX": str(tmp_path / "no-such-g++"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "error: no C++ compiler" in result.stdout
    assert "auto: portable" in result.stdout
    assert "warning: using the portable (slower) CPU kernel" in result.stdout
