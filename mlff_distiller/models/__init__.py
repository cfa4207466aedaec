"""Student models: the PaiNN network, neighbour search, checkpoints and the ASE calculator."""

from .calculator import StudentCalculator
from .checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from .fused import FusedStudentForces
from .kernel import load_kernel
from .neighbors import all_pairs, cell_list, neighbor_list
from .painn import PaiNN
from .student import PRESETS, Student, StudentConfig, preset

__all__ = [
    "FusedStudentForces",
    "PRESETS",
    "PaiNN",
    "Student",
    "StudentCalculator",
    "StudentConfig",
    "all_pairs",
    "cell_list",
    "load_checkpoint",
    "load_kernel",
    "neighbor_list",
    "preset",
    "read_checkpoint",
    "save_checkpoint",
]
