"""Teachers: any ASE calculator, with built-in GFN2-xTB and SevenNet-0, and a label cache."""

from .cache import LabelCache, configuration_hash
from .registry import DEFAULT_TEACHER, TEACHERS, load_teacher
from .teacher import Teacher, TeacherCalculator, TeacherError

__all__ = [
    "DEFAULT_TEACHER",
    "LabelCache",
    "TEACHERS",
    "Teacher",
    "TeacherCalculator",
    "TeacherError",
    "configuration_hash",
    "load_teacher",
]
