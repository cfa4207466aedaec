"""TorchForce in real OpenMM contexts (CPU, Reference) against the direct PyTorch student."""

import torch

import numpy as np
import openmm
import pytest
from kit import ENGINE32, ENGINE64, assert_close, random_box, random_molecule
from openmm import app, unit

from mlff_distiller.plugin.openmm import build_system, load_force_model
from mlff_distiller.units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM


def _case(name: str, rng: np.random.Generator, n_species: int):
    """(positions Å, species, cell Å or None) for each geometry the issue lists."""
    if name == "molecule":
        positions, species = random_molecule(8, n_species, rng)
        return positions, species, None
    if name == "periodic box":
        cell = np.diag([11.0, 11.5, 12.0])
        return (*random_box(24, cell, n_species, rng, spacing=1.3), cell)
    if name == "molecule across the boundary":
        cell = np.diag([12.0, 12.0, 12.0])
        positions, species = random_molecule(8, n_species, rng)
        return positions - positions.mean(0) + torch.tensor([0.3, 11.8, 0.1]), species, cell
    if name == "box smaller than twice the cutoff":
        cell = np.array([[6.0, 0.0, 0.0], [1.0, 6.5, 0.0], [0.5, -1.0, 7.0]])
        return (*random_box(6, cell, n_species, rng, spacing=1.3), cell)
    raise ValueError(name)


def _topology(numbers, cell):
    topology = app.Topology()
    residue = topology.addResidue("MOL", topology.addChain())
    for z in numbers:
        topology.addAtom("X", app.Element.getByAtomicNumber(int(z)), residue)
    if cell is not None:
        topology.setPeriodicBoxVectors(cell / NM_TO_ANGSTROM * unit.nanometer)
    return topology


CASES = ["molecule", "periodic box", "molecule across the boundary", "box smaller than twice the cutoff"]


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("kernel", ["portable", "fused"])
@pytest.mark.parametrize("case", CASES)
def test_torchforce_equals_student(tiny_student, rng, platform, dtype, kernel, case):
    student = tiny_student.to(dtype)
    positions, species, cell = _case(case, rng, len(student.elements))
    numbers = [student.elements[int(s)] for s in species]
    model = load_force_model(student, dtype, kernel=kernel)
    assert model.metadata["kernel"] == kernel
    system = build_system(_topology(numbers, cell), model, remove_cm_motion=False)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))
    context.setPositions(positions.numpy() / NM_TO_ANGSTROM)
    state = context.getState(getEnergy=True, getForces=True)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) / EV_TO_KJ_PER_MOL
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer) / (
        EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM
    )

    cell_t = None if cell is None else torch.tensor(cell)
    pbc = None if cell is None else torch.ones(3, dtype=torch.bool)
    expected_energy, expected_forces = student.energy_and_forces(positions, species, cell_t, pbc)
    tolerance = ENGINE64 if dtype == torch.float64 else ENGINE32
    assert_close(energy, expected_energy, tolerance, f"{case} energy on {platform}")
    assert_close(forces, expected_forces, tolerance, f"{case} forces on {platform}")
    assert np.abs(forces).max() > 1e-3  # the comparison is not between two zeros


def test_skewed_cell_is_reduced_to_the_same_lattice(tiny_student, rng):
    """A triclinic cell in no standard orientation is rotated and reduced for OpenMM; the energy does not change."""
    from ase import Atoms

    from mlff_distiller.plugin.openmm import structure_to_openmm

    cell = np.array([[7.0, 0.5, 0.3], [5.5, 6.0, 0.2], [3.0, -4.0, 8.0]])
    positions, species = random_box(10, cell, len(tiny_student.elements), rng, spacing=1.3)
    numbers = [tiny_student.elements[int(s)] for s in species]
    structure = structure_to_openmm(Atoms(numbers=numbers, positions=positions.numpy(), cell=cell, pbc=True))
    context = openmm.Context(
        build_system(structure, tiny_student),
        openmm.VerletIntegrator(0.001),
        openmm.Platform.getPlatformByName("Reference"),
    )
    context.setPositions(structure.positions)
    energy = (
        context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) / EV_TO_KJ_PER_MOL
    )
    expected, _ = tiny_student.energy_and_forces(
        positions, species, torch.tensor(cell), torch.ones(3, dtype=torch.bool)
    )
    assert_close(energy, expected, ENGINE64, "energy in the reduced cell")
