"""Compiling the package's C++ sources against the installed torch, once, into a cache folder.

Two things are built on first use: the fused student kernel (:mod:`mlff_distiller.models.kernel`)
and the LAMMPS pair style (:mod:`mlff_distiller.plugin.lammps.build`). Each goes into a folder of
:func:`cache_root` whose name carries the versions it was built against and a hash of its
source, so an upgrade builds afresh; concurrent builds (``mpirun`` starts several processes at
once) are serialised by a file lock.
"""

import fcntl
import hashlib
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from importlib import util
from pathlib import Path

from .errors import MLFFDError


class BuildError(MLFFDError):
    """A C++ part of the package could not be compiled (missing compiler, headers or libraries)."""


def cache_root() -> Path:
    """``$MLFFD_CACHE_DIR``, or ``mlff-distiller`` in ``$XDG_CACHE_HOME`` (default ``~/.cache``)."""
    root = os.environ.get("MLFFD_CACHE_DIR")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlff-distiller"


def package_dir(name: str, error: type[MLFFDError] = BuildError, install: str = "mlff-distiller") -> Path:
    """Folder of an installed Python package; raises ``error`` saying to install ``install`` when it is missing."""
    spec = util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise error(f"the Python package '{name}' is not installed; install {install}")
    return Path(list(spec.submodule_search_locations)[0])


def cpu_signature() -> str:
    """A short hash of this CPU's model and instruction-set flags (Linux), else of the machine type.

    The C++ parts are compiled for the CPU they run on (:func:`native_flags`), so a cache on a home
    directory shared by different nodes keeps one build per kind of CPU.
    """
    description = platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        description += "".join(sorted({line for line in lines if line.startswith(("model name", "flags"))}))
    except OSError:
        pass
    return hashlib.sha256(description.encode()).hexdigest()[:8]


def native_flags() -> list[str]:
    """Optimisation flags for this CPU: ``-march=native`` (AVX2/FMA make the fused network about
    1.7x faster than baseline x86-64); ``-fopenmp-simd`` lets the marked reductions vectorise and
    starts no threads."""
    return ["-std=c++17", "-O3", "-march=native", "-fopenmp-simd"]


def torch_flags() -> list[str]:
    """Compiler and linker flags for code that includes torch's C++ headers and links libtorch (CPU)."""
    torch_dir = package_dir("torch")
    return [
        "-D_GLIBCXX_USE_CXX11_ABI=1",
        f"-I{torch_dir / 'include'}", f"-I{torch_dir / 'include' / 'torch' / 'csrc' / 'api' / 'include'}",
        f"-L{torch_dir / 'lib'}", f"-Wl,-rpath,{torch_dir / 'lib'}", "-ltorch_cpu", "-lc10",
    ]  # fmt: skip


def build_library(
    target: Path,
    command: Callable[[Path], list[str]],
    what: str,
    error: type[MLFFDError] = BuildError,
    force: bool = False,
    verbose: bool = False,
) -> Path:
    """Compile a shared library into ``target`` unless it exists; returns ``target``.

    Parameters
    ----------
    target : Path
        The ``.so`` to produce; its folder is created and holds the lock file.
    command : callable
        Gives the compiler command line that writes the library to the path it is passed.
    what : str
        What is being built, for error messages ("the LAMMPS plugin").
    error : type
        Exception raised when compilation fails, with the compiler's first error lines.
    force, verbose : bool
        Rebuild even if ``target`` exists; print the compiler command on stderr.
    """
    if target.is_file() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file() and not force:  # another process built it while we waited
            return target
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        line = command(partial)
        if verbose:
            print(" ".join(line), file=sys.stderr)
        try:
            result = subprocess.run(line, capture_output=True, text=True)
        except FileNotFoundError as exc:
            raise error(f"no C++ compiler '{line[0]}' found to build {what}; install g++ or set CXX") from exc
        if result.returncode != 0:
            errors = [
                text for text in result.stderr.splitlines() if "error" in text
            ] or result.stderr.strip().splitlines()
            tail = "\n".join(errors[:15])
            raise error(f"compiling {what} failed:\n{tail}")
        os.replace(partial, target)
    return target
