"""Decorrelated liquid-water configurations of the bundled 32-molecule box, from cheap classical MD.

The teacher (GFN2-xTB) costs seconds per call on the 96-atom box, so it cannot drive the MD
that explores the liquid. Here flexible TIP3P (Amber14 parameters, ``rigidWater=False``, no
constraints, PME with a 0.45 nm cutoff, under half the 0.9856 nm box) runs Langevin dynamics
(0.5 fs step, friction 1/ps) in OpenMM from ``water-32.xyz`` at each temperature: an
equilibration, then one snapshot every interval. The snapshots go, with their cell and periodic
boundaries, into one extended XYZ (positions in Å, molecules kept whole, oxygens wrapped into
the box; info key ``temperature_K`` per frame) for ``mlffd sample --label`` to label with the
teacher. Temperatures alternate frame by frame, so any first part of the file, labelled before
an interruption, covers them all equally and the whole run time. The run is deterministic for a given seed (OpenMM CPU platform, one thread).

Each snapshot is checked: every O-H bond length (Å) and the closest O…O distance (Å, minimum
image) are printed per temperature, and the script fails if a bond leaves 0.85-1.10 Å or two
oxygens come closer than 2.3 Å.

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python mlff_distiller/data/recipes/water_configurations.py \\
        -o build/water/configurations.xyz

Options: ``--temperatures 300 350`` (K), ``--snapshots 150`` per temperature, ``--interval 1``
(ps between snapshots), ``--equilibration 10`` (ps), ``--seed 1``.
"""

import argparse
from pathlib import Path

import numpy as np
import openmm
from ase import Atoms
from ase.io import read, write
from openmm import app, unit

STRUCTURE = Path(__file__).resolve().parents[1] / "systems" / "water-32.xyz"

#: Time step (fs), Langevin friction (1/ps) and nonbonded cutoff (nm).
TIMESTEP_FS = 0.5
FRICTION_PER_PS = 1.0
CUTOFF_NM = 0.45

#: Pass lines of the snapshot check: O-H bond range and closest O…O (Å).
BOND_RANGE = (0.85, 1.10)
MIN_OO = 2.3


def whole_molecules(atoms: Atoms) -> np.ndarray:
    """Positions (Å) of an O, H, H, ... box with each H moved to the image nearest its O."""
    positions = atoms.get_positions()
    cell = np.diag(atoms.cell.array)
    oxygens = positions[0::3]
    for offset in (1, 2):
        delta = positions[offset::3] - oxygens
        positions[offset::3] = oxygens + delta - cell * np.round(delta / cell)
    return positions


def water_system(n_molecules: int, side_nm: float) -> tuple[app.Topology, openmm.System]:
    """Topology and flexible-TIP3P System of ``n_molecules`` waters in a cube of ``side_nm`` nm."""
    topology = app.Topology()
    chain = topology.addChain()
    oxygen, hydrogen = app.Element.getBySymbol("O"), app.Element.getBySymbol("H")
    for _ in range(n_molecules):
        residue = topology.addResidue("HOH", chain)
        o = topology.addAtom("O", oxygen, residue)
        for name in ("H1", "H2"):
            topology.addBond(o, topology.addAtom(name, hydrogen, residue))
    topology.setPeriodicBoxVectors(np.eye(3) * side_nm * unit.nanometer)
    system = app.ForceField("amber14/tip3p.xml").createSystem(
        topology,
        nonbondedMethod=app.PME,
        nonbondedCutoff=CUTOFF_NM * unit.nanometer,
        constraints=None,
        rigidWater=False,
    )
    return topology, system


def snapshots(atoms: Atoms, temperature: float, count: int, interval_ps: float, equilibration_ps: float, seed: int):
    """``count`` snapshots (Å, molecules whole) of Langevin MD at ``temperature`` K after equilibration."""
    side_nm = atoms.cell.array[0, 0] / 10
    topology, system = water_system(len(atoms) // 3, side_nm)
    integrator = openmm.LangevinMiddleIntegrator(
        temperature * unit.kelvin, FRICTION_PER_PS / unit.picosecond, TIMESTEP_FS * unit.femtosecond
    )
    integrator.setRandomNumberSeed(seed)
    platform = openmm.Platform.getPlatformByName("CPU")
    simulation = app.Simulation(topology, system, integrator, platform, {"Threads": "1"})
    simulation.context.setPositions(whole_molecules(atoms) / 10 * unit.nanometer)
    simulation.minimizeEnergy()
    simulation.context.setVelocitiesToTemperature(temperature * unit.kelvin, seed)
    steps_per_ps = round(1000 / TIMESTEP_FS)
    simulation.step(round(equilibration_ps * steps_per_ps))
    frames = []
    for _ in range(count):
        simulation.step(round(interval_ps * steps_per_ps))
        state = simulation.context.getState(positions=True, enforcePeriodicBox=True)
        frames.append(state.getPositions(asNumpy=True).value_in_unit(unit.angstrom))
    return frames


def geometry(positions: np.ndarray, side: float) -> tuple[np.ndarray, float]:
    """O-H bond lengths and the closest O…O distance (minimum image), in Å, of an O, H, H, ... cube of side Å."""
    oxygens = positions[0::3]
    bonds = []
    for offset in (1, 2):
        delta = positions[offset::3] - oxygens
        delta -= side * np.round(delta / side)
        bonds.append(np.linalg.norm(delta, axis=1))
    pairs = oxygens[:, None, :] - oxygens[None, :, :]
    pairs -= side * np.round(pairs / side)
    distances = np.linalg.norm(pairs, axis=-1)
    closest = distances[np.triu_indices(len(oxygens), k=1)].min()
    return np.concatenate(bonds), float(closest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="extended XYZ to write")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 350.0], help="K")
    parser.add_argument("--snapshots", type=int, default=150, help="per temperature")
    parser.add_argument("--interval", type=float, default=1.0, help="ps between snapshots")
    parser.add_argument("--equilibration", type=float, default=10.0, help="ps before the first snapshot")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.output.exists():
        parser.error(f"{args.output} exists; remove it first")
    atoms = read(STRUCTURE)
    if atoms.get_chemical_symbols() != ["O", "H", "H"] * (len(atoms) // 3):
        parser.error(f"{STRUCTURE} is not an O, H, H, ... water box")
    side = atoms.cell.array[0, 0]
    runs = []
    for index, temperature in enumerate(args.temperatures):
        positions = snapshots(atoms, temperature, args.snapshots, args.interval, args.equilibration, args.seed + index)
        checks = [geometry(p, side) for p in positions]
        bonds = np.concatenate([b for b, _ in checks])
        closest = np.array([c for _, c in checks])
        print(
            f"{temperature:g} K: {len(positions)} snapshots, O-H {bonds.min():.3f}-{bonds.max():.3f} Å "
            f"(mean {bonds.mean():.3f}), closest O…O {closest.min():.3f} Å (median per frame {np.median(closest):.3f})"
        )
        if bonds.min() < BOND_RANGE[0] or bonds.max() > BOND_RANGE[1] or closest.min() < MIN_OO:
            raise SystemExit(f"{temperature:g} K: a snapshot fails the geometry check")
        runs.append([Atoms(atoms.get_chemical_symbols(), positions=p, cell=atoms.cell, pbc=True) for p in positions])
        for frame in runs[-1]:
            frame.info["temperature_K"] = temperature
    frames = [frame for group in zip(*runs, strict=True) for frame in group]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write(args.output, frames, format="extxyz")
    print(f"wrote {len(frames)} configurations to {args.output}")


if __name__ == "__main__":
    main()
