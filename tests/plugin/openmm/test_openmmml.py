"""OpenMM-ML: ``MLPotential("mlff-distiller", modelPath=...)`` through the ``openmmml.potentials`` entry point."""

import torch

import numpy as np
import openmm
import pytest
from kit import ENGINE32, ENGINE64, assert_close
from openmm import app, unit
from openmmml import MLPotential

from mlff_distiller.models import Student, preset, save_checkpoint
from mlff_distiller.plugin.openmm import build_system, structure_to_openmm
from mlff_distiller.units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM

REFERENCE = openmm.Platform.getPlatformByName("Reference")


@pytest.fixture(scope="module")
def student_and_checkpoint(tmp_path_factory):
    torch.manual_seed(5)
    student = Student(preset("ultra-tiny")).double().eval()
    return student, save_checkpoint(student, tmp_path_factory.mktemp("model") / "student.ckpt")


def _energy(system, positions, groups=-1):
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005), REFERENCE)
    context.setPositions(positions)
    state = context.getState(getEnergy=True, getForces=True, groups=groups)
    return state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole), state.getForces(asNumpy=True)._value


def test_create_system_equals_build_system(student_and_checkpoint):
    _, checkpoint = student_and_checkpoint
    structure = structure_to_openmm("CC(=O)O")
    system = MLPotential("mlff-distiller", modelPath=str(checkpoint)).createSystem(structure.topology)
    energy, forces = _energy(system, structure.positions)
    expected, expected_forces = _energy(build_system(structure, checkpoint), structure.positions)
    assert energy == expected and np.array_equal(forces, expected_forces)
    assert any(isinstance(f, openmm.CMMotionRemover) for f in system.getForces())


def test_mixed_system_student_solute_in_tip3p_water(student_and_checkpoint):
    """One water molecule with the student, the rest amber14/TIP3P: the ML force group is the student's energy."""
    student, checkpoint = student_and_checkpoint
    forcefield = app.ForceField("amber14-all.xml", "amber14/tip3p.xml")
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(forcefield, boxSize=openmm.Vec3(1.6, 1.6, 1.6) * unit.nanometer)
    topology, positions = modeller.topology, modeller.positions
    mm_system = forcefield.createSystem(topology, nonbondedMethod=app.PME, nonbondedCutoff=0.7 * unit.nanometer)
    ml_atoms = [atom.index for atom in next(topology.residues()).atoms()]
    potential = MLPotential("mlff-distiller", modelPath=str(checkpoint))
    mixed = potential.createMixedSystem(topology, mm_system, ml_atoms, forceGroup=1)

    ml_energy, ml_forces = _energy(mixed, positions, groups={1})
    xyz = torch.tensor(np.array(positions.value_in_unit(unit.angstrom)))[ml_atoms]
    cell = torch.tensor(np.array(topology.getPeriodicBoxVectors().value_in_unit(unit.angstrom)))
    numbers = [atom.element.atomic_number for atom in topology.atoms()]
    expected, expected_forces = student.energy_and_forces(
        xyz, student.species([numbers[i] for i in ml_atoms]), cell, torch.ones(3, dtype=torch.bool)
    )
    assert_close(ml_energy / EV_TO_KJ_PER_MOL, expected, ENGINE64, "ML group energy")
    assert_close(
        ml_forces[ml_atoms] / (EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM), expected_forces, ENGINE64, "ML group forces"
    )
    assert np.all(np.delete(ml_forces, ml_atoms, axis=0) == 0)

    context = openmm.Context(mixed, openmm.VerletIntegrator(0.0005), REFERENCE)
    context.setPositions(positions)
    context.getIntegrator().step(5)
    assert np.isfinite(context.getState(getEnergy=True).getPotentialEnergy()._value)


def test_precision_is_validated_and_sets_the_dtype(student_and_checkpoint):
    """'single' and 'double' (None: double), at construction or in createSystem; anything else names the two."""
    from mlff_distiller.errors import MLFFDError

    _, checkpoint = student_and_checkpoint
    structure = structure_to_openmm("O")
    for bad in ("float32", "mixed", "Double"):
        with pytest.raises(MLFFDError, match="choose 'single' or 'double'"):
            MLPotential("mlff-distiller", modelPath=str(checkpoint), precision=bad)
        with pytest.raises(MLFFDError, match="choose 'single' or 'double'"):
            MLPotential("mlff-distiller", modelPath=str(checkpoint)).createSystem(structure.topology, precision=bad)
    energies = {}
    for construction, creation in [("single", None), ("double", "single"), (None, None), ("single", "double")]:
        potential = MLPotential("mlff-distiller", modelPath=str(checkpoint), precision=construction)
        energies[(construction, creation)] = _energy(
            potential.createSystem(structure.topology, precision=creation), structure.positions
        )[0]
    double = energies[(None, None)]
    assert energies[("single", "double")] == double
    assert energies[("single", None)] == energies[("double", "single")] != double  # float32 rounding
    # float32 rounding, relative to the energy's scale: this random student's energy is ~1e-3 kJ/mol
    assert energies[("single", None)] == pytest.approx(double, abs=ENGINE32 * 10.0)
