"""The LAMMPS pair style ``mlffd``: C++ source, its build as a plugin, and helpers to run LAMMPS."""

from .build import PluginBuildError, build_and_locate, build_plugin, lammps_environment, lammps_executable
from .single_point import single_point

__all__ = [
    "PluginBuildError",
    "build_and_locate",
    "build_plugin",
    "lammps_environment",
    "lammps_executable",
    "single_point",
]
