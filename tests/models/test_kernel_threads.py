"""The fused kernel's threads: every thread count gives one thread's energies and forces up to the
order of a few sums (and autograd's on the eager student where that is cheap), the same numbers on
every call with a given count, on every preset, in vacuum and periodic cells, from aspirin to a
1,536-atom water box; how the count is chosen, checked and handed to scripted modules and OpenMM."""

import os

import torch

import numpy as np
import pytest
from ase.io import read
from kit import TIGHT, assert_close, random_box

from mlff_distiller import InvalidValueError
from mlff_distiller.data import bundled_structure, bundled_student
from mlff_distiller.models import FusedStudentForces, load_checkpoint
from mlff_distiller.models.kernel import MAX_THREADS, default_threads, load_kernel, resolve_threads
from mlff_distiller.models.kernel.weights import kernel_weights

#: Relative agreement (to the largest value) of two thread counts, float64: the blocks' partial sums
#: of edge terms are added in another order (seen: up to 3e-14 on the bundled students' forces).
THREADS64 = 1e-12
#: The same in float32 (seen: up to 1.4e-5 on organic-standard's aspirin forces, whose edge terms
#: cancel more than random weights' do, about 1e-6 on the random presets).
THREADS32 = 1e-4
TOLERANCE = {torch.float64: THREADS64, torch.float32: THREADS32}
THREAD_COUNTS = (1, 2, 3)
TRICLINIC = np.array([[8.0, 0.0, 0.0], [2.0, 7.5, 0.0], [1.0, 1.5, 7.0]])


@pytest.fixture(scope="module", autouse=True)
def kernel():
    load_kernel()


def settings(student, threads):
    """The operators' arguments after the positions (weights, layers, cutoff, norm epsilon) and threads."""
    network = student.network
    weights = kernel_weights(student)
    return weights, len(network.interactions), float(network.cutoff), network.interactions[0].norm_epsilon, threads


def structure(name, student, rng):
    """Positions (Å), species and cell (None in vacuum) of a named test system."""
    if name == "aspirin":
        atoms = read(bundled_structure("aspirin"))
        return torch.tensor(atoms.positions), student.species(atoms.numbers), None
    if name == "triclinic-box":
        positions, species = random_box(40, TRICLINIC, len(student.elements), rng)
        return positions, species, torch.tensor(TRICLINIC)
    atoms = read(bundled_structure("water-32")).repeat((2, 2, 4))  # 1,536 atoms
    return torch.tensor(atoms.positions), student.species(atoms.numbers), torch.tensor(np.asarray(atoms.cell))


def all_pairs(student, positions, species, cell, threads):
    dtype = student.network.energy_scale.dtype
    return torch.ops.mlffd.painn_all_pairs_forces(
        species, positions.to(dtype), None if cell is None else cell.to(dtype), *settings(student, threads)
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("system", ["aspirin", "triclinic-box", "water-1536"])
def test_thread_counts_agree_on_every_preset(any_student, rng, system, dtype):
    student = any_student.to(dtype).requires_grad_(False)
    positions, species, cell = structure(system, student, rng)
    results = {threads: all_pairs(student, positions, species, cell, threads) for threads in THREAD_COUNTS}
    for threads in THREAD_COUNTS[1:]:
        for k, what in enumerate(("per-atom energies", "forces")):
            assert_close(results[threads][k], results[1][k], TOLERANCE[dtype], f"{what}, {threads} threads")
    again = all_pairs(student, positions, species, cell, 2)
    assert torch.equal(again[0], results[2][0]) and torch.equal(again[1], results[2][1]), "2 threads, second call"
    if dtype == torch.float64 and system != "water-1536":  # autograd of the eager student, independently
        pbc = torch.full((3,), cell is not None)
        leaf = positions.clone().requires_grad_(True)
        energies = student.atomic_energies(leaf, species, torch.zeros((3, 3)) if cell is None else cell, pbc)
        (gradient,) = torch.autograd.grad(energies.sum(), leaf)
        for threads in THREAD_COUNTS:
            assert_close(results[threads][0], energies.detach(), TIGHT, f"energies against autograd, {threads} threads")
            assert_close(results[threads][1], -gradient, TIGHT, f"forces against autograd, {threads} threads")


def test_trained_student_in_float32():
    """organic-standard's forces, whose edge terms cancel most: within THREADS32 of one thread's."""
    student = load_checkpoint(bundled_student("organic-standard"), torch.float32).eval().requires_grad_(False)
    atoms = read(bundled_structure("aspirin"))
    positions, species = torch.tensor(atoms.positions), student.species(atoms.numbers)
    one = all_pairs(student, positions, species, None, 1)
    for threads in THREAD_COUNTS[1:]:
        assert_close(all_pairs(student, positions, species, None, threads)[1], one[1], THREADS32, "float32 forces")


def test_student_edges_of_a_slab(tiny_student, rng):
    """painn_forces, the operator on the student's own edges (a partly periodic cell), threaded alike."""
    cell = torch.tensor(np.diag([9.0, 8.0, 12.0]))
    positions, species = random_box(60, cell.numpy(), len(tiny_student.elements), rng, spacing=1.1)
    src, dst, images = tiny_student.edges(positions, cell, torch.tensor([True, True, False]))
    vectors = positions[dst] - positions[src] + images @ cell
    one = torch.ops.mlffd.painn_forces(species, src, dst, vectors, *settings(tiny_student, 1))
    for threads in THREAD_COUNTS[1:]:
        energies, forces = torch.ops.mlffd.painn_forces(species, src, dst, vectors, *settings(tiny_student, threads))
        assert_close(energies, one[0], THREADS64, "per-atom energies")
        assert_close(forces, one[1], THREADS64, "forces")


def test_zero_threads_is_torchs_intra_op_count(tiny_student, rng):
    positions, species, cell = structure("triclinic-box", tiny_student, rng)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        torch_count = all_pairs(tiny_student, positions, species, cell, 0)
    finally:
        torch.set_num_threads(before)
    two = all_pairs(tiny_student, positions, species, cell, 2)
    assert torch.equal(torch_count[1], two[1])


@pytest.mark.parametrize("threads", [-1, MAX_THREADS + 1])
def test_operators_refuse_thread_counts_out_of_range(tiny_student, threads):
    """The C++ bound is the Python one: MAX_THREADS itself runs (two atoms: one block, no worker started)."""
    positions = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    species = torch.tensor([0, 1])
    with pytest.raises(RuntimeError, match="threads must be from 1 to"):
        all_pairs(tiny_student, positions, species, None, threads)
    one = all_pairs(tiny_student, positions, species, None, 1)
    assert torch.equal(all_pairs(tiny_student, positions, species, None, MAX_THREADS)[1], one[1])


def test_scripted_module_takes_its_count_from_set_threads(tiny_student, rng):
    """As openmm-torch holds it: a scripted FusedStudentForces, its count set after scripting."""
    positions, species, cell = structure("triclinic-box", tiny_student, rng)
    module = torch.jit.script(FusedStudentForces(tiny_student.requires_grad_(False), threads=1))
    module.set_threads(3)
    assert module.threads == 3
    forces = module(positions, species, cell, torch.ones(3, dtype=torch.bool))[1]
    assert torch.equal(forces, all_pairs(tiny_student, positions, species, cell, 3)[1])


@pytest.mark.parametrize("threads", [0, -1, MAX_THREADS + 1, 2.5, True, "2"])
def test_thread_counts_refused(threads):
    with pytest.raises(InvalidValueError, match="threads"):
        resolve_threads(threads)


def test_fused_module_refuses_a_negative_count(tiny_student):
    with pytest.raises(InvalidValueError, match="threads"):
        FusedStudentForces(tiny_student, threads=-1)


def test_default_count_honours_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == resolve_threads(None) == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert default_threads() == len(os.sched_getaffinity(0))


def test_openmm_model_gets_its_thread_count(tiny_student):
    """load_force_model sets the count of a fused model's kernel (default: default_threads())."""
    from mlff_distiller.plugin.openmm import load_force_model

    assert load_force_model(tiny_student, kernel="fused", threads=2).module.forces.threads == 2
    assert load_force_model(tiny_student, kernel="fused").module.forces.threads == default_threads()
    with pytest.raises(InvalidValueError, match="threads"):
        load_force_model(tiny_student, kernel="fused", threads=0)


def test_forked_process_starts_its_own_workers(tiny_student, rng):
    """A child forked after the parent's workers started (multiprocessing's fork) has none of them: it
    must start its own rather than wait for threads that do not exist in it."""
    positions, species, cell = structure("triclinic-box", tiny_student, rng)
    parent = all_pairs(tiny_student, positions, species, cell, 2)[1]
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 when it computes the parent's forces, never back into pytest
        code = 1
        try:
            code = 0 if torch.equal(all_pairs(tiny_student, positions, species, cell, 2)[1], parent) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
