"""Choosing the OpenMM platform and its properties."""

from typing import Dict, List, Tuple

import openmm
import torch

from ..errors import SimulationError

#: Platforms in the order ``"auto"`` tries them (fastest first).
PLATFORM_PREFERENCE = ("CUDA", "OpenCL", "CPU", "Reference")
#: OpenMM precision modes; ``double`` also makes a checkpoint-built student compute in float64.
PRECISIONS = ("single", "mixed", "double")


def available_platforms() -> List[str]:
    """Names of the OpenMM platforms that loaded on this machine."""
    return [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]


def select_platform(name: str = "auto", precision: str = "mixed") -> Tuple[openmm.Platform, Dict[str, str]]:
    """The OpenMM platform called ``name`` (or the fastest available for ``"auto"``) and its properties.

    Parameters
    ----------
    name : str
        ``"auto"``, ``"CUDA"``, ``"OpenCL"``, ``"CPU"`` or ``"Reference"``.
    precision : str
        ``"single"``, ``"mixed"`` or ``"double"``; sets the ``Precision`` property of CUDA and
        OpenCL. CPU and Reference have no such property (Reference always computes in double);
        CPU gets ``Threads`` equal to torch's thread count.

    Raises
    ------
    SimulationError
        If the platform did not load here (e.g. CUDA without a GPU or without the cuda12 extras).
    """
    if precision not in PRECISIONS:
        raise SimulationError(f"unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}")
    available = available_platforms()
    if name == "auto":
        name = next(p for p in PLATFORM_PREFERENCE if p in available)
    if name not in available:
        hint = (
            "; CUDA needs an NVIDIA GPU and `pip install 'mlff-distiller[cuda12]'`" if name == "CUDA" else ""
        )
        raise SimulationError(f"OpenMM platform '{name}' is not available here (available: {', '.join(available)}){hint}")
    properties = {"Precision": precision} if name in ("CUDA", "OpenCL") else {}
    if name == "CPU":  # share torch's thread budget (OMP_NUM_THREADS) instead of one OpenMM thread per core
        properties["Threads"] = str(torch.get_num_threads())
    return openmm.Platform.getPlatformByName(name), properties
