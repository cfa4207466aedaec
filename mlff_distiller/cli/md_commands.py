"""``mlffd md``: production MD with a student in OpenMM, writing a run directory."""

import argparse
import sys
from pathlib import Path

from ..data import resolve_model, resolve_structure
from ..inputs import (
    FORCE_EV_PER_A,
    FRICTION_PER_PS,
    INTERVAL_STEPS,
    POSITIVE_TEMPERATURE_K,
    SEED,
    STEPS,
    TEMPERATURE_K,
    THREADS,
    TIME_PS,
    TIMESTEP_FS,
    WARMUP_PS,
)

ORDER = 40


def register(subparsers) -> None:
    md = subparsers.add_parser(
        "md",
        help="run NVE/NVT molecular dynamics with a student in OpenMM (H5MD trajectory, energies, checkpoints)",
        description=(
            "Run molecular dynamics of a structure with a student force field in OpenMM (TorchForce). "
            "Writes RUN_DIR: trajectory.h5md (positions, velocities, forces, box, energies; readable by "
            "MDAnalysis), energies.csv, topology.pdb, checkpoint.chk, settings.json, summary.json. "
            "The run stops cleanly (exit code 1) when the energy becomes non-finite, the temperature "
            "exceeds --temperature-limit, or an audit fails. --equilibrate PS first runs PS picoseconds of "
            "Langevin dynamics at --temperature, then the production, on one time axis."
        ),
        epilog="example: mlffd md aspirin --model organic-standard --equilibrate 2 --temperature 300 --time 10 -o run1",
    )
    md.add_argument(
        "structure",
        nargs="?",
        type=resolve_structure,
        help="structure file (PDB, XYZ, SDF, ...), bundled structure (e.g. aspirin) or SMILES; omit with --restart",
    )
    md.add_argument(
        "--model",
        metavar="MODEL",
        type=resolve_model,
        help="student checkpoint (.ckpt), OpenMM export (.pt) or bundled student (e.g. organic-standard)",
    )
    md.add_argument(
        "--ensemble", choices=["nve", "nvt"], default="nve", help="nve: Verlet; nvt: Langevin middle (default: nve)"
    )
    md.add_argument(
        "--temperature",
        type=TEMPERATURE_K,
        metavar="K",
        default=300.0,
        help="initial and bath (NVT, --equilibrate) temperature in K (default: 300)",
    )
    md.add_argument(
        "--friction",
        type=FRICTION_PER_PS,
        metavar="1/PS",
        default=1.0,
        help="Langevin friction in 1/ps (NVT, --equilibrate; default: 1)",
    )
    md.add_argument("--timestep", type=TIMESTEP_FS, metavar="FS", default=0.5, help="time step in fs (default: 0.5)")
    md.add_argument(
        "--equilibrate",
        type=WARMUP_PS,
        metavar="PS",
        default=0.0,
        help="Langevin warm-up at --temperature before the production, in ps; the trajectory holds both, "
        "settings.json records production_start_ps (default: 0, none)",
    )
    md.add_argument(
        "--time",
        type=TIME_PS,
        metavar="PS",
        help="production time in ps, after --equilibrate (default: 10; on --restart, as first requested)",
    )
    md.add_argument(
        "--report-interval",
        type=INTERVAL_STEPS,
        metavar="STEPS",
        default=100,
        help="steps between trajectory frames (default: 100)",
    )
    md.add_argument(
        "--checkpoint-interval",
        type=INTERVAL_STEPS,
        metavar="STEPS",
        help="steps between checkpoints (default: 10 x report interval)",
    )
    md.add_argument(
        "--platform",
        choices=["auto", "CUDA", "OpenCL", "CPU", "Reference"],
        default="auto",
        help="OpenMM platform (default: auto: CUDA or OpenCL where present, else Reference, which has less "
        "per-step overhead than CPU when the student is the only force)",
    )
    md.add_argument(
        "--precision",
        choices=["single", "mixed", "double"],
        default="mixed",
        help="OpenMM precision; 'double' also runs a checkpoint's student in float64, otherwise float32 (default: mixed)",
    )
    md.add_argument("--cuda-graphs", action="store_true", help="capture the model in CUDA graphs (CUDA platform)")
    md.add_argument(
        "--kernel",
        choices=["auto", "fused", "portable"],
        default="auto",
        help="how a checkpoint's student computes on CPU: fused (one compiled C++ kernel, built once on first use), "
        "portable (TorchScript operations) or auto (fused where it compiles; default). Exports keep their own",
    )
    md.add_argument(
        "--threads",
        type=THREADS,
        metavar="N",
        help="CPU threads of the fused kernel (and of OpenMM's CPU platform); forces equal one thread's up to "
        "summation order (default: OMP_NUM_THREADS when set, else the cores this process may use)",
    )
    md.add_argument("--minimize", action="store_true", help="minimise the energy before the first step")
    md.add_argument(
        "--seed",
        type=SEED,
        metavar="N",
        default=0,
        help="seed of the initial velocities and Langevin noise (default: 0)",
    )
    md.add_argument(
        "--temperature-limit",
        type=POSITIVE_TEMPERATURE_K,
        metavar="K",
        default=10000.0,
        help="stop above this temperature in K (default: 10000)",
    )
    md.add_argument(
        "--audit-every",
        type=STEPS,
        metavar="STEPS",
        default=0,
        help="steps between teacher audits (a multiple of --report-interval; default: none)",
    )
    md.add_argument("--teacher", metavar="NAME", help="teacher for audits, e.g. gfn2-xtb")
    md.add_argument(
        "--audit-max-rmse",
        type=FORCE_EV_PER_A,
        metavar="EV_PER_A",
        help="stop when the audited force RMSE exceeds this, in eV/Å",
    )
    md.add_argument(
        "--committee",
        nargs="+",
        type=resolve_model,
        metavar="CKPT",
        help="extra student checkpoints or bundled students: with --model they form a committee whose largest "
        "and mean per-atom force deviation (eV/Å) is recorded at every frame (observables/force_deviation_max "
        "and _mean, energies.csv), a teacher-free error estimate (see docs/validation.md); --committee B gives "
        "two members. Costs one evaluation per member per frame, none per step. --restart continues with the run's "
        "committee and refuses another",
    )
    md.add_argument("-o", "--output", type=Path, metavar="RUN_DIR", help="run directory to write")
    md.add_argument("--overwrite", action="store_true", help="replace an existing run directory's files")
    md.add_argument(
        "--restart", type=Path, metavar="RUN_DIR", help="continue RUN_DIR from its last checkpoint, appending"
    )
    md.add_argument("--quiet", action="store_true", help="no progress bar")
    md.set_defaults(func=run_md)


def run_md(args: argparse.Namespace) -> int:
    from ..errors import SimulationError
    from ..plugin.openmm import MDRun, MDSettings

    if args.restart is not None:
        if args.structure or args.model or args.equilibrate:
            raise SimulationError(
                "--restart takes its structure, model and --equilibrate from RUN_DIR; do not give them"
            )
        run = MDRun.restart(args.restart, time=args.time, committee=args.committee, threads=args.threads)
    else:
        if not args.structure or not args.model or args.output is None:
            raise SimulationError("give STRUCTURE, --model and -o RUN_DIR (or --restart RUN_DIR)")
        settings = MDSettings(
            structure=args.structure,
            model=str(args.model),
            ensemble=args.ensemble,
            temperature=args.temperature,
            timestep=args.timestep,
            time=10.0 if args.time is None else args.time,
            equilibrate=args.equilibrate,
            report_interval=args.report_interval,
            checkpoint_interval=args.checkpoint_interval or 10 * args.report_interval,
            friction=args.friction,
            platform=args.platform,
            precision=args.precision,
            cuda_graphs=args.cuda_graphs,
            kernel=args.kernel,
            minimize=args.minimize,
            seed=args.seed,
            temperature_limit=args.temperature_limit,
            audit_every=args.audit_every,
            teacher=args.teacher,
            audit_max_rmse=args.audit_max_rmse,
            committee=[str(m) for m in args.committee] if args.committee else None,
            threads=args.threads,
        )
        run = MDRun(settings, args.output, overwrite=args.overwrite)
    result = run.run(progress=not args.quiet)
    print(
        f"{result.message}; {result.simulated_time_ps:.3f} ps in {result.wall_time_s:.1f} s "
        f"({result.ns_per_day:.2f} ns/day on {result.platform}); final T {result.final_temperature_K:.1f} K, "
        f"E_total {result.final_total_energy_eV:.6f} eV ({result.phase})"
        + (
            f"; max audit force RMSE {result.max_audit_force_rmse_eV_per_A:.4f} eV/Å"
            if result.max_audit_force_rmse_eV_per_A is not None
            else ""
        )
        + (
            f"; max committee force deviation {result.max_force_deviation_eV_per_A:.4f} eV/Å"
            if result.max_force_deviation_eV_per_A is not None
            else ""
        )
        + f"; files in {run.run_dir}"
    )
    if result.exit_code > 1:  # a signal: say how to continue (exit codes 130 and 143 as a shell reports them)
        print(f"mlffd: {result.stop_reason}; continue with mlffd md --restart {run.run_dir}", file=sys.stderr)
    return result.exit_code
