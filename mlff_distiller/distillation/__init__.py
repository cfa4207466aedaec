"""Distillation: sampling configurations, labelling them with a teacher, training students."""

from .dataset import Dataset, DatasetError, Frame
from .labelled_files import read_configurations, read_labelled
from .labelling import label_configurations
from .metrics import accuracy, force_metrics
from .pipeline import distill, label_with_student, output_paths
from .refine_loop import RefineResult, refine
from .refine_settings import RefineSettings
from .sampling import SamplingSettings, harmonic_modes, sample
from .training import TrainingResult, TrainingSettings, build_student, evaluate, fit_reference_energies, train

__all__ = [
    "Dataset",
    "DatasetError",
    "Frame",
    "RefineResult",
    "RefineSettings",
    "SamplingSettings",
    "TrainingResult",
    "TrainingSettings",
    "accuracy",
    "build_student",
    "distill",
    "evaluate",
    "fit_reference_energies",
    "force_metrics",
    "harmonic_modes",
    "label_configurations",
    "label_with_student",
    "output_paths",
    "read_configurations",
    "read_labelled",
    "refine",
    "sample",
    "train",
]
