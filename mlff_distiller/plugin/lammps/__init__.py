"""The LAMMPS pair style ``mlffd``: C++ source, its build as a plugin, and helpers to run LAMMPS."""

from .build import PluginBuildError, build_plugin, lammps_environment, lammps_executable, plugin_path
from .single_point import single_point

__all__ = ["PluginBuildError", "build_plugin", "lammps_environment", "lammps_executable", "plugin_path", "single_point"]
