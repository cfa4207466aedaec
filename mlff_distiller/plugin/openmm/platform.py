"""Choosing the OpenMM platform and its properties."""

import torch

import openmm

from ...errors import SimulationError

#: Platforms in the order ``"auto"`` tries them (fastest first).
PLATFORM_PREFERENCE = ("CUDA", "OpenCL", "CPU", "Reference")
#: The same for a System whose only forces are the student's TorchForce (and a CMMotionRemover).
#: The CPU platform's thread pool synchronises several times per step (about 0.2 ms per step
#: measured on 21 atoms with no force at all, against 1 µs for Reference) and has nothing to
#: accelerate there: the model runs in torch either way, and the Reference platform's
#: double-precision integrator costs microseconds.
MODEL_ONLY_PREFERENCE = ("CUDA", "OpenCL", "Reference", "CPU")
#: OpenMM precision modes; ``double`` also makes a checkpoint-built student compute in float64.
PRECISIONS = ("single", "mixed", "double")


def available_platforms() -> list[str]:
    """Names of the OpenMM platforms that loaded on this machine."""
    return [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]


def select_platform(
    name: str = "auto", precision: str = "mixed", model_only: bool = False, threads: int | None = None
) -> tuple[openmm.Platform, dict[str, str]]:
    """The OpenMM platform called ``name`` (or the fastest available for ``"auto"``) and its properties.

    Parameters
    ----------
    name : str
        ``"auto"``, ``"CUDA"``, ``"OpenCL"``, ``"CPU"`` or ``"Reference"``.
    precision : str
        ``"single"``, ``"mixed"`` or ``"double"``; sets the ``Precision`` property of CUDA and
        OpenCL. CPU and Reference have no such property (Reference always integrates in double);
        CPU gets ``Threads`` equal to ``threads``, or torch's thread count when None.
    model_only : bool
        The System's only forces are the student's (as :func:`build_system` makes them): without
        a GPU, ``"auto"`` then picks Reference over CPU (see :data:`MODEL_ONLY_PREFERENCE`).
    threads : int, optional
        Threads of the CPU platform (default: torch's thread count).

    Raises
    ------
    SimulationError
        If the platform did not load here (e.g. CUDA without a GPU or without the cuda12 extras).
    """
    if precision not in PRECISIONS:
        raise SimulationError(f"unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}")
    available = available_platforms()
    if name == "auto":
        name = next(p for p in (MODEL_ONLY_PREFERENCE if model_only else PLATFORM_PREFERENCE) if p in available)
    if name not in available:
        hint = "; CUDA needs an NVIDIA GPU and `pip install 'mlff-distiller[cuda12]'`" if name == "CUDA" else ""
        raise SimulationError(
            f"OpenMM platform '{name}' is not available here (available: {', '.join(available)}){hint}"
        )
    properties = {"Precision": precision} if name in ("CUDA", "OpenCL") else {}
    if name == "CPU":  # share torch's thread budget (OMP_NUM_THREADS) instead of one OpenMM thread per core
        properties["Threads"] = str(threads or torch.get_num_threads())
    return openmm.Platform.getPlatformByName(name), properties
