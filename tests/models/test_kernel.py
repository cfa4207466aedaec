"""The C++ kernel (painn.h's hand-written reverse pass, run by driver.h) against autograd on the same
student: per-atom energies and forces in vacuum and periodic cells, float64 and float32, a finite
difference of the energy; the named weights it refuses; the weights it keeps between calls with the
same dictionary (in-place changes seen, a resize refused, non-contiguous entries read again); its
build, cached per torch version, source and CPU, and without a compiler a clear error and the
portable path."""

import copy
import os
import re
import subprocess
import sys

import torch

import numpy as np
import pytest
from kit import ENGINE32, FINITE_DIFFERENCE, TIGHT, assert_close, random_box, random_molecule

from mlff_distiller.compiler import cpu_signature
from mlff_distiller.models import FusedStudentForces
from mlff_distiller.models.kernel import HEADERS, SOURCE, library_path, load_kernel
from mlff_distiller.models.kernel.weights import kernel_weights
from mlff_distiller_lammps import source_files

NO_CELL = torch.zeros((3, 3), dtype=torch.float64)
NO_PBC = torch.zeros(3, dtype=torch.bool)
PBC = torch.ones(3, dtype=torch.bool)
TRICLINIC = np.array([[8.0, 0.0, 0.0], [2.0, 7.5, 0.0], [1.0, 1.5, 7.0]])


@pytest.fixture(scope="module", autouse=True)
def kernel():
    load_kernel()


def settings(student):
    """The operators' arguments after the positions: weights, layers, cutoff (Å), norm epsilon."""
    network = student.network
    return (
        kernel_weights(student),
        len(network.interactions),
        float(network.cutoff),
        network.interactions[0].norm_epsilon,
    )


def kernel_energies_forces(student, positions, species, cell, pbc):
    """Per-atom energies (eV) and forces (eV/Å) from the kernel: pairs found in C++ in vacuum or a
    fully periodic cell, the student's edges otherwise."""
    periodic = bool(pbc.any())
    if not periodic or bool(pbc.all()):
        return torch.ops.mlffd.painn_all_pairs_forces(
            species, positions, cell if periodic else None, *settings(student)
        )
    src, dst, images = student.edges(positions, cell, pbc)
    vectors = positions[dst] - positions[src] + images @ cell
    return torch.ops.mlffd.painn_forces(species, src, dst, vectors, *settings(student))


def autograd_reference(student, positions, species, cell, pbc):
    leaf = positions.clone().requires_grad_(True)
    energies = student.atomic_energies(leaf, species, cell, pbc)
    (gradient,) = torch.autograd.grad(energies.sum(), leaf)
    return energies.detach(), -gradient


def check(student, positions, species, cell, pbc):
    energies, forces = kernel_energies_forces(student, positions, species, cell, pbc)
    expected_energies, expected_forces = autograd_reference(student, positions, species, cell, pbc)
    assert_close(energies, expected_energies, TIGHT, "per-atom energies")
    assert_close(forces, expected_forces, TIGHT, "forces")


def test_molecule_every_preset(any_student, rng):
    positions, species = random_molecule(14, len(any_student.elements), rng)
    check(any_student, positions, species, NO_CELL, NO_PBC)


@pytest.mark.parametrize("cell", [np.diag([7.0, 7.5, 8.0]), TRICLINIC])
def test_small_periodic_boxes(tiny_student, rng, cell):
    """Boxes smaller than twice the cutoff: an atom meets several images of the same neighbour."""
    positions, species = random_box(24, cell, len(tiny_student.elements), rng)
    check(tiny_student, positions, species, torch.tensor(cell), PBC)


def test_atoms_far_outside_a_triclinic_cell(tiny_student, rng):
    """Atoms several cells away from the one given: wrapped before the pairs are searched."""
    positions, species = random_box(20, TRICLINIC, len(tiny_student.elements), rng)
    moved = positions + torch.tensor(rng.integers(-3, 4, size=(20, 3)) @ TRICLINIC, dtype=torch.float64)
    cell = torch.tensor(TRICLINIC)
    check(tiny_student, moved, species, cell, PBC)
    energies = kernel_energies_forces(tiny_student, moved, species, cell, PBC)[0]
    assert_close(energies, kernel_energies_forces(tiny_student, positions, species, cell, PBC)[0], TIGHT, "energies")


def test_large_box_with_cell_list_and_edge_chunks(tiny_student, rng):
    """Enough atoms for the kernel's cell list, and filters recomputed a chunk of edges at a time."""
    cell = np.diag([16.0, 16.0, 16.0])
    positions, species = random_box(380, cell, len(tiny_student.elements), rng, spacing=1.0)
    check(tiny_student, positions, species, torch.tensor(cell), PBC)


def test_large_triclinic_cell_with_atoms_on_and_far_outside_its_faces(tiny_student, rng):
    """A cell three cutoffs wide: the kernel's cell list, bins wrapping across faces and edges."""
    cell = np.array([[16.0, 0.0, 0.0], [4.0, 15.5, 0.0], [2.0, 3.0, 16.0]])
    positions, species = random_box(260, cell, len(tiny_student.elements), rng, spacing=1.0)
    fractional = positions[:3].numpy() @ np.linalg.inv(cell)
    fractional[0, 0], fractional[1, 1], fractional[2] = 0.0, 1.0 - 1e-15, [0.0, 1.0, 0.0]  # on faces and an edge
    positions[:3] = torch.tensor(fractional @ cell)
    positions[3:40] += torch.tensor(rng.integers(-3, 4, size=(37, 3)) @ cell, dtype=torch.float64)
    check(tiny_student, positions, species, torch.tensor(cell), PBC)


def test_slab_periodic_in_two_directions(tiny_student, rng):
    """Partly periodic: the student's neighbour search, its edges handed to painn_forces."""
    cell = np.diag([9.0, 8.0, 12.0])
    positions, species = random_box(40, cell, len(tiny_student.elements), rng, spacing=1.1)
    check(tiny_student, positions, species, torch.tensor(cell), torch.tensor([True, True, False]))


def test_edges_in_any_order(tiny_student, rng):
    """Edges that do not come as pairs followed by their reverses: each edge's radial features alone."""
    positions, species = random_molecule(12, len(tiny_student.elements), rng)
    src, dst, _ = tiny_student.edges(positions, NO_CELL, NO_PBC)
    order = torch.tensor(rng.permutation(len(src)))
    src, dst = src[order], dst[order]
    energies, forces = torch.ops.mlffd.painn_forces(
        species, src, dst, positions[dst] - positions[src], *settings(tiny_student)
    )
    expected_energies, expected_forces = autograd_reference(tiny_student, positions, species, NO_CELL, NO_PBC)
    assert_close(energies, expected_energies, TIGHT, "per-atom energies")
    assert_close(forces, expected_forces, TIGHT, "forces")


def test_large_cluster_in_vacuum(tiny_student, rng):
    """More than 64 atoms without a cell: the kernel bins the bounding box."""
    positions, species = random_box(150, np.diag([14.0, 9.0, 6.0]), len(tiny_student.elements), rng, spacing=1.2)
    check(tiny_student, positions, species, NO_CELL, NO_PBC)


def test_atoms_without_neighbours(tiny_student):
    """No edge at all: zero forces, and each atom's energy from its species alone."""
    positions = torch.tensor([[0.0, 0.0, 0.0], [20.0, 0.0, 0.0], [0.0, 30.0, 0.0]], dtype=torch.float64)
    species = torch.tensor([0, 1, 0])
    energies, forces = kernel_energies_forces(tiny_student, positions, species, NO_CELL, NO_PBC)
    assert torch.equal(forces, torch.zeros_like(forces))
    assert energies[0] == energies[2] and energies[0] != energies[1]
    check(tiny_student, positions, species, NO_CELL, NO_PBC)


def small_system(student, rng, periodic):
    """Positions (Å), species, cell and periodicity: 16 atoms in the triclinic cell, or 10 in vacuum."""
    if periodic:
        return (*random_box(16, TRICLINIC, len(student.elements), rng), torch.tensor(TRICLINIC), PBC)
    return (*random_molecule(10, len(student.elements), rng), NO_CELL, NO_PBC)


@pytest.mark.parametrize("periodic", [False, True])
def test_float32_against_float64_autograd(tiny_student, rng, periodic):
    positions, species, cell, pbc = small_system(tiny_student, rng, periodic)
    single = tiny_student.float()
    energies, forces = kernel_energies_forces(single, positions.float(), species, cell.float(), pbc)
    assert energies.dtype == forces.dtype == torch.float32
    expected_energies, expected_forces = autograd_reference(tiny_student.double(), positions, species, cell, pbc)
    assert_close(energies.double(), expected_energies, ENGINE32, "float32 per-atom energies")
    assert_close(forces.double(), expected_forces, ENGINE32, "float32 forces")


@pytest.mark.parametrize("periodic", [False, True])
def test_forces_are_minus_the_finite_difference_gradient(tiny_student, rng, periodic):
    positions, species, cell, pbc = small_system(tiny_student, rng, periodic)
    forces = kernel_energies_forces(tiny_student, positions, species, cell, pbc)[1]
    step = 1e-5
    gradient = torch.zeros_like(positions)
    for atom, axis in np.ndindex(*positions.shape):
        shifted = []
        for sign in (1.0, -1.0):
            moved = positions.clone()
            moved[atom, axis] += sign * step
            shifted.append(kernel_energies_forces(tiny_student, moved, species, cell, pbc)[0].sum())
        gradient[atom, axis] = (shifted[0] - shifted[1]) / (2 * step)
    assert_close(forces, -gradient, FINITE_DIFFERENCE, "forces against the finite difference")


def test_fused_module_scripted_and_frozen_like_openmm_torch(tiny_student, rng):
    """FusedStudentForces hands its named weights to the op from TorchScript, also once frozen (their
    dictionary folded into the graph), in vacuum and in a slab (the op on the student's edges)."""
    module = FusedStudentForces(tiny_student.requires_grad_(False)).eval()
    frozen = torch.jit.freeze(torch.jit.script(module))
    cell = torch.diag(torch.tensor([9.0, 8.0, 12.0], dtype=torch.float64))
    slab = torch.tensor([True, True, False])
    molecule, box = (
        random_molecule(9, len(tiny_student.elements), rng),
        random_box(30, cell.numpy(), len(tiny_student.elements), rng),
    )
    for (positions, species), box_cell, pbc in [(molecule, NO_CELL, NO_PBC), (box, cell, slab)]:
        energies, forces = frozen(positions, species, box_cell, pbc)
        expected_energies, expected_forces = autograd_reference(tiny_student, positions, species, box_cell, pbc)
        assert_close(energies, expected_energies, TIGHT, "frozen per-atom energies")
        assert_close(forces, expected_forces, TIGHT, "frozen forces")


def tampered(weights, change):
    weights = dict(weights)
    change(weights)
    return weights


#: Each check of the named weights, the tampering that trips it and the message that names it.
TAMPERING = {
    "missing weight": (
        lambda w: w.pop("interactions.1.gate_in.bias"),
        "weight 'interactions.1.gate_in.bias' is missing",
    ),
    "wrong shape": (
        lambda w: w.update({"interactions.2.mix_v.weight": w["interactions.2.mix_v.weight"][:, :-1].contiguous()}),
        "weight 'interactions.2.mix_v.weight' has shape [45, 44], expected [45, 45] (10 species, 45 features",
    ),
    "wrong dtype": (
        lambda w: w.update({"readout_in.bias": w["readout_in.bias"].float()}),
        "weight 'readout_in.bias' is Float, expected Double",
    ),
    "wrong rank": (
        lambda w: w.update({"basis.frequencies": w["basis.frequencies"][None]}),
        "weight 'basis.frequencies' has shape [1, 20], expected 1 dimensions",
    ),
    "extra layer": (
        lambda w: w.update({"interactions.3.mix_u.weight": w["interactions.2.mix_u.weight"]}),
        "unexpected weight 'interactions.3.mix_u.weight'",
    ),
    "fewer features everywhere but one": (
        lambda w: w.update({"embedding.weight": w["embedding.weight"][:, :-1].contiguous()}),
        "weight 'interactions.0.context_in.weight_t' has shape [45, 45], expected [44, 44]",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampered_weights_are_refused_by_both_operators(case, tiny_student, rng):
    change, message = TAMPERING[case]
    weights, layers, cutoff, epsilon = settings(tiny_student)
    weights = tampered(weights, change)
    positions, species = random_molecule(5, len(tiny_student.elements), rng)
    src, dst = torch.tensor([0, 1]), torch.tensor([1, 0])
    with pytest.raises(RuntimeError, match=re.escape(message)):
        torch.ops.mlffd.painn_all_pairs_forces(species, positions, None, weights, layers, cutoff, epsilon)
    with pytest.raises(RuntimeError, match=re.escape(message)):
        torch.ops.mlffd.painn_forces(
            species, src, dst, positions[dst] - positions[src], weights, layers, cutoff, epsilon
        )


def test_layer_count_is_checked_against_the_weights(tiny_student, rng):
    weights, _, cutoff, epsilon = settings(tiny_student)
    positions, species = random_molecule(5, len(tiny_student.elements), rng)
    with pytest.raises(RuntimeError, match="weight 'interactions.3.context_in.weight_t' is missing"):
        torch.ops.mlffd.painn_all_pairs_forces(species, positions, None, weights, 4, cutoff, epsilon)
    with pytest.raises(RuntimeError, match="unexpected weight 'interactions.2"):
        torch.ops.mlffd.painn_all_pairs_forces(species, positions, None, weights, 2, cutoff, epsilon)
    with pytest.raises(RuntimeError, match="at least one layer"):
        torch.ops.mlffd.painn_all_pairs_forces(species, positions, None, weights, 0, cutoff, epsilon)


def test_kernel_refuses_bad_arguments(tiny_student, rng):
    """Mixed dtypes, species or atoms out of range: a clear error from the kernel, never a wild read."""
    positions, species = random_molecule(5, len(tiny_student.elements), rng)
    src, dst = torch.tensor([0, 1]), torch.tensor([1, 0])
    vectors = positions[dst] - positions[src]
    args = settings(tiny_student)
    with pytest.raises(RuntimeError, match="is Double, expected Float"):
        torch.ops.mlffd.painn_forces(species, src, dst, vectors.float(), *args)
    with pytest.raises(RuntimeError, match="species index -1 out of range"):
        torch.ops.mlffd.painn_all_pairs_forces(torch.tensor([0, -1, 0, 0, 0]), positions, None, *args)
    with pytest.raises(RuntimeError, match="out of range"):
        torch.ops.mlffd.painn_forces(species, src, torch.tensor([1, 7]), vectors, *args)


@pytest.mark.parametrize("atoms", [0, 1, 2])
def test_no_atoms_and_no_edges(tiny_student, atoms):
    """No atoms, or atoms too far apart for an edge (an MPI rank of LAMMPS with an empty domain, a
    single atom): every layer runs on nothing, energies are the elements' reference energies and
    forces 0, as autograd on the student gives them."""
    positions = torch.tensor([[0.0, 0.0, 0.0], [20.0, 0.0, 0.0]], dtype=torch.float64)[:atoms]
    species = torch.tensor([1, 0])[:atoms]
    energies, forces = torch.ops.mlffd.painn_all_pairs_forces(species, positions, None, *settings(tiny_student))
    none = torch.zeros(0, dtype=torch.long)
    edge_energies, edge_forces = torch.ops.mlffd.painn_forces(
        species, none, none, torch.zeros(0, 3, dtype=torch.float64), *settings(tiny_student)
    )
    expected_energies, expected_forces = autograd_reference(tiny_student, positions, species, NO_CELL, NO_PBC)
    for got, got_forces in ((energies, forces), (edge_energies, edge_forces)):
        assert got.shape == (atoms,) and got_forces.shape == (atoms, 3)
        assert torch.equal(got_forces, torch.zeros(atoms, 3, dtype=torch.float64))
        if atoms:
            assert_close(got, expected_energies, TIGHT, "per-atom energies")
            assert_close(expected_forces, torch.zeros(atoms, 3, dtype=torch.float64), TIGHT, "autograd forces")


def test_library_path_names_torch_source_and_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFFD_CACHE_DIR", str(tmp_path))
    path = library_path()
    assert path.parent.parent == tmp_path
    assert "torch" in path.parent.name and path.parent.name.endswith(f"-cpu{cpu_signature()}")
    assert SOURCE.is_file()
    assert {header.name for header in HEADERS} >= {"painn.h", "painn_reverse.h", "gemm.h", "weights.h", "driver.h"}


def test_the_plugin_is_rebuilt_when_any_header_changes():
    """The LAMMPS plugin's cache folder hashes every header of the kernel, as the kernel's does."""
    assert {path.resolve() for path in HEADERS} <= {path.resolve() for path in source_files()}


def test_without_a_compiler_auto_falls_back_to_portable(tmp_path):
    """A fresh process with no usable compiler and an empty cache: 'fused' is a one-line error, 'auto' warns
    and uses the portable kernel."""
    script = (
        "import warnings\n"
        "from mlff_distiller.models.kernel import KernelBuildError, load_kernel, resolve_kernel\n"
        "try:\n"
        "    load_kernel()\n"
        "except KernelBuildError as exc:\n"
        "    print('error:', str(exc).splitlines()[0])\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    print('auto:', resolve_kernel('auto'))\n"
        "print('warning:', caught[0].message)\n"
    )
    env = {**os.environ, "MLFFD_CACHE_DIR": str(tmp_path), "CXX": str(tmp_path / "no-such-g++"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "error: no C++ compiler" in result.stdout
    assert "auto: portable" in result.stdout
    assert "warning: using the portable (slower) CPU kernel" in result.stdout


def changed_student(student, change):
    """A copy of the portable student with ``change`` applied to its parameters in place: the
    independent reference for the kernel's weights changed the same way."""
    reference = copy.deepcopy(student)
    with torch.no_grad():
        change(reference.network)
    return reference


#: Kernel weights that are a student parameter as it is (same layout), that parameter, and an
#: in-place change applied to both.
IN_PLACE = {
    "readout_out.bias": (lambda network: network.readout[2].bias, lambda t: t.add_(0.25)),
    "readout_out.weight": (lambda network: network.readout[2].weight, lambda t: t.mul_(1.5)),
    "embedding.weight": (lambda network: network.embedding.weight, lambda t: t[1].add_(0.05)),
}


@pytest.fixture
def scripted_fused(tiny_student):
    """A scripted (not frozen) FusedStudentForces on one thread: its weights dictionary is the
    same object at every call, as in OpenMM's TorchForce."""
    return torch.jit.script(FusedStudentForces(tiny_student.requires_grad_(False), threads=1).eval())


def test_weights_cache_repeated_calls_are_equal(scripted_fused, tiny_student, rng):
    """The second call with the module's unchanged dictionary reuses the weights the first checked."""
    positions, species = random_molecule(9, len(tiny_student.elements), rng)
    first = scripted_fused(positions, species, NO_CELL, NO_PBC)
    second = scripted_fused(positions, species, NO_CELL, NO_PBC)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


@pytest.mark.parametrize("name", list(IN_PLACE))
def test_weights_cache_sees_an_in_place_change(name, scripted_fused, tiny_student, rng):
    """An entry changed in place (same tensor, same data pointer) between calls: the next call
    computes with the new values, as the student with the same change does under autograd."""
    positions, species = random_molecule(9, len(tiny_student.elements), rng)
    parameter, change = IN_PLACE[name]
    before, _ = scripted_fused(positions, species, NO_CELL, NO_PBC)
    change(scripted_fused.weights[name])
    energies, forces = scripted_fused(positions, species, NO_CELL, NO_PBC)
    reference = changed_student(tiny_student, lambda network: change(parameter(network)))
    expected_energies, expected_forces = autograd_reference(reference, positions, species, NO_CELL, NO_PBC)
    assert not torch.allclose(energies, before)
    assert_close(energies, expected_energies, TIGHT, "per-atom energies after the change")
    assert_close(forces, expected_forces, TIGHT, "forces after the change")


def test_weights_cache_readout_bias_shifts_energies_exactly(scripted_fused, tiny_student, rng):
    """``add_`` on the readout's output bias shifts every atom's energy by the same amount as the
    student with that bias raised, forces unchanged."""
    positions, species = random_molecule(9, len(tiny_student.elements), rng)
    before, before_forces = scripted_fused(positions, species, NO_CELL, NO_PBC)
    scripted_fused.weights["readout_out.bias"].add_(0.25)
    energies, forces = scripted_fused(positions, species, NO_CELL, NO_PBC)
    reference = changed_student(tiny_student, lambda network: network.readout[2].bias.add_(0.25))
    expected, _ = autograd_reference(reference, positions, species, NO_CELL, NO_PBC)
    original, _ = autograd_reference(tiny_student, positions, species, NO_CELL, NO_PBC)
    assert_close(energies - before, expected - original, TIGHT, "energy shift")
    assert_close(forces, before_forces, TIGHT, "forces")


def test_weights_cache_refuses_a_resized_entry(scripted_fused, tiny_student, rng):
    """``resize_`` of an entry of the cached dictionary: the shape check's error, not a crash, and
    the entry resized back computes as before."""
    positions, species = random_molecule(9, len(tiny_student.elements), rng)
    before, _ = scripted_fused(positions, species, NO_CELL, NO_PBC)
    bias = scripted_fused.weights["readout_out.bias"]
    value = bias.clone()
    bias.resize_(2)
    with pytest.raises(RuntimeError, match=re.escape("weight 'readout_out.bias' has shape [2], expected [1]")):
        scripted_fused(positions, species, NO_CELL, NO_PBC)
    bias.resize_(1).copy_(value)
    energies, _ = scripted_fused(positions, species, NO_CELL, NO_PBC)
    assert torch.equal(energies, before)


def test_weights_cache_non_contiguous_entry(tiny_student, rng):
    """A dictionary with a non-contiguous entry (a strided view with the same values) is read again
    at every call, not kept: same results as the contiguous one, and an in-place change of that
    entry, whose contiguous copy the kernel reads, is seen at the next call."""
    positions, species = random_molecule(9, len(tiny_student.elements), rng)
    weights, layers, cutoff, epsilon = settings(tiny_student)
    name = "readout_out.weight"
    parameter, change = IN_PLACE[name]
    strided = torch.empty(1, 2 * weights[name].shape[1], dtype=torch.float64)[:, ::2]
    weights[name] = strided.copy_(weights[name])
    assert not weights[name].is_contiguous()

    def call():
        return torch.ops.mlffd.painn_all_pairs_forces(species, positions, None, weights, layers, cutoff, epsilon, 1)

    expected_energies, expected_forces = autograd_reference(tiny_student, positions, species, NO_CELL, NO_PBC)
    for _ in range(2):
        energies, forces = call()
        assert_close(energies, expected_energies, TIGHT, "per-atom energies")
        assert_close(forces, expected_forces, TIGHT, "forces")
    change(weights[name])
    reference = changed_student(tiny_student, lambda network: change(parameter(network)))
    expected_energies, expected_forces = autograd_reference(reference, positions, species, NO_CELL, NO_PBC)
    energies, forces = call()
    assert_close(energies, expected_energies, TIGHT, "per-atom energies after the change")
    assert_close(forces, expected_forces, TIGHT, "forces after the change")
