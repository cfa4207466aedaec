"""Portable OpenMM exports in a plain OpenMM script, as a user writes it: ``import torch``,
``TorchForce("model.pt")`` with openmm-torch's defaults (the periodic flag set for a box), nothing
else. The script runs in its own process without mlff_distiller; its energies are checked against
a fresh evaluation of the student in Python, its forces against minus the central finite
difference of its own energy."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

import numpy as np
import pytest
from kit import ENGINE32, ENGINE64, FINITE_DIFFERENCE, assert_close

from mlff_distiller.export import export_openmm
from mlff_distiller.models import load_checkpoint
from mlff_distiller.structures import read_structure
from mlff_distiller.units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM

DATA = Path(__file__).resolve().parents[2] / "mlff_distiller" / "data"
#: Central finite-difference step (nm). Truncation error ~ h² F''' / 6 (4e-6 of the largest force on
#: ethanol at 1e-5 nm, 8e-8 at 1e-6 nm), rounding ~ 1e-16 |E| / h (1e-7 of it for aspirin).
STEP_NM = 1e-6

#: argv: model, platform, positions.npy (nm), box.npy or "-", atoms to displace ("0,3,7"), output.npz.
PLAIN_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch
    from openmmtorch import TorchForce
    import openmm
    from openmm import unit

    model, platform, positions_file, box_file, atoms, output = sys.argv[1:]
    positions = np.load(positions_file)
    system = openmm.System()
    for _ in positions:
        system.addParticle(1.0)
    force = TorchForce(model)
    if box_file != "-":
        system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) for row in np.load(box_file)))
        force.setUsesPeriodicBoundaryConditions(True)
    system.addForce(force)
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName(platform))

    def energy(x):
        context.setPositions(x)
        return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)

    context.setPositions(positions)
    state = context.getState(getEnergy=True, getForces=True)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    displaced = [int(i) for i in atoms.split(",")]
    gradient = np.zeros((len(displaced), 3))
    for row, i in enumerate(displaced):
        for k in range(3):
            plus, minus = positions.copy(), positions.copy()
            plus[i, k] += {step}
            minus[i, k] -= {step}
            gradient[row, k] = (energy(plus) - energy(minus)) / (2 * {step})
    potential = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    np.savez(output, energy=potential, forces=forces, gradient=gradient, atoms=displaced)
    print("mlff_distiller imported:", "mlff_distiller" in sys.modules)
    """
).replace("{step}", repr(STEP_NM))


def run_plain_script(model: Path, atoms, platform: str, displaced, tmp_path: Path) -> dict:
    """Energy (kJ/mol), forces (kJ/mol/nm) and finite-difference gradient of ``displaced`` atoms from the plain script."""
    positions = tmp_path / "positions.npy"
    np.save(positions, atoms.positions / NM_TO_ANGSTROM)
    box = "-"
    if atoms.pbc.all():
        box = str(tmp_path / "box.npy")
        np.save(box, np.asarray(atoms.cell) / NM_TO_ANGSTROM)
    output = tmp_path / f"{platform}.npz"
    result = subprocess.run(
        [sys.executable, "-c", PLAIN_SCRIPT, str(model), platform, str(positions), box,
         ",".join(map(str, displaced)), str(output)],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mlff_distiller imported: False" in result.stdout
    return dict(np.load(output))


def student_reference(checkpoint: Path, atoms):
    """Energy (kJ/mol) and forces (kJ/mol/nm) of the checkpoint's student, evaluated afresh in float64."""
    student = load_checkpoint(checkpoint, dtype=torch.float64)
    cell = torch.tensor(np.asarray(atoms.cell)) if atoms.pbc.all() else None
    pbc = torch.ones(3, dtype=torch.bool) if atoms.pbc.all() else None
    energy, forces = student.energy_and_forces(torch.tensor(atoms.positions), student.species(atoms.numbers), cell, pbc)
    return float(energy) * EV_TO_KJ_PER_MOL, forces.numpy() * EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM


@pytest.mark.parametrize(
    "student, structure, displaced",
    [
        ("organic-tiny", "molecules/ethanol.xyz", range(9)),
        ("organic-standard", "molecules/aspirin.xyz", range(21)),
        (
            "water-standard",
            "systems/water-32.xyz",
            [0, 1, 2, 40, 95],
        ),  # periodic box: a water across a face, and others
    ],
)
def test_plain_torchforce_runs_the_export(student, structure, displaced, tmp_path):
    checkpoint = DATA / "students" / f"{student}.ckpt"
    atoms = read_structure(DATA / structure)
    model = export_openmm(checkpoint, tmp_path / "model.pt", topology=DATA / structure)
    result = run_plain_script(model, atoms, "Reference", list(displaced), tmp_path)
    energy, forces = student_reference(checkpoint, atoms)
    assert_close(result["energy"], energy, ENGINE64, "plain-script energy")
    assert_close(result["forces"], forces, ENGINE64, "plain-script forces against the student")
    assert_close(result["forces"][result["atoms"]], -result["gradient"], FINITE_DIFFERENCE, "forces against -dE/dx")
    assert np.abs(result["forces"]).max() > 1.0  # kJ/mol/nm: not a comparison of zeros


def test_float32_export_on_the_cpu_platform(tmp_path):
    """A float32 periodic export on OpenMM's CPU platform (single-precision forces) agrees to float32 rounding."""
    checkpoint = DATA / "students" / "water-standard.ckpt"
    atoms = read_structure(DATA / "systems" / "water-32.xyz")
    model = export_openmm(
        checkpoint, tmp_path / "water.pt", topology=DATA / "systems" / "water-32.xyz", precision="float32"
    )
    result = run_plain_script(model, atoms, "CPU", [0], tmp_path)
    energy, forces = student_reference(checkpoint, atoms)
    assert_close(result["energy"], energy, ENGINE32, "float32 energy")
    assert_close(result["forces"], forces, 1e-3, "float32 forces")  # verify.OPENMM_TOLERANCE: float32 rounding


def test_the_lines_mlffd_export_prints_run_the_file(tmp_path):
    """``mlffd export`` prints what a plain script needs; those lines, pasted into one, run the periodic box."""
    checkpoint = DATA / "students" / "water-standard.ckpt"
    structure = DATA / "systems" / "water-32.xyz"
    command = [str(Path(sys.executable).parent / "mlffd"), "export", str(checkpoint), "--engine", "openmm",
               "--topology", str(structure), "-o", "water.pt"]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = [line.strip() for line in result.stdout.split("to use it:\n")[1].splitlines()]
    assert [line.split("  #")[0] for line in printed[:3]] == [
        "import torch",
        "from openmmtorch import TorchForce",
        'force = TorchForce("water.pt")',
    ]
    assert "setOutputsForces" not in result.stdout and "load_kernel" not in result.stdout
    atoms = read_structure(structure)
    np.save(tmp_path / "positions.npy", atoms.positions / NM_TO_ANGSTROM)
    np.save(tmp_path / "box.npy", np.asarray(atoms.cell) / NM_TO_ANGSTROM)
    imports = [line for line in printed if line.startswith(("import ", "from "))]
    script = "\n".join(
        imports
        + ["import numpy as np", "import openmm", "positions = np.load('positions.npy')", "system = openmm.System()",
         "for _ in positions:", "    system.addParticle(1.0)",
         "system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) for row in np.load('box.npy')))"]
        + [line for line in printed if line not in imports]
        + ["context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName('Reference'))",
           "context.setPositions(positions)",
           "print(context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole))"]
    )  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert_close(
        float(run.stdout.split()[-1]), student_reference(checkpoint, atoms)[0], ENGINE64, "energy of the printed lines"
    )
