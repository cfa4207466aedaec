"""The OpenMM engine: the system builder (``TorchForce``), the MD runner and its reporters, OpenMM-ML."""

from .md import MDResult, MDRun, MDSettings, maxwell_boltzmann_velocities, ns_per_day
from .platform import available_platforms, select_platform
from .reporter import EnergyTable, H5MDTrajectory
from .system import (
    ForceModel,
    OpenMMStructure,
    build_system,
    check_positions,
    create_torch_force,
    load_force_model,
    structure_to_openmm,
)

__all__ = [
    "EnergyTable",
    "ForceModel",
    "H5MDTrajectory",
    "MDResult",
    "MDRun",
    "MDSettings",
    "OpenMMStructure",
    "available_platforms",
    "build_system",
    "check_positions",
    "create_torch_force",
    "load_force_model",
    "maxwell_boltzmann_velocities",
    "ns_per_day",
    "select_platform",
    "structure_to_openmm",
]
