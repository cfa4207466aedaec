"""``mlffd validate`` and ``mlffd compare``: a report with a verdict for a run, and a comparison of models."""

import argparse
from pathlib import Path

from ..data import resolve_model
from ..inputs import COUNT, FRACTION_BELOW_ONE, FRAME_INTERVAL_PS, POSITIVE_TEMPERATURE_K, SECONDS, TIME_PS
from ..reference_md import REFERENCE_BUDGET_S, REFERENCE_TIME_PS

ORDER = 50

VALIDATE_EPILOG = """\
what is measured (definitions and units are repeated in every report):
  energy conservation   drift rate (meV/atom/ps), drift-to-fluctuation ratio, relative drift (%);
                        NVE only, or a thermostatted run's stored conserved quantity (LAMMPS econserve)
  temperature           production mean against the target (%); in NVT/NPT, var(E_kin) against canonical
  force fidelity        teacher vs student forces on --frames frames: RMSE, MAE (eV/Å), R², angles (deg)
  stability             bond collapse (> 0.5 Å), hydrogen loss (> 2.5 Å), explosion (> 10,000 K),
                        non-bonded close contacts (e.g. O…O < 2.2 Å)
  structure             RDF or h(r) against --reference (normalised error); with --reference teacher,
                        bonds and angles against a short teacher MD (share of frames outside its range)
  model deviation       committee force spread per frame (eV/Å; recorded by mlffd md --committee, or
                        --committee here), frames above DP-GEN's trust levels 0.05 and 0.15 eV/Å, its
                        correlation with the teacher's per-frame error; reported, not judged

units come from the source: H5MD unit attributes; the LAMMPS log's 'units' line (metal: eV, eV/Å;
real: kcal/mol, kcal/(mol·Å)); OpenMM CSV in kJ/mol; ASE .traj and extended XYZ in eV, eV/Å. A file
whose units cannot be known is refused with the option to pass.

default pass lines (change them with --thresholds FILE.toml, keys as in docs/validation.md):
  stable >= 10 ps, |relative drift| < 1 %, force RMSE <= 0.2 eV/Å, MAE <= 0.15 eV/Å,
  median angle <= 15 deg, R² >= 0.9, |drift rate| < 0.5 meV/atom/ps, drift/fluctuation < 1,
  |mean temperature - target| <= 10 %, var(E_kin)/canonical in 0.5 to 2 (NVT, NPT),
  bonds and angles outside the teacher's range on <= 10 % of frames (--reference teacher)

exit codes: 0 the verdict passes, 1 it fails, 2 bad input.
examples:
  mlffd validate runs/aspirin -o reports/aspirin
  mlffd validate traj.dcd --top system.pdb --energies state.csv --teacher none -o reports/lj
  mlffd validate water.lammpstrj --top water.data --energies log.lammps -o reports/lammps
  mlffd validate md.traj --frame-interval 0.01 -o reports/ase
  mlffd validate md.traj --frame-interval 0.01 --model organic-tiny --committee organic-standard -o reports/devi
  mlffd validate mlmm.dcd --top complex.pdb --energies state.csv --select "resname LIG" --model lig.ckpt -o reports/mlmm
"""


def register(subparsers) -> None:
    validate = subparsers.add_parser(
        "validate",
        help="validate an MD run: drift, forces against the teacher, stability; a report with a verdict",
        description="Validate an MD run of a student (a run directory of mlffd md, or any trajectory\n"
        "MDAnalysis reads) and write report.json, report.md, report.html and PNG plots, with a\n"
        "pass/fail verdict. Definitions and thresholds: docs/validation.md.",
        epilog=VALIDATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument(
        "run", type=Path, metavar="RUN_DIR_OR_TRAJ", help="run directory of mlffd md, or a trajectory file"
    )
    validate.add_argument(
        "--top", type=Path, metavar="FILE", help="topology file (PDB, PSF, GRO, ...) for trajectories without one"
    )
    validate.add_argument(
        "--energies",
        type=Path,
        metavar="FILE",
        help="energy file when the trajectory has none: OpenMM StateDataReporter CSV (kJ/mol) or "
        "LAMMPS log (units metal or real); default: found next to the trajectory",
    )
    validate.add_argument(
        "--units",
        choices=["metal", "real"],
        help="LAMMPS unit style of a LAMMPS dump whose log does not state it (metal: eV, eV/Å, ps; "
        "real: kcal/mol, kcal/(mol·Å), fs)",
    )
    validate.add_argument(
        "--ensemble",
        choices=["nve", "nvt", "npt"],
        help="ensemble of the run (default: from mlffd md's settings or the LAMMPS log's fixes, else NVE "
        "with a note); NVT/NPT: drift is not applicable unless a conserved quantity is stored",
    )
    validate.add_argument(
        "--temperature",
        type=POSITIVE_TEMPERATURE_K,
        metavar="K",
        help="target temperature in K (default: the thermostat's, or the temperature mlffd md started at)",
    )
    validate.add_argument(
        "--select",
        metavar="SELECTION",
        help='MDAnalysis selection of the student\'s atoms (ML/MM runs), e.g. "resname LIG": forces, '
        "stability and structure are judged on them alone; 'all' judges every atom",
    )
    validate.add_argument(
        "--frame-interval",
        type=FRAME_INTERVAL_PS,
        metavar="PS",
        help="time between frames of an ASE .traj or extended XYZ, in ps (default: from an ASE MD log "
        "next to it with one row per frame), or of a LAMMPS dump without its log (with --units)",
    )
    validate.add_argument(
        "--teacher",
        default="gfn2-xtb",
        metavar="NAME",
        help="teacher for force fidelity (default: gfn2-xtb); 'none' evaluates no teacher: the force "
        "RMSE then comes from the run's audits, if any, and the other force criteria fail as not measured",
    )
    validate.add_argument(
        "--frames",
        type=COUNT,
        default=50,
        metavar="N",
        help="frames evaluated by the teacher, spread over the run (default: 50)",
    )
    validate.add_argument(
        "--workers", type=COUNT, default=1, metavar="N", help="processes evaluating the teacher (default: 1)"
    )
    validate.add_argument(
        "--model",
        type=resolve_model,
        metavar="CKPT",
        help="student checkpoint or bundled student, needed when the trajectory stores no forces or with --select "
        "(default: the run's model)",
    )
    validate.add_argument(
        "--committee",
        nargs="+",
        type=resolve_model,
        metavar="CKPT",
        help="further student checkpoints or bundled students: with the validated student (--model, default the "
        "run's) they form a committee evaluated on every frame, reported as the model deviation (teacher-free, not "
        "judged). A run of mlffd md --committee is reported from its recorded deviation without this option",
    )
    validate.add_argument(
        "--reference",
        type=Path,
        metavar="TRAJ|teacher",
        help="reference trajectory or run directory (e.g. the teacher's run) for the RDF comparison; or "
        "'teacher': a short teacher MD from the run's first frame, whose bond, angle and dihedral "
        "distributions the run's must stay inside (molecules: seconds to a minute; see --reference-time)",
    )
    validate.add_argument(
        "--reference-time",
        type=TIME_PS,
        default=REFERENCE_TIME_PS,
        metavar="PS",
        help="length of the teacher MD of --reference teacher in ps: a fixed number of steps from a fixed seed, "
        f"so the same run gets the same reference on any machine (default: {REFERENCE_TIME_PS:g}; aspirin with "
        "GFN2-xTB: under a minute)",
    )
    validate.add_argument(
        "--reference-budget",
        type=SECONDS,
        default=REFERENCE_BUDGET_S,
        metavar="S",
        help=f"wall-time safety cap of that teacher MD in s (default: {REFERENCE_BUDGET_S:g}); a reference it cuts "
        "short of --reference-time is not used: the criterion reads 'not measured (why)'",
    )
    validate.add_argument(
        "--reference-top", type=Path, metavar="FILE", help="topology of the reference (default: --top)"
    )
    validate.add_argument(
        "--thresholds", type=Path, metavar="FILE.toml", help="TOML file of pass lines (see docs/validation.md)"
    )
    validate.add_argument(
        "--warmup",
        type=FRACTION_BELOW_ONE,
        default=0.2,
        metavar="FRACTION",
        help="fraction of the run left out of the drift fit (default: 0.2)",
    )
    validate.add_argument(
        "-o", "--output", type=Path, required=True, metavar="REPORT_DIR", help="report directory to write"
    )
    validate.add_argument("--overwrite", action="store_true", help="replace an existing report in the output directory")
    validate.add_argument("--quiet", action="store_true", help="no progress bars")
    validate.set_defaults(func=run_validate)

    compare = subparsers.add_parser(
        "compare",
        help="compare validation reports of several models: a table, a figure and a recommendation each",
        description="Compare reports written by mlffd validate (for example the three student sizes) and "
        "recommend each model for production, limited use (saying for what), or not at all.",
    )
    compare.add_argument(
        "reports", nargs="+", type=Path, metavar="REPORT_DIR", help="report directories of mlffd validate"
    )
    compare.add_argument(
        "-o", "--output", type=Path, required=True, metavar="DIR", help="directory for comparison.md, .json and .png"
    )
    compare.add_argument("--overwrite", action="store_true", help="replace an existing comparison")
    compare.set_defaults(func=run_compare)


def run_validate(args: argparse.Namespace) -> int:
    from ..safe_write import check_output
    from ..validation import validate
    from ..validation.render import event_lines

    inputs = [args.run, args.top, args.reference, args.reference_top, args.thresholds, args.energies, args.model]
    inputs += args.committee or []
    check_output(args.output, inputs=inputs, overwrite=args.overwrite, folder=True)  # before the analysis
    teacher = None if args.teacher.lower() == "none" else args.teacher
    report = validate(
        args.run,
        topology=args.top,
        teacher=teacher,
        frames=args.frames,
        reference=args.reference,
        reference_topology=args.reference_top,
        thresholds=args.thresholds,
        energies=args.energies,
        student=args.model,
        workers=args.workers,
        warmup_fraction=args.warmup,
        progress=not args.quiet,
        units=args.units,
        ensemble=args.ensemble,
        temperature=args.temperature,
        select=args.select,
        frame_interval_ps=args.frame_interval,
        reference_time_ps=args.reference_time,
        reference_budget_s=args.reference_budget,
        committee=args.committee,
    )
    report.write(args.output, overwrite=args.overwrite, inputs=inputs)
    verdict = report.data["verdict"]
    width = max(len(r["criterion"]) for r in verdict["criteria"])
    for note in report.data["notes"]:
        print(f"note: {note}")
    for line in event_lines(report.data):
        print(f"event: {line}")
    for row in verdict["criteria"]:
        value = (
            "not measured"
            if row["value"] is None
            else f"{row['value']:.4g} {row['unit'] if row['unit'] != '1' else ''}".strip()
        )
        threshold = row["threshold"]
        line = " to ".join(f"{t:g}" for t in threshold) if isinstance(threshold, list) else f"{threshold:g}"
        print(f"  {row['criterion']:<{width}}  {value:>24}  {row['comparison']} {line}  {row['status']}")
    print(f"verdict: {'PASS' if report.passed else 'FAIL'}; report in {args.output / 'report.html'}")
    return report.exit_code


def run_compare(args: argparse.Namespace) -> int:
    from ..validation import compare_reports

    compare_reports(args.reports, args.output, overwrite=args.overwrite)
    print((args.output / "comparison.md").read_text())
    return 0
