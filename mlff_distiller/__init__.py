"""mlff-distiller: distilled student force fields as production MD tools.

The public API is re-exported here; the ``mlffd`` command line is a thin layer over it.
"""

from importlib.metadata import PackageNotFoundError, version

import torch  # noqa: F401  (must be imported before openmmtorch anywhere in the package)

from .errors import (
    CheckpointError,
    MLFFDError,
    OverwriteError,
    SimulationError,
    StructureError,
    TrajectoryError,
    UnsupportedElementError,
)
from .models import PRESETS, Student, StudentCalculator, StudentConfig, load_checkpoint, preset, save_checkpoint
from .teachers import Teacher, TeacherError, load_teacher
from .validation import (
    EnergyDrift,
    ForceFidelity,
    Stability,
    StructureComparison,
    Thresholds,
    ValidationReport,
    compare_reports,
    validate,
)

try:
    __version__ = version("mlff-distiller")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# after __version__: these modules record the package version in what they write
from .export import EXPORTERS, export_lammps, export_openmm
from .plugin import MDResult, MDRun, MDSettings, build_system, create_torch_force, structure_to_openmm
from .plugin.consistency import compare_engines
from .distill import Dataset, SamplingSettings, TrainingSettings, distill, sample, train
from .data import bundled_structure, bundled_student

__all__ = [
    "EXPORTERS",
    "MDResult",
    "MDRun",
    "MDSettings",
    "build_system",
    "create_torch_force",
    "compare_engines",
    "export_lammps",
    "export_openmm",
    "structure_to_openmm",
    "PRESETS",
    "CheckpointError",
    "MLFFDError",
    "OverwriteError",
    "SimulationError",
    "StructureError",
    "Student",
    "StudentCalculator",
    "StudentConfig",
    "Teacher",
    "TeacherError",
    "Dataset",
    "SamplingSettings",
    "TrainingSettings",
    "bundled_structure",
    "bundled_student",
    "distill",
    "sample",
    "train",
    "TrajectoryError",
    "UnsupportedElementError",
    "__version__",
    "load_checkpoint",
    "load_teacher",
    "preset",
    "save_checkpoint",
    "EnergyDrift",
    "ForceFidelity",
    "Stability",
    "StructureComparison",
    "Thresholds",
    "ValidationReport",
    "compare_reports",
    "validate",
]
