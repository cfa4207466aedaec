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

try:
    __version__ = version("mlff-distiller")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
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
    "TrajectoryError",
    "UnsupportedElementError",
    "__version__",
    "load_checkpoint",
    "load_teacher",
    "preset",
    "save_checkpoint",
]
