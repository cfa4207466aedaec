"""The fused C++ kernel (``torch.ops.mlffd.painn_forces``, ``painn_all_pairs_forces``), compiled on first use.

The network is written once in C++, in headers shared with the LAMMPS pair style: ``painn.h``
(layers forward, radial basis and envelope) and ``painn_reverse.h`` (their reverse pass),
``weights.h`` (the named weights and their checks; the Python side is
:func:`~mlff_distiller.models.kernel.weights.kernel_weights`), ``gemm.h`` (small matrix
products), ``driver.h`` (the loop over layers) and ``threads.h`` (how the work is split over
threads).

:func:`load_kernel` compiles ``painn_forces.cpp`` (about 20 s, once per torch version and
source) into the cache folder of :mod:`mlff_distiller.compiler` and registers the operator with
torch. A TorchScript file that calls it (``mlffd export --kernel fused``) can only be loaded
after that: ``mlffd`` and :mod:`mlff_distiller.plugin` do it for you; a plain script calls
``mlff_distiller.load_kernel()`` before ``TorchForce``/``torch.jit.load``.

Threads: both operators take a ``threads`` argument and split the network's per-atom and per-edge
work over that many threads: the calling thread and workers it keeps, which spin briefly and then
sleep between calls (0: torch's intra-op thread count, ``torch.get_num_threads()``). A given thread
count gives the same numbers on every call; another count sums a few terms in another order
(relative differences of order 1e-13 in float64, 1e-5 in float32). :func:`default_threads` is
what the package uses when no count is given.

Timing: ``torch.ops.mlffd.phase_seconds()`` returns, for the last call of either operator on the
calling thread, the seconds (float64) spent reading the weights and checking the inputs, finding
the pairs, on the edges' geometry, forward, reverse, and summing the forces
(:func:`mlff_distiller.benchmark.flops.profile_kernel` reads it).
"""

import hashlib
import os
import sys
import warnings
from importlib import metadata
from pathlib import Path

from ...compiler import BuildError, build_library, cache_root, cpu_signature, native_flags, torch_flags
from ...inputs import MAX_THREADS, THREADS

#: The C++ source of the kernel, shipped as package data, and the headers it shares with the
#: LAMMPS pair style (the network, its weights, its small matrix products, the driver), all in
#: this folder.
INCLUDE_DIR = Path(__file__).parent
SOURCE = INCLUDE_DIR / "painn_forces.cpp"
HEADERS = tuple(sorted(INCLUDE_DIR.glob("*.h")))
LIBRARY_NAME = "libmlffd_kernel.so"
#: How an exported model computes forces on CPU: TorchScript operations that run wherever
#: torch does, or the fused C++ kernel of this package.
KERNELS = ("portable", "fused")


class KernelBuildError(BuildError):
    """The fused kernel could not be compiled (no C++ compiler, or torch without its headers)."""


def library_path() -> Path:
    """Where the compiled kernel lives: one folder per torch version, source and CPU."""
    source_hash = hashlib.sha256(b"".join(path.read_bytes() for path in (SOURCE, *HEADERS))).hexdigest()[:12]
    folder = f"kernel-torch{metadata.version('torch')}-{source_hash}-cpu{cpu_signature()}"
    return cache_root() / folder / LIBRARY_NAME


def compile_command(output: Path) -> list[str]:
    """The g++ command line that builds the kernel into ``output``, for this CPU (see
    :func:`~mlff_distiller.compiler.native_flags`)."""
    compiler = os.environ.get("CXX", "g++")
    return [compiler, *native_flags(), "-fPIC", "-shared", str(SOURCE), "-o", str(output), *torch_flags()]


def build_kernel(force: bool = False, verbose: bool = False) -> Path:
    """Compile the kernel unless a current build exists; returns the path of the ``.so``."""
    return build_library(library_path(), compile_command, "the fused kernel", KernelBuildError, force, verbose)


def load_kernel() -> None:
    """Build the kernel if needed and register its operators (``torch.ops.mlffd``) in this process.

    Raises
    ------
    KernelBuildError
        When the kernel cannot be compiled.
    """
    import torch

    if kernel_loaded():
        return
    if not library_path().is_file():
        print(
            f"mlff-distiller: compiling the fused CPU kernel (once, about 20 s) into {library_path().parent}",
            file=sys.stderr,
        )
    torch.ops.load_library(str(build_kernel()))


def resolve_kernel(kernel: str) -> str:
    """The kernel to use: ``"auto"`` is ``"fused"`` where the kernel builds and loads, else
    ``"portable"`` (with a warning saying why); other names are returned as they are."""
    if kernel not in (*KERNELS, "auto"):
        raise ValueError(f"unknown kernel '{kernel}'; choose one of auto, {', '.join(KERNELS)}")
    if kernel != "auto":
        return kernel
    try:
        load_kernel()
    except KernelBuildError as exc:
        warnings.warn(f"using the portable (slower) CPU kernel: {exc}", stacklevel=2)
        return "portable"
    return "fused"


def kernel_loaded() -> bool:
    """Whether the kernel's operators are registered in this process."""
    import torch

    return hasattr(torch.ops.mlffd, "painn_all_pairs_forces")


def default_threads() -> int:
    """The threads the kernel uses when none are given: ``OMP_NUM_THREADS`` when it is set (its
    first entry), else the cores this process may run on (``os.sched_getaffinity``)."""
    text = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if text.isdigit() and 0 < int(text) <= MAX_THREADS:
        return int(text)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cores, MAX_THREADS)


def resolve_threads(threads: int | None) -> int:
    """``threads`` checked by the rule :data:`~mlff_distiller.inputs.THREADS` (a whole number from 1 to
    :data:`~mlff_distiller.inputs.MAX_THREADS`), or :func:`default_threads` for None.

    Raises
    ------
    InvalidValueError
        For anything else (0, negative, fractional, too many).
    """
    return default_threads() if threads is None else THREADS.check(threads, "threads")
