"""The floating-point operations of a fused-kernel step, against torch's FlopCounterMode, a hand
count and ASE's neighbour list; the measured peaks are positive and finite."""

import math

import torch
from torch.utils.flop_counter import FlopCounterMode

import pytest
from ase.neighborlist import neighbor_list

from mlff_distiller.benchmark import benchmark_system
from mlff_distiller.benchmark.flops import (
    PHASES,
    KernelProfile,
    StepFlops,
    bound_summary,
    measure_copy_bandwidth,
    measure_peak_gflops,
    profile_kernel,
    step_bytes_from_counts,
    step_flops,
    step_flops_from_counts,
)
from mlff_distiller.models import Student, preset


def test_matrix_products_match_torch_flop_counter_on_the_portable_network():
    """The portable network differentiated by autograd runs the kernel's matrix products, except
    where the kernel saves or spends: it keeps the first layer's context per species (torch
    computes it for every atom, 2 N F^2 + 6 N F^2), computes the first layer's whole filter where
    torch leaves out its vector-vector third (E x F x (R + 1), forward and reverse), and sums the
    readout's last layer in a loop (torch: an (N x H) (H x 1) product, forward and reverse)."""
    torch.manual_seed(0)
    config = preset("ultra-tiny", features=12, n_rbf=5)
    student = Student(config).double().eval().requires_grad_(False)
    atoms = benchmark_system("aspirin")
    positions = torch.tensor(atoms.positions)
    src, dst, _ = student.edges(positions, torch.zeros(3, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.bool))
    vectors = (positions[dst] - positions[src]).requires_grad_(True)
    with FlopCounterMode(display=False) as counter:
        student.network(student.species(atoms.numbers), src, dst, vectors).sum().backward()
    n, e = len(atoms), src.shape[0]
    f, r1, h = config.features, config.n_rbf + 1, config.features // 2
    expected = counter.get_total_flops() - 8 * n * f * f + 2 * (2 * e * f * r1) - 2 * (2 * n * h)
    # unpaired edges: one filter row per edge, as torch computes them
    assert step_flops_from_counts(config, n, e, paired=False, itemsize=8).matmul == expected


def test_hand_count_of_two_atoms():
    """F = 2, R = 1, two layers, H = 1; two atoms, one pair (two edges, one filter row)."""
    config = preset("ultra-tiny", features=2, n_rbf=1, layers=2)
    forward_matmul = (
        2 * (2 * 1 * 6 * 2)  # filters of both layers: (1 x 2) (2 x 6)
        + (2 * 2 * 2 * 2 + 2 * 2 * 6 * 2)  # second layer's context: (2 x 2) (2 x 2), (2 x 2) (2 x 6)
        + 2 * (2 * (2 * 6 * 2 * 2) + 2 * 2 * 4 * 2 + 2 * 2 * 2 * 6)  # mix_u, mix_v (6 x 2) (2 x 2); gate
        + 2 * 2 * 2 * 1  # readout (2 x 2) (2 x 1)
    )
    forward_elementwise = (
        2 * 9  # distance (3 products, 2 sums, square root) and unit vector (3 divisions) per edge
        + (9 + 11)  # envelope, one basis function, of the one row
        + 2 * 9 * 2  # first layer's messages per feature per edge: scalar 2, vector-scalar 1 + 3 x 2
        + 2 * 2 * 4  # second layer's context silu
        + 2 * 16 * 2  # second layer's: scalar 2, vector 2 + 3 x 4
        + 2 * (2 * 2 * 26)  # update of both layers: norm and dot 13, silu 4, new s and v 9
        + 2 * (6 + 2)  # readout: silu, weight, sum; scale and reference
    )
    reverse_matmul = (
        2 * 2 * 1 * 2  # readout gradient
        + 2 * (2 * 2 * 6 * 2 + 2 * 2 * 2 * 4 + 2 * (2 * 6 * 2 * 2))  # gate_out, gate_in, mixes
        + 2 * (2 * 1 * 2 * 6)  # d E / d radial features; filters kept
        + (2 * 2 * 2 * 6 + 2 * 2 * 2 * 2)  # second layer's context
    )
    reverse_elementwise = (
        2 * 9  # readout's silu slope, weight, scale
        + 2 * (2 * 2 * 36)  # update of both layers
        + 2 * 2 * 8  # second layer's context slope
        + 2 * (16 * 2 + 3)  # first layer's edges: messages, unit and filter gradients 16 F, unit sums 3
        + 2 * (36 * 2 + 3)  # second layer's: and the vector-vector third, neighbour's gradients 36 F
        + 2 * 2
        + 2 * 20
        + 2 * 6  # distance gradient of the row, edge gradients, forces
    )
    flops = step_flops_from_counts(config, n_atoms=2, n_edges=2)
    assert flops.forward == forward_matmul + forward_elementwise == 850
    assert flops.reverse == reverse_matmul + reverse_elementwise == 1086
    assert flops.matmul == forward_matmul + reverse_matmul
    assert flops.total == 1936


def test_operations_grow_linearly_with_edges():
    config = preset("standard")
    counts = [step_flops_from_counts(config, 100, e) for e in (1000, 2000, 3000)]
    assert counts[1].total - counts[0].total == counts[2].total - counts[1].total > 0
    assert counts[1].matmul - counts[0].matmul == counts[2].matmul - counts[1].matmul > 0


def test_filters_recomputed_when_they_do_not_fit():
    """Above 8 MiB of filters the reverse pass computes each layer's filters again."""
    config = preset("standard")
    f, r1, layers = config.features, config.n_rbf + 1, config.layers
    rows = (8 << 20) // (3 * f * layers * 4)
    small, large = (step_flops_from_counts(config, 100, 2 * r) for r in (rows, rows + 1))
    one_row = small.total - step_flops_from_counts(config, 100, 2 * rows - 2).total  # a pair, below the limit
    recomputed = layers * 2 * (rows + 1) * 3 * f * r1
    assert large.total - small.total == one_row + recomputed


def test_step_counts_the_edges_ase_finds():
    torch.manual_seed(0)
    student = Student(preset("ultra-tiny")).float().eval()
    atoms = benchmark_system("water-96")
    edges = len(neighbor_list("i", atoms, student.cutoff))
    assert step_flops(student, atoms) == step_flops_from_counts(student.config, len(atoms), edges, True, 4)


def test_peaks_are_positive_and_finite():
    threads = torch.get_num_threads()
    peak = measure_peak_gflops(1, seconds=0.05, size=256)
    bandwidth = measure_copy_bandwidth(1, seconds=0.05, megabytes=32)
    assert 0 < peak < math.inf and 0 < bandwidth < math.inf
    assert torch.get_num_threads() == threads


def test_bytes_grow_linearly_with_edges():
    config = preset("standard")
    counts = [step_bytes_from_counts(config, 100, e) for e in (1000, 2000, 3000)]
    assert counts[1] - counts[0] == counts[2] - counts[1] > 0


def test_profile_times_the_phases_inside_the_call():
    torch.manual_seed(0)
    student = Student(preset("ultra-tiny")).float().eval()
    profile = profile_kernel(student, benchmark_system("aspirin"), seconds=0.05, peak_gflops=100.0, copy_gb_per_s=10.0)
    phases = profile.phase_seconds
    assert tuple(phases) == PHASES and min(phases.values()) >= 0
    assert phases["forward"] > 0 and phases["reverse"] > 0
    assert sum(phases.values()) <= profile.step_seconds  # the kernel's call lies inside the module's
    assert profile.achieved_gflops == pytest.approx(profile.flops.total / profile.step_seconds / 1e9)
    assert bound_summary(profile).startswith("step ")


def _profile(overhead: float = 0.0, pairs: float = 0.0, gigabytes: float = 0.1, working_set: float = 1e6):
    """A one-second step with the given seconds outside the network, and touched gigabytes."""
    network = 1.0 - overhead - pairs
    phases = dict.fromkeys(PHASES, 0.0) | {"pairs": pairs, "forward": network / 2, "reverse": network / 2}
    return KernelProfile(1.0, phases, StepFlops(1e9, 1e9, 1.5e9), gigabytes * 1e9, working_set, 2e6, 100.0, 10.0, 1)


def test_verdict_names_what_takes_the_step():
    assert bound_summary(_profile(overhead=0.3)).endswith(": per-call overhead")
    assert bound_summary(_profile(pairs=0.3)).endswith(": the neighbour search")
    assert bound_summary(_profile(gigabytes=6.0, working_set=3e6)).endswith(": memory traffic")
    assert bound_summary(_profile(gigabytes=6.0, working_set=1e6)).endswith(": arithmetic")  # in cache
    assert bound_summary(_profile(gigabytes=1.0, working_set=3e6)).endswith(": arithmetic")
