"""Distillation: sampling configurations, labelling them with a teacher, training students."""

from .dataset import Dataset, DatasetError, Frame
from .sampling import SamplingSettings, harmonic_modes, sample

__all__ = ["Dataset", "DatasetError", "Frame", "SamplingSettings", "harmonic_modes", "sample"]
