"""How close the fused kernel comes to the machine: floating-point operations of a step, and peaks.

:func:`step_flops_from_counts` counts the floating-point operations of one energy-and-forces
evaluation by the fused C++ kernel (``mlff_distiller/models/kernel``: ``painn.h``,
``painn_reverse.h``, ``painn_forces.cpp``) from the architecture and the numbers of atoms and
edges, and :func:`step_bytes_from_counts` the bytes its loops and products read and write;
:func:`step_flops` counts the edges of a structure as the kernel finds them.
:func:`measure_peak_gflops` and :func:`measure_copy_bandwidth` measure what one core can do (a large
single-precision matrix product, a large copy), so that a step's achieved GFLOP/s and bytes per
second can be read as fractions of the machine. :func:`profile_kernel` times the steps of the
module OpenMM runs and where they go (the kernel's ``torch.ops.mlffd.phase_seconds``), and
:func:`bound_summary` says in one line what bounds them.

>>> profile = profile_kernel(student, atoms)
>>> print(f"{profile.fraction_of_peak:.0%} of peak;", bound_summary(profile))
"""

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ase import Atoms

from ..models import Student, StudentConfig

#: The kernel keeps each layer's filters from forward to reverse when all of them fit in this many
#: bytes (``set_edges`` in painn.h); otherwise the reverse pass computes them again.
KEPT_FILTER_BYTES = 8 << 20

#: Operations counted for one call of an element-wise function (each as written in painn.h):
#: sigmoid = exp, add, divide; silu = sigmoid and a product; its slope = sigmoid and four more.
SILU = 4
SILU_SLOPE = 7
#: The cosine envelope and its slope at one distance (division, two products with the distance,
#: cosine, sine, five more), and one sine basis function, its slope and their products with the
#: envelope (sine, cosine, two divisions, seven more).
ENVELOPE = 9
BASIS = 11


@dataclass
class StepFlops:
    """Floating-point operations of one energy-and-forces evaluation (a multiply and an add count
    separately; a fused multiply-add counts 2).

    Attributes
    ----------
    forward : float
        Energies: edge geometry and radial features, every layer's messages and update, the
        readout's energy.
    reverse : float
        Forces: the readout's gradient, every layer's reverse pass, the edge gradients and their
        sum into forces.
    matmul : float
        The part of ``forward + reverse`` in dense matrix products (2 m n k each).
    """

    forward: float
    reverse: float
    matmul: float

    @property
    def total(self) -> float:
        """Operations of the whole evaluation, forward and reverse."""
        return self.forward + self.reverse

    @property
    def elementwise(self) -> float:
        """Operations outside dense matrix products: per-edge and per-atom loops."""
        return self.total - self.matmul


def step_flops_from_counts(
    config: StudentConfig, n_atoms: int, n_edges: int, paired: bool = True, itemsize: int = 4
) -> StepFlops:
    """Floating-point operations of one evaluation by the fused kernel, on one thread.

    Counted as the kernel computes them (painn.h, painn_reverse.h, painn_forces.cpp): every matrix
    product as 2 m n k (its bias or accumulated initial value free, the zero lanes its own loops
    pad narrow panels with not counted), and every arithmetic operation of the per-edge and
    per-atom loops once per iteration, as written (a product the source repeats in an inner loop
    counts each time). Square roots, divisions, exponentials, sines and cosines count 1 each;
    copies, fills, negations and index arithmetic count 0. Not counted: the first layer's context,
    which the kernel computes once per species and keeps between calls; the neighbour search; the
    sums of per-thread partial buffers (none on one thread).

    Parameters
    ----------
    config : StudentConfig
        The architecture: F ``features``, R ``n_rbf``, L ``layers`` (the readout has F // 2
        hidden features).
    n_atoms : int
        Atoms N, all of them receivers of edges.
    n_edges : int
        Directed edges E (each neighbour pair within the cutoff twice, once in each direction).
    paired : bool
        Whether the edges come in pairs, edge k + E / 2 being edge k reversed, as the kernel's own
        neighbour search makes them: the two share their radial features and filters, computed
        once per pair (E / 2 rows); otherwise once per edge (E rows).
    itemsize : int
        Bytes per number (4: float32, 8: float64); decides whether the filters are kept from
        forward to reverse or computed twice.

    Returns
    -------
    StepFlops
    """
    f, r1, layers, h = config.features, config.n_rbf + 1, config.layers, config.features // 2
    n, e = n_atoms, n_edges
    pairs = e // 2 if paired else 0
    rows = e - pairs  # distinct distances: radial features and filters are computed per row
    kept = rows * 3 * f * layers * itemsize <= KEPT_FILTER_BYTES
    filters = 2 * rows * 3 * f * r1  # one layer's (rows x R + 1) (R + 1 x 3F) product

    # forward
    geometry = e * (6 + 3) + rows * (ENVELOPE + BASIS * config.n_rbf)  # distance, unit; radial
    context_mm = 2 * n * f * f + 2 * n * 3 * f * f  # layers after the first
    context_ew = n * f * SILU
    update_mm = 2 * (2 * 3 * n * f * f) + 2 * n * 2 * f * f + 2 * n * 3 * f * f  # mix_u, mix_v; gate
    update_ew = n * f * (13 + SILU + 9)  # norm and dot; gate's silu; new s and v
    # per edge: the scalar message; the vector messages (the first layer's input v is zero)
    messages_first = e * (2 * f + f + 6 * f)
    messages = e * (2 * f + 2 * f + 12 * f)
    readout_mm = 2 * n * f * h
    readout_ew = n * (h * (SILU + 2) + 2)  # silu, weight, sum; energy scale and reference
    forward_mm = layers * (filters + update_mm) + (layers - 1) * context_mm + readout_mm
    forward_ew = (
        geometry
        + layers * update_ew
        + (layers - 1) * context_ew
        + messages_first
        + (layers - 1) * messages
        + readout_ew
    )

    # reverse
    readout_back_mm = 2 * n * h * f
    readout_back_ew = n * h * (SILU_SLOPE + 2)  # slope, weight, energy scale
    update_back_mm = 2 * n * 3 * f * f + 2 * n * f * 2 * f + 2 * (2 * 3 * n * f * f)  # gate_out, gate_in; mixes
    update_back_ew = n * f * (7 + SILU_SLOPE + 1 + 21)  # gate gradients; silu slope; u, v_v, s1 gradients
    context_back_mm = 2 * n * f * 3 * f + 2 * n * f * f
    context_back_ew = n * f * (SILU_SLOPE + 1)
    filter_back_mm = filters * (1 if kept else 2)  # d E / d radial, and the filters again unless kept
    # per edge: the messages again, the unit vector's gradient and the filter's (scalar and
    # vector-scalar thirds); in layers after the first also the vector-vector third, and the
    # gradients of the neighbour's vectors and context
    edge_back_first = e * (f + 6 * f + 2 * f + 7 * f + 3)
    edge_back = e * (2 * f + 6 * f + 10 * f + 6 * f + 6 * f + 6 * f + 3)
    edge_gradients = rows * 2 * r1 + e * (5 + 15) + e * 6  # distance, unit gradients; forces
    reverse_mm = readout_back_mm + layers * (update_back_mm + filter_back_mm) + (layers - 1) * context_back_mm
    reverse_ew = (
        readout_back_ew
        + layers * update_back_ew
        + (layers - 1) * context_back_ew
        + edge_back_first
        + (layers - 1) * edge_back
        + edge_gradients
    )
    return StepFlops(
        forward=float(forward_mm + forward_ew),
        reverse=float(reverse_mm + reverse_ew),
        matmul=float(forward_mm + reverse_mm),
    )


def count_edges(student: Student, atoms: Atoms) -> int:
    """Directed edges (both directions of every pair, periodic images included) closer than the
    student's cutoff in ``atoms``, found by the student's own neighbour search
    (:func:`~mlff_distiller.models.neighbors.neighbor_list`)."""
    dtype = torch.float64
    positions = torch.tensor(atoms.positions, dtype=dtype)
    cell = torch.tensor(atoms.cell.array, dtype=dtype)
    pbc = torch.tensor(atoms.pbc, dtype=torch.bool)
    with torch.no_grad():
        src, _, _ = student.edges(positions, cell, pbc)
    return int(src.shape[0])


def step_flops(student: Student, atoms: Atoms) -> StepFlops:
    """Floating-point operations of one evaluation of ``student`` on ``atoms`` by the fused kernel.

    The edges are counted by :func:`count_edges` and come in pairs, as the kernel makes them; the
    student's dtype decides whether filters are kept (see :func:`step_flops_from_counts`).
    """
    itemsize = next(student.parameters()).element_size()
    return step_flops_from_counts(student.config, len(atoms), count_edges(student, atoms), True, itemsize)


def _best_rate(work: float, run, seconds: float) -> float:
    """``work`` divided by the fastest of repeated calls of ``run`` (after one warm-up), repeated
    for about ``seconds`` (at least three times)."""
    run()
    best = math.inf
    deadline = time.perf_counter() + seconds
    repeats = 0
    while repeats < 3 or time.perf_counter() < deadline:
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
        repeats += 1
    return work / best


def measure_peak_gflops(threads: int = 1, seconds: float = 1.0, size: int = 1536) -> float:
    """The core's measured peak: GFLOP/s of a large float32 matrix product (``torch.mm``, ``size``
    square, 2 size³ operations), the best of repetitions over about ``seconds``, on ``threads``
    threads (torch's thread count is restored afterwards)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(0)
        a = torch.rand(size, size, generator=generator)
        b = torch.rand(size, size, generator=generator)
        out = torch.empty(size, size)
        return _best_rate(2.0 * size**3, lambda: torch.mm(a, b, out=out), seconds) / 1e9
    finally:
        torch.set_num_threads(previous)


def measure_copy_bandwidth(threads: int = 1, seconds: float = 0.5, megabytes: int = 256) -> float:
    """Memory bandwidth in GB/s of copying a ``megabytes`` float32 tensor into another (bytes read
    plus bytes written, per second; far larger than any cache), the best of repetitions over about
    ``seconds``, on ``threads`` threads (restored afterwards)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        source = torch.ones(megabytes * (1 << 20) // 4)
        target = torch.empty_like(source)
        return _best_rate(2.0 * source.numel() * 4, lambda: target.copy_(source), seconds) / 1e9
    finally:
        torch.set_num_threads(previous)


def step_bytes_from_counts(
    config: StudentConfig, n_atoms: int, n_edges: int, paired: bool = True, itemsize: int = 4
) -> float:
    """Bytes one evaluation by the fused kernel reads and writes in its per-edge loops and its
    matrix products, each access counted (an estimate of its memory traffic if nothing were
    reused from cache: an upper bound).

    Counted: every row of F numbers an edge's loops read (the neighbour's context and vectors, the
    receiver's gradients, the row's filter) or update (read and written: the receiver's messages,
    the neighbour's gradients, the filter's gradient), per edge and layer as painn.h and
    painn_reverse.h touch them; every matrix product's input A (m x k) and result C (m x n, twice
    when it accumulates), not its weights, which stay in cache. Not counted: the per-atom
    element-wise loops (they read the products' arrays again), the edges' geometry, indices and
    the scratch row an edge reuses. Arguments as in :func:`step_flops_from_counts`.
    """
    f, r1, layers, h = config.features, config.n_rbf + 1, config.layers, config.features // 2
    n, e = n_atoms, n_edges
    pairs = e // 2 if paired else 0
    rows = e - pairs
    kept = rows * 3 * f * layers * itemsize <= KEPT_FILTER_BYTES
    # per-edge loops, numbers per edge (first layer, later layers), and per row for the filter gradient
    forward_edges = e * (12 * f + (layers - 1) * 17 * f)
    reverse_edges = e * (11 * f + (layers - 1) * 31 * f) + layers * rows * 3 * f  # and zeroing filter gradients
    # matrix products: A and C
    filters = rows * (r1 + 3 * f)
    context = n * (f + f) + n * (f + 3 * f)
    update = 2 * (3 * n * f + 3 * n * f) + n * (2 * f + f) + n * (f + 3 * f)
    forward_products = layers * (filters + update) + (layers - 1) * context + n * (f + h)
    update_back = n * (3 * f + f) + n * (f + 2 * f) + 2 * (3 * n * f + 2 * 3 * n * f)
    context_back = n * (3 * f + f) + n * (f + 2 * f)
    filters_back = rows * (3 * f + 2 * r1) + (0 if kept else filters)
    reverse_products = n * (h + f) + layers * (update_back + filters_back) + (layers - 1) * context_back
    return float(itemsize * (forward_edges + reverse_edges + forward_products + reverse_products))


def gathered_bytes(config: StudentConfig, n_atoms: int, itemsize: int = 4) -> float:
    """Bytes of the per-atom rows a layer's reverse pass gathers from and scatters into along edges
    (context, input vectors and their gradients, the receivers' gradients: 17 F numbers per atom):
    the working set of the per-edge loops, to compare with the cache."""
    return float(itemsize * n_atoms * 17 * config.features)


#: The phases of a kernel call, in the order of ``torch.ops.mlffd.phase_seconds()``.
PHASES = ("setup", "pairs", "geometry", "forward", "reverse", "forces")


@dataclass
class KernelProfile:
    """Measured steps of the fused kernel on one structure, and the machine's peaks, in one run.

    Attributes
    ----------
    step_seconds : float
        One energy-and-forces call of the frozen module OpenMM runs (the fastest measured), s.
    phase_seconds : dict of str to float
        Of that call, seconds the kernel spent in each of :data:`PHASES`: reading the weights and
        checking the inputs, the neighbour search, the edges' geometry and radial features, the
        layers forward with the readout, the reverse pass, the force sums.
    flops : StepFlops
        Operations of the step.
    bytes : float
        Bytes its loops and products touch (:func:`step_bytes_from_counts`).
    working_set_bytes : float
        Per-atom rows its per-edge loops gather (:func:`gathered_bytes`).
    cache_bytes : float
        The core's L2 cache (0 where the system does not say).
    peak_gflops : float
        :func:`measure_peak_gflops` on as many threads.
    copy_gb_per_s : float
        :func:`measure_copy_bandwidth` on as many threads.
    threads : int
        Threads the kernel and the peaks ran on.
    """

    step_seconds: float
    phase_seconds: dict[str, float]
    flops: StepFlops
    bytes: float
    working_set_bytes: float
    cache_bytes: float
    peak_gflops: float
    copy_gb_per_s: float
    threads: int

    @property
    def achieved_gflops(self) -> float:
        """Operations of a step per second of the whole call, GFLOP/s."""
        return self.flops.total / self.step_seconds / 1e9

    @property
    def fraction_of_peak(self) -> float:
        """:attr:`achieved_gflops` over :attr:`peak_gflops`."""
        return self.achieved_gflops / self.peak_gflops

    @property
    def overhead_seconds(self) -> float:
        """Seconds of the call outside the kernel's pair search, network and force sums: the
        module's own operations (units, dtypes) and the kernel's setup."""
        work = sum(self.phase_seconds[name] for name in PHASES if name != "setup")
        return max(0.0, self.step_seconds - work)

    @property
    def network_seconds(self) -> float:
        """Seconds of the network: geometry, forward and reverse."""
        return sum(self.phase_seconds[name] for name in ("geometry", "forward", "reverse"))


def l2_cache_bytes() -> float:
    """The L2 cache of CPU 0 in bytes, from Linux's sysfs; 0 where it is not found."""
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (index / "level").read_text().strip() == "2":
                text = (index / "size").read_text().strip().upper()
                scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1], 1)
                return float(int(text.rstrip("KM")) * scale)
        except (OSError, ValueError):
            continue
    return 0.0


def profile_kernel(
    student: Student,
    atoms: Atoms,
    threads: int = 1,
    seconds: float = 2.0,
    peak_gflops: float | None = None,
    copy_gb_per_s: float | None = None,
) -> KernelProfile:
    """Time the fused kernel's energy-and-forces calls on ``atoms`` for about ``seconds`` (at least
    three calls after one warm-up) on ``threads`` threads, with the phases of the fastest call.

    The call is that of :func:`~mlff_distiller.benchmark.contenders.bare_model` (the frozen module
    OpenMM runs, float64 nm in); ``peak_gflops`` and ``copy_gb_per_s`` are measured here (about a
    second) unless given, as a run measuring several systems does once.
    """
    from .contenders import bare_model

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        advance = bare_model(student, atoms, kernel="fused")
        advance(1)
        best, phases = math.inf, torch.zeros(len(PHASES))
        deadline = time.perf_counter() + seconds
        calls = 0
        while calls < 3 or time.perf_counter() < deadline:
            elapsed = advance(1)
            if elapsed < best:
                best, phases = elapsed, torch.ops.mlffd.phase_seconds()
            calls += 1
    finally:
        torch.set_num_threads(previous)
    itemsize = next(student.parameters()).element_size()
    flops = step_flops(student, atoms)
    edges = count_edges(student, atoms)
    return KernelProfile(
        step_seconds=best,
        phase_seconds=dict(zip(PHASES, phases.tolist(), strict=True)),
        flops=flops,
        bytes=step_bytes_from_counts(student.config, len(atoms), edges, True, itemsize),
        working_set_bytes=gathered_bytes(student.config, len(atoms), itemsize),
        cache_bytes=l2_cache_bytes(),
        peak_gflops=measure_peak_gflops(threads, 0.5) if peak_gflops is None else peak_gflops,
        copy_gb_per_s=measure_copy_bandwidth(threads, 0.3) if copy_gb_per_s is None else copy_gb_per_s,
        threads=threads,
    )


#: A part of the step this large (fraction) bounds it by itself.
DOMINANT_SHARE = 0.25
#: Bytes touched per second, as a fraction of the copy bandwidth, from which the loops count as
#: bound by memory traffic (when their working set also exceeds the L2 cache).
MEMORY_BOUND_SHARE = 0.5


def bound_summary(profile: KernelProfile) -> str:
    """One line of measured facts saying what bounds the kernel's step, e.g. ``"step 231 ms: call
    overhead 1 %, pairs 2 %, geometry 5 %, forward 38 %, reverse 53 %; network 41 GFLOP/s (25 % of
    peak), 87 % of it in products; 4.4 GB touched per step = 19 GB/s = 170 % of copy bandwidth,
    working set 11 MB > L2 2 MB: memory traffic"``.

    The verdict at the end: per-call overhead, or the neighbour search, when it takes at least
    :data:`DOMINANT_SHARE` of the step; else memory traffic when the bytes touched per second reach
    :data:`MEMORY_BOUND_SHARE` of the copy bandwidth and the gathered rows overflow the L2 cache;
    else arithmetic (matrix products and element-wise loops).
    """
    p = profile
    step = p.step_seconds
    shares = {
        "call overhead": p.overhead_seconds / step,
        "pairs": p.phase_seconds["pairs"] / step,
        "geometry": p.phase_seconds["geometry"] / step,
        "forward": p.phase_seconds["forward"] / step,
        "reverse": p.phase_seconds["reverse"] / step,
    }
    network_gflops = p.flops.total / max(p.network_seconds, 1e-12) / 1e9
    rate = p.bytes / step / 1e9
    overflows = p.working_set_bytes > p.cache_bytes > 0
    if shares["call overhead"] >= DOMINANT_SHARE:
        verdict = "per-call overhead"
    elif shares["pairs"] >= DOMINANT_SHARE:
        verdict = "the neighbour search"
    elif rate >= MEMORY_BOUND_SHARE * p.copy_gb_per_s and overflows:
        verdict = "memory traffic"
    else:
        verdict = "arithmetic"
    parts = ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
    cache = f" {'>' if overflows else '<='} L2 {p.cache_bytes / 1e6:.1f} MB" if p.cache_bytes else ""
    return (
        f"step {step * 1e3:.3g} ms: {parts}; network {network_gflops:.0f} GFLOP/s "
        f"({network_gflops / p.peak_gflops:.0%} of peak), {p.flops.matmul / p.flops.total:.0%} of it in products; "
        f"{p.bytes / 1e9:.2g} GB touched per step = {rate:.0f} GB/s = {rate / p.copy_gb_per_s:.0%} of copy "
        f"bandwidth, working set {p.working_set_bytes / 1e6:.2g} MB{cache}: {verdict}"
    )
