"""Shared test kit: named tolerances, physical constants, structure generators and consistency asserts.

Every test module imports its tolerances and constants from here, so that "how close is close"
is decided in one place. Each tolerance is named after where the difference comes from (float64
summation order, float32 storage, text rounding, an SCF's starting guess). Bands of statistical
expectation (the spread of a random sample a test draws) stay next to the draw they belong to.
Fixtures (seeded students, the checkpoint factory ``make_checkpoint``, the in-process CLI runner
``mlffd``) live in conftest.py.
"""

import contextlib
import io
from typing import NamedTuple

import torch

import numpy as np

#: Agreement expected between two float64 evaluations of the same arithmetic.
EXACT = 1e-12
#: Agreement of float64 evaluations that differ in summation order or transforms.
TIGHT = 1e-10
#: Agreement between float64 engines (OpenMM, LAMMPS, PyTorch) on one configuration.
ENGINE64 = 1e-9
#: Agreement between float32 evaluations.
ENGINE32 = 1e-5
#: Agreement of forces with a central finite difference of the energy (float64).
FINITE_DIFFERENCE = 1e-6
#: A float64 figure recomputed independently: a hand formula, another library, another code path.
RECOMPUTED = 1e-9
#: Values that passed through float32 (trajectories stored in float32: DCD, H5MD, MDAnalysis
#: positions and times): relative, or absolute for values of order one (Å, ps).
FLOAT32_STORED = 1e-5
#: A figure computed from many values stored in float32 (an RMSE over float32 positions and
#: forces, the teacher evaluated on the rounded positions): relative.
FLOAT32_FIGURES = 1e-4
#: Values read back from text written with 6-8 significant digits (LAMMPS logs and dumps): relative.
TEXT_DIGITS = 1e-6
#: One run's figures from LAMMPS ``units real`` against ``units metal``: each log rounds in its own
#: unit (kcal/mol against eV), relative.
REAL_UNITS_TEXT = 1e-4
#: Two evaluations of one configuration by GFN2-xTB whose SCF started from different guesses:
#: relative energy, and relative force figures through a trajectory stored in float32.
SCF_START = 1e-8
SCF_START_FORCES = 1e-4
#: The same, after teacher MD steps from the two evaluations (Å for positions, eV for energies,
#: eV/Å for forces): the SCF tolerance grows along the trajectory.
SCF_START_MD = 1e-4
SCF_START_FORCES_ABS = 1e-3
#: An angle from arccos of a cosine near ±1 (deg): sqrt(eps) rounding of the argument.
ARCCOS_DEG = 1e-5
#: Positions through a PDB file (3 decimals), Å, after unwrapping differences of two of them.
PDB_POSITIONS = 2e-3
#: Harmonic frequencies from the analytic-Hessian normal modes against ASE's finite-difference
#: vibrations (step 0.01 Å): relative.
VIBRATIONS = 2e-3

# -- the engine matrix (tests/validation/test_engine_matrix.py) -------------------------------------
#: (2) A report's figure against the same figure computed here from the same numbers: the
#: arithmetic is the same, only the summation order and the unit factors' last digits differ.
SAME_NUMBERS = 1e-7
#: (2) Force figures against a teacher evaluated here afresh, one new calculator per frame. GFN2-xTB's
#: forces depend on the SCF's starting guess: a calculator reused from frame to frame (as a
#: validator may do) gave forces up to 2e-4 eV/Å away from fresh ones on ethanol (|F| up to 1.3
#: eV/Å), which moves RMSE (~0.1 eV/Å) and angles by up to ~1e-3 relative.
FRESH_TEACHER = 3e-3
#: Times read from a DCD: its header stores the time step as a float32 (in AKMA units).
DCD_TIME = 1e-7
#: (1) Engines against each other. They integrate the same trajectory in float64, but write it
#: with different precision: LAMMPS's dump 6 significant digits (~1e-5 Å, ~1e-6 eV/Å relative),
#: its thermo 8 (1e-5 eV on ethanol's -310 eV), H5MD and DCD float32.
ENGINE_POSITIONS_A = 1e-4  # Å, largest deviation of any coordinate
ENGINE_TOTAL_ENERGY = 1e-7  # relative, total energy (LAMMPS thermo: 8 significant digits)
#: meV/atom/ps, drift slope of the 96-atom water run (six thermo rows over 0.025 ps after the warm-up,
#: sum of squared time offsets 4.4e-4 ps²): LAMMPS `units real` prints E_tot (about -1e5 kcal/mol)
#: to 0.01 kcal/mol = 4.3e-4 eV, uniform rounding of sigma 1.2e-4 eV, slope error
#: 1.2e-4 / 0.021 / 96 = 0.06 meV/atom/ps; four of those (observed: 0.106 with the refined water student).
ENGINE_SLOPE_MEV = 0.25
ENGINE_RELATIVE_DRIFT_PERCENT = 2e-5  # %, twice the 1e-7 relative rounding of E_tot, in %
#: Relative, force figures of two reports on the same frames, and forces of two engines' dumps: the
#: dump's positions are rounded to ~5e-6 Å, which moves GFN2-xTB's forces by ~1e-4 eV/Å (bonds ~30
#: eV/Å²), against an RMSE of 0.1 eV/Å.
ENGINE_FORCES = 1e-3
#: Degrees, median and mean force angle of two reports on the same frames: the ~1e-4 eV/Å above turns
#: a single force of 0.01-0.1 eV/Å (the smallest counted) by 0.06-0.6°, so a median over hundreds of atoms
#: moves by ~0.01° (ethanol, organic-ultra-tiny: 4.782° vs 4.773°); relative to a better student's smaller
#: angles that exceeds ENGINE_FORCES.
#: On the water box, relaxed by GFN2-xTB, more teacher forces are that small (median angle 45°) and the
#: median moved by 0.0507° with the refined water student.
ENGINE_ANGLE_DEG = 0.1
ENGINE_DUMP_FORCES = 1e-4  # relative to the largest force: a dump's 6 digits against float32 H5MD
ENGINE_KINETIC = 1e-4  # relative, mean kinetic energy k_B T dof / 2
ENGINE_RATIO = 0.05  # drift-to-fluctuation ratio (same rounding of E_tot over std(E_kin))

# -- constants, independent of the package's own table (mlff_distiller.units) ----------------------
#: CODATA 2018 exact constants: elementary charge (C), Avogadro (1/mol), Boltzmann (J/K).
ELEMENTARY_CHARGE = 1.602176634e-19
AVOGADRO = 6.02214076e23
BOLTZMANN_J_PER_K = 1.380649e-23
#: kJ in one thermochemical kcal.
KJ_PER_KCAL = 4.184
#: LAMMPS's conversion of a virial per volume in eV/Å^3 to bar in metal units (``force->nktv2p``,
#: 1.6021765e6, as LAMMPS rounds it; CODATA gives 1.602176634e6).
NKTV2P_METAL = 1.6021765e6


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A random proper rotation matrix (3, 3)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def random_molecule(
    n_atoms: int, n_species: int, rng: np.random.Generator, spacing: float = 1.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (Å, float64) with no two atoms closer than ``spacing`` and random species indices."""
    points = []
    while len(points) < n_atoms:
        trial = rng.uniform(-2.5, 2.5, size=3)
        if all(np.linalg.norm(trial - p) > spacing for p in points):
            points.append(trial)
    species = rng.integers(0, n_species, size=n_atoms)
    return torch.tensor(np.array(points)), torch.tensor(species, dtype=torch.long)


def random_box(n_atoms: int, cell: np.ndarray, n_species: int, rng: np.random.Generator, spacing: float = 1.0):
    """Positions (Å) inside the periodic ``cell`` with minimum-image spacing, and species indices."""
    inverse = np.linalg.inv(cell)
    points = []
    while len(points) < n_atoms:
        trial = rng.uniform(0, 1, size=3) @ cell
        ok = True
        for p in points:
            d = trial - p
            d = d - np.round(d @ inverse) @ cell
            if np.linalg.norm(d) < spacing:
                ok = False
                break
        if ok:
            points.append(trial)
    species = rng.integers(0, n_species, size=n_atoms)
    return torch.tensor(np.array(points)), torch.tensor(species, dtype=torch.long)


def relative_error(a, b) -> float:
    """max |a - b| / max(max |b|, tiny)."""
    a, b = (
        x.detach().to(torch.float64) if isinstance(x, torch.Tensor) else torch.tensor(np.asarray(x, dtype=np.float64))
        for x in (a, b)
    )
    return float((a - b).abs().max() / max(float(b.abs().max()), 1e-300))


def assert_close(actual, expected, rtol: float, what: str = "value") -> None:
    """Assert agreement to ``rtol`` relative to the largest expected magnitude, with a readable message."""
    err = relative_error(actual, expected)
    assert err <= rtol, f"{what}: relative error {err:.3e} exceeds {rtol:.1e}"


class CliResult(NamedTuple):
    """What one ``mlffd`` call gave: exit code, standard output, standard error."""

    code: int
    out: str
    err: str


def run_mlffd(*args) -> CliResult:
    """``mlffd ARGS`` in this process (``mlff_distiller.cli.main``), its output captured.

    Arguments are turned into str (paths welcome); argparse's own exits (``--help``, usage errors)
    give their code too. Usable anywhere, module-scoped fixtures included; tests take it as the
    ``mlffd`` fixture.
    """
    from mlff_distiller.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return CliResult(code, out.getvalue(), err.getvalue())


def randomise_buffers(student) -> None:
    """Give the energy scale and reference energies non-trivial values, as after training."""
    with torch.no_grad():
        student.network.energy_scale.fill_(0.7)
        student.network.reference_energies.copy_(torch.linspace(-13.0, -2.0, len(student.elements)))
