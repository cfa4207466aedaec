"""Student models: the PaiNN network, neighbour search, checkpoints and the ASE calculator."""

from .calculator import StudentCalculator
from .checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from .committee import Committee, force_deviation
from .fused import FusedStudentForces
from .kernel import load_kernel
from .neighbors import all_pairs, cell_list, neighbor_list
from .painn import PaiNN
from .student import PRESETS, Student, StudentConfig, preset

__all__ = [
    "Committee",
    "FusedStudentForces",
    "PRESETS",
    "PaiNN",
    "Student",
    "StudentCalculator",
    "StudentConfig",
    "all_pairs",
    "cell_list",
    "force_deviation",
    "load_checkpoint",
    "load_kernel",
    "neighbor_list",
    "preset",
    "read_checkpoint",
    "save_checkpoint",
]
