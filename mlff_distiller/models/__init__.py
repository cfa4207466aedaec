"""Student models: the PaiNN network, neighbour search, checkpoints and the ASE calculator."""

from .calculator import StudentCalculator
from .checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from .forces import StudentForces
from .neighbors import all_pairs, cell_list, neighbor_list
from .painn import PaiNN
from .student import PRESETS, Student, StudentConfig, preset

__all__ = [
    "PRESETS",
    "PaiNN",
    "Student",
    "StudentCalculator",
    "StudentConfig",
    "StudentForces",
    "all_pairs",
    "cell_list",
    "load_checkpoint",
    "neighbor_list",
    "preset",
    "read_checkpoint",
    "save_checkpoint",
]
