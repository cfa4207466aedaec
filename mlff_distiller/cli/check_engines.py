"""``mlffd check-engines``: the same configuration through every engine, one table of differences."""

import argparse
from pathlib import Path

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
            "(eV/Å) and largest virial difference (eV; virial = sum r x f = -dE/dstrain; OpenMM's by "
            "finite strain). Relative figures are divided by |E|, the largest force component and the "
            "largest virial component. Exit code 0 when every engine agrees within --tolerance, 1 otherwise."
        ),
    )
    parser.add_argument("checkpoint", type=Path, help="student checkpoint (.ckpt)")
    parser.add_argument("structure", help="molecule or orthorhombic periodic box: XYZ/extXYZ/PDB/SDF file or SMILES")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=ENGINES, help="engines to compare (default: all)")
    parser.add_argument("--tolerance", type=float, default=None, help="largest relative difference accepted (default: 1e-8)")
    parser.set_defaults(func=run_check_engines)


def run_check_engines(args: argparse.Namespace) -> int:
    from ..plugin.consistency import TOLERANCE, compare_engines
    from ..structures import read_structure

    atoms = read_structure(args.structure)
    tolerance = args.tolerance if args.tolerance is not None else TOLERANCE
    rows = compare_engines(args.checkpoint, atoms, args.engines)
    kind = "periodic box" if atoms.pbc.all() else "molecule"
    print(f"{args.structure}: {len(atoms)} atoms, {kind}; reference: {rows[0].engine}, float64")
    header = f"{'engine':<27} {'energy (eV)':>20} {'|dE| (eV)':>10} {'rel dE':>9} {'max|dF| eV/Å':>13} {'rel dF':>9} {'max|dW| (eV)':>13} {'rel dW':>9}  virial from"
    print(header)
    print("-" * len(header))
    for row in rows:
        virial = (f"{row.virial_difference:>13.2e} {row.virial_relative:>9.1e}" if row.virial_difference is not None
                  else f"{'n/a':>13} {'':>9}")
        print(f"{row.engine:<27} {row.energy:>20.12f} {row.energy_difference:>10.2e} {row.energy_relative:>9.1e} "
              f"{row.force_difference:>13.2e} {row.force_relative:>9.1e} {virial}  {row.virial_method}")
    failed = [row.engine for row in rows if not row.agrees(tolerance)]
    if failed:
        print(f"verdict: DISAGREE beyond relative {tolerance:.0e}: {', '.join(failed)}")
        return 1
    print(f"verdict: all engines agree within relative {tolerance:.0e}")
    return 0
