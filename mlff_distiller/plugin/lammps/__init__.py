"""The LAMMPS pair style ``mlffd``: C++ source, its build as a plugin, and helpers to run LAMMPS."""

from .build import PluginBuildError, build_plugin, plugin_path

__all__ = ["PluginBuildError", "build_plugin", "plugin_path"]
