"""Run a self-contained exported student with nothing but OpenMM, openmm-torch and PyTorch.

Export the model for your system first (the topology is baked into the file):

    mlffd export student.ckpt --engine openmm --topology molecule.pdb -o molecule.pt

then run this script; it does not import mlff_distiller:

    python openmm_plain_script.py molecule.pdb molecule.pt [steps]

(A file exported with ``--kernel fused`` runs faster on CPU but needs ``import mlff_distiller;
mlff_distiller.load_kernel()`` after ``import torch`` and ``force.setOutputsForces(True)``: see
docs/openmm.md.)

It prints the initial potential energy (kJ/mol) and the energies after the steps.
"""

import sys

import torch  # noqa: F401  (import torch before openmmtorch so its libraries are found)

import openmm
import openmmtorch
from openmm import app, unit


def main(pdb_path: str, model_path: str, steps: int = 100) -> None:
    pdb = app.PDBFile(pdb_path)
    system = openmm.System()
    for atom in pdb.topology.atoms():
        system.addParticle(atom.element.mass)
    force = openmmtorch.TorchForce(model_path)  # the model returns the energy; openmm-torch takes its gradient
    box = pdb.topology.getPeriodicBoxVectors()
    if box is not None:
        system.setDefaultPeriodicBoxVectors(*box)
        force.setUsesPeriodicBoundaryConditions(True)
    system.addForce(force)
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.5 * unit.femtoseconds)
    # the student is the only force: without a GPU, Reference steps faster than CPU (no thread pool to sync);
    # on a GPU use "CUDA"
    simulation = app.Simulation(pdb.topology, system, integrator, openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(pdb.positions)
    energy = simulation.context.getState(getEnergy=True).getPotentialEnergy()
    print(f"initial potential energy: {energy.value_in_unit(unit.kilojoule_per_mole)!r} kJ/mol")
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    simulation.step(steps)
    state = simulation.context.getState(getEnergy=True)
    print(f"after {steps} steps: potential {state.getPotentialEnergy()}, kinetic {state.getKineticEnergy()}")
    print("mlff_distiller imported:", "mlff_distiller" in sys.modules)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 100)
