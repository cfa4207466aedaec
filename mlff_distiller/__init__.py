"""mlff-distiller: distilled student force fields as production MD tools.

The public API is re-exported here; the ``mlffd`` command line is a thin layer over it.
Names are imported from their submodules on first use (PEP 562), so ``import mlff_distiller``
is cheap and loads neither torch nor OpenMM nor MDAnalysis until a name that needs them is used.
It therefore does not import torch either: a script that imports ``openmmtorch`` itself must
``import torch`` first (the package's own OpenMM code does).
"""

import importlib
import importlib.util
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("mlff-distiller")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

#: The submodule (relative to this package) that defines each public name.
_SOURCES: dict[str, str] = {
    **dict.fromkeys(
        [
            "CheckpointError",
            "InvalidValueError",
            "MLFFDError",
            "OverwriteError",
            "SimulationError",
            "StructureError",
            "TrajectoryError",
            "UnsupportedElementError",
        ],
        ".errors",
    ),
    **dict.fromkeys(
        [
            "Committee",
            "FusedStudentForces",
            "PRESETS",
            "Student",
            "StudentCalculator",
            "StudentConfig",
            "force_deviation",
            "load_checkpoint",
            "load_kernel",
            "preset",
            "save_checkpoint",
        ],
        ".models",
    ),
    **dict.fromkeys(["Teacher", "TeacherError", "load_teacher"], ".teachers"),
    **dict.fromkeys(
        [
            "EnergyDrift",
            "ForceFidelity",
            "ModelDeviation",
            "Stability",
            "StructureComparison",
            "Thresholds",
            "ValidationReport",
            "compare_reports",
            "validate",
        ],
        ".validation",
    ),
    **dict.fromkeys(["EXPORTERS", "export_lammps", "export_openmm"], ".export"),
    **dict.fromkeys(
        ["MDResult", "MDRun", "MDSettings", "build_system", "create_torch_force", "structure_to_openmm"],
        ".plugin.openmm",
    ),
    "compare_engines": ".validation.consistency",
    **dict.fromkeys(
        [
            "Dataset",
            "SamplingSettings",
            "TrainingSettings",
            "distill",
            "label_configurations",
            "refine",
            "RefineResult",
            "RefineSettings",
            "sample",
            "train",
        ],
        ".distillation",
    ),
    **dict.fromkeys(["bundled_structure", "bundled_student"], ".data"),
}

__all__ = sorted(_SOURCES) + ["__version__"]


def __getattr__(name: str) -> Any:
    """Import a public name from its submodule on first access and keep it in the package namespace.

    Submodules (``mlff_distiller.models``, ...) are imported on first access too, so that they
    are reachable as attributes after a bare ``import mlff_distiller``.
    """
    if name not in _SOURCES:
        if importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return importlib.import_module(f".{name}", __name__)
    value = getattr(importlib.import_module(_SOURCES[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The names in the namespace and every public name, loaded or not."""
    return sorted(set(globals()) | set(__all__))
