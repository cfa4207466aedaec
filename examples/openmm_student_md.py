"""Use a student in your own OpenMM script: build the System, then simulate as usual.

    python openmm_student_md.py STUDENT.ckpt [STRUCTURE] [STEPS]

STRUCTURE is a PDB, XYZ or SDF file or a SMILES string (default: ethanol). The System has
element masses, the student's TorchForce and a CMMotionRemover; everything else (integrator,
reporters, platform) is plain OpenMM.
"""

import sys

import openmm
from openmm import app, unit

import mlff_distiller as mlffd  # loads torch, then openmm-torch, on first use


def main(model: str, structure: str = "CCO", steps: int = 200) -> None:
    molecule = mlffd.structure_to_openmm(structure)
    system = mlffd.build_system(molecule, model)
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.5 * unit.femtoseconds)
    # the student is the only force: without a GPU, Reference steps faster than CPU (no thread pool to sync)
    simulation = app.Simulation(molecule.topology, system, integrator, openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(molecule.positions)
    simulation.minimizeEnergy()
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    simulation.reporters.append(
        app.StateDataReporter(sys.stdout, 50, step=True, potentialEnergy=True, temperature=True)
    )
    simulation.step(steps)


if __name__ == "__main__":
    main(sys.argv[1], *(sys.argv[2:3] or ["CCO"]), *(int(a) for a in sys.argv[3:4]))
