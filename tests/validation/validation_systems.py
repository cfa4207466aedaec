"""Trajectories for the validation tests, produced by real engines (OpenMM with its built-in forces, MDRun)."""

from pathlib import Path

import numpy as np
import openmm
from openmm import app, unit

#: Argon Lennard-Jones parameters.
SIGMA_NM, EPSILON_KJ, MASS_AMU = 0.34, 0.996, 39.948


def lj_fluid_run(
    directory: Path,
    timestep_fs: float,
    steps: int,
    report_every: int,
    cells: int = 5,
    temperature_K: float = 120.0,
    seed: int = 1,
) -> dict[str, Path]:
    """NVE Lennard-Jones argon (cells^3 atoms, reduced density 0.8) in OpenMM; writes PDB, DCD and a StateDataReporter CSV.

    Returns the paths ``pdb``, ``dcd`` and ``csv``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    spacing = SIGMA_NM / 0.8 ** (1 / 3)
    box = cells * spacing
    grid = np.array([(i, j, k) for i in range(cells) for j in range(cells) for k in range(cells)], dtype=float)
    positions = (grid + 0.5) * spacing
    topology = app.Topology()
    chain = topology.addChain()
    argon = app.Element.getBySymbol("Ar")
    for _ in range(len(positions)):
        topology.addAtom("AR", argon, topology.addResidue("AR", chain))
    topology.setPeriodicBoxVectors(np.eye(3) * box * unit.nanometer)
    system = openmm.System()
    system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) * box for row in np.eye(3)))
    force = openmm.NonbondedForce()
    force.setNonbondedMethod(openmm.NonbondedForce.CutoffPeriodic)
    force.setCutoffDistance(0.8)
    force.setUseSwitchingFunction(True)
    force.setSwitchingDistance(0.7)
    force.setUseDispersionCorrection(False)
    for _ in range(len(positions)):
        system.addParticle(MASS_AMU)
        force.addParticle(0.0, SIGMA_NM, EPSILON_KJ)
    system.addForce(force)
    system.addForce(openmm.CMMotionRemover())
    integrator = openmm.VerletIntegrator(timestep_fs * unit.femtoseconds)
    simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(positions * unit.nanometer)
    simulation.context.setVelocitiesToTemperature(temperature_K * unit.kelvin, seed)
    paths = {"pdb": directory / "lj.pdb", "dcd": directory / "lj.dcd", "csv": directory / "lj.csv"}
    with open(paths["pdb"], "w") as handle:
        app.PDBFile.writeFile(topology, positions * 10 * unit.angstrom, handle)
    simulation.reporters.append(app.DCDReporter(str(paths["dcd"]), report_every))
    simulation.reporters.append(
        app.StateDataReporter(
            str(paths["csv"]),
            report_every,
            step=True,
            time=True,
            potentialEnergy=True,
            kineticEnergy=True,
            totalEnergy=True,
            temperature=True,
        )
    )
    simulation.step(steps)
    for reporter in simulation.reporters:
        if hasattr(reporter, "_out"):
            reporter._out.close()
    del simulation
    return paths


def write_h5md(
    path: Path,
    numbers,
    positions_A: np.ndarray,
    time_ps: np.ndarray,
    observables: dict[str, np.ndarray],
    forces_eV_per_A: np.ndarray = None,
    box_A: float = None,
    energy_unit: str = "eV",
) -> Path:
    """An H5MD file in the layout of docs/trajectory-format.md, written with h5py (nm, kJ/mol/nm).

    Energies are given in eV and stored in ``energy_unit`` ("eV" or "kJ mol-1", as a foreign writer might).
    """
    import h5py

    n_frames, n_atoms = positions_A.shape[:2]
    steps = np.arange(n_frames)
    with h5py.File(path, "w") as f:
        f.require_group("h5md").attrs["version"] = np.array([1, 1])
        particles = f.require_group("particles/system")

        def series(group, values, unit):
            value = group.create_dataset("value", data=values)
            value.attrs["unit"] = unit
            group.create_dataset("step", data=steps)
            group.create_dataset("time", data=time_ps).attrs["unit"] = "ps"

        series(particles.require_group("position"), positions_A / 10.0, "nm")
        if forces_eV_per_A is not None:
            series(particles.require_group("force"), forces_eV_per_A * 96.485332123310018 * 10.0, "kJ mol-1 nm-1")
        box = particles.require_group("box")
        box.attrs["dimension"] = 3
        box.attrs["boundary"] = np.array(3 * (["periodic"] if box_A else ["none"]), dtype="S8")
        if box_A:
            series(box.require_group("edges"), np.tile(np.eye(3) * box_A / 10.0, (n_frames, 1, 1)), "nm")
        scale = 96.485332123310018 if energy_unit == "kJ mol-1" else 1.0
        for name, values in observables.items():
            if name == "temperature":
                series(f.require_group(f"observables/{name}"), np.asarray(values, dtype=float), "K")
            else:
                series(f.require_group(f"observables/{name}"), np.asarray(values, dtype=float) * scale, energy_unit)
    return path


def pdb_topology(path: Path, numbers) -> Path:
    """A PDB topology of one residue per atom with element columns, first frame at the origin."""
    from ase.data import chemical_symbols

    topology = app.Topology()
    chain = topology.addChain()
    residue = topology.addResidue("MOL", chain)
    for i, z in enumerate(numbers):
        symbol = chemical_symbols[int(z)]
        topology.addAtom(f"{symbol}{i + 1}", app.Element.getBySymbol(symbol), residue)
    with open(path, "w") as handle:
        app.PDBFile.writeFile(topology, np.zeros((len(numbers), 3)) * unit.angstrom, handle)
    return path


def student_run(directory: Path, time_ps: float = 0.2, audit_every: int = 0) -> Path:
    """A short NVE run of the bundled organic-standard student on ethanol with ``mlffd md``'s MDRun.

    ``audit_every`` > 0 audits against GFN2-xTB every that many steps (frames every 5 steps).
    """
    from mlff_distiller.data import bundled_student
    from mlff_distiller.plugin.openmm import MDRun, MDSettings

    directory = Path(directory)
    ethanol = Path(__file__).resolve().parents[2] / "mlff_distiller" / "data" / "molecules" / "ethanol.xyz"
    settings = MDSettings(
        structure=str(ethanol),
        model=str(bundled_student("organic-standard")),
        time=time_ps,
        timestep=0.5,
        report_interval=5,
        checkpoint_interval=100,
        precision="double",
        platform="CPU",
        audit_every=audit_every,
        teacher="gfn2-xtb" if audit_every else None,
    )
    MDRun(settings, directory / "run").run(progress=False)
    return directory / "run"
