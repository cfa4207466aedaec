"""``mlffd check-engines``: the same configuration through every engine, one table of differences."""

import argparse

from ..data import resolve_model, resolve_structure
from ..inputs import TOLERANCE

ORDER = 45

ENGINES = ["ase", "openmm", "lammps"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check-engines",
        help="compare energy, forces and virial of PyTorch, ASE, OpenMM and LAMMPS on one structure",
        description=(
            "Evaluate one structure with the direct PyTorch student, the ASE calculator, OpenMM (Reference "
            "platform, TorchForce) and LAMMPS (pair_style mlffd), all in float64, and print one table of "
            "differences against the direct student: energy (eV), largest force-component difference "
            "(eV/Å) and largest virial difference (eV; virial = sum r x f = -dE/dstrain). Relative figures "
            "are divided by |E|, the largest force component and the largest virial component. MODEL is a "
            "checkpoint, or a file of 'mlffd export': an OpenMM export runs in OpenMM, a LAMMPS export in "
            "LAMMPS, the other engines run the checkpoint it was exported from (or --checkpoint). Energies, "
            "forces and analytic virials must agree within --tolerance (default 1e-8; 1e-3 for a float32 "
            "export). OpenMM's virial is a five-point finite-strain derivative (strain step h 1e-5 or 1e-6) "
            "whose round-off is about eps*|E|/h: it must agree within its own error estimate (per component the "
            "larger of 1.5*eps*|E|/h and the change between steps h and 2h, Frobenius norm over components), "
            "shown as 'tol dW'. Exit code 0 when every engine agrees, 1 otherwise, 2 for bad input."
        ),
    )
    parser.add_argument(
        "model",
        type=resolve_model,
        help="student checkpoint (.ckpt), bundled student, or a model exported by 'mlffd export' (.pt)",
    )
    parser.add_argument(
        "structure",
        type=resolve_structure,
        help="molecule or periodic box: XYZ/extXYZ/PDB/SDF file, bundled structure or SMILES",
    )
    parser.add_argument(
        "--checkpoint",
        type=resolve_model,
        default=None,
        help="reference checkpoint for an exported MODEL (default: the one recorded in the export, if unchanged)",
    )
    parser.add_argument(
        "--engines", nargs="+", choices=ENGINES, default=ENGINES, help="engines to compare (default: all)"
    )
    parser.add_argument(
        "--tolerance",
        type=TOLERANCE,
        default=None,
        help="largest relative difference of energy, forces and analytic virials (default: 1e-8, 1e-3 for a float32 export)",
    )
    parser.set_defaults(func=run_check_engines)


def run_check_engines(args: argparse.Namespace) -> int:
    from ..errors import MLFFDError
    from ..models import read_checkpoint
    from ..structures import check_for_model, read_structure
    from ..validation.consistency import compare_engines, resolve_models

    models = resolve_models(args.model, args.checkpoint)
    for engine in ("openmm", "lammps"):
        if getattr(models, engine) is not None and engine not in args.engines:
            raise MLFFDError(f"{args.model} is a {engine} export, but --engines leaves {engine} out")
    atoms = read_structure(args.structure)
    payload = read_checkpoint(models.checkpoint)
    check_for_model(
        atoms, payload["elements"], payload["cutoff"], str(args.structure), f"the model {models.checkpoint}"
    )
    rows = compare_engines(models, atoms, args.engines, args.tolerance)
    _print_header(args, models, atoms)
    _print_table(rows)
    failed = [row.engine for row in rows if not row.agrees()]
    if failed:
        print(f"verdict: DISAGREE beyond the tolerances: {', '.join(failed)}")
        return 1
    print("verdict: all engines agree within the tolerances")
    return 0


def _print_header(args: argparse.Namespace, models, atoms) -> None:
    kind = "periodic box" if atoms.pbc.all() else "molecule"
    print(f"{args.structure}: {len(atoms)} atoms, {kind}; reference: PyTorch (direct), float64")
    print(f"  PyTorch, ASE: {models.checkpoint}")
    for engine in ("openmm", "lammps"):
        if engine in args.engines:
            print(f"  {'OpenMM' if engine == 'openmm' else 'LAMMPS'}: {models.describe(engine)}")


def _print_table(rows) -> None:
    from ..validation.finite_strain import ENERGY_ROUNDING, STENCIL_ROUNDING, STRAIN_STEPS

    header = (
        f"{'engine':<27} {'energy (eV)':>20} {'|dE| (eV)':>10} {'rel dE':>9} {'max|dF| eV/Å':>13} {'rel dF':>9} "
        f"{'tol E,F':>8} {'max|dW| (eV)':>13} {'rel dW':>9} {'tol dW':>8}  virial from"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        virial = (
            f"{row.virial_difference:>13.2e} {row.virial_relative:>9.1e} {row.virial_tolerance:>8.1e}"
            if row.virial_difference is not None
            else f"{'n/a':>13} {'':>9} {'':>8}"
        )
        print(
            f"{row.engine:<27} {row.energy:>20.12f} {row.energy_difference:>10.2e} {row.energy_relative:>9.1e} "
            f"{row.force_difference:>13.2e} {row.force_relative:>9.1e} {row.tolerance:>8.1e} {virial}  {row.virial_method}"
        )
    if any(row.virial_method.startswith("finite strain") for row in rows):
        steps = " or ".join(f"{step:.0e}" for step in STRAIN_STEPS)
        print(
            f"finite strain: tol dW is the stencil's error estimate: per component the larger of the round-off "
            f"bound {STENCIL_ROUNDING * ENERGY_ROUNDING:g}*eps*|E|/h (eps of the engine's dtype) and |W(h) - W(2h)|, "
            f"Frobenius norm, over max|W|, at least tol E,F (h {steps}, the one with the smaller estimate)"
        )
