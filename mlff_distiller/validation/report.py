"""Validate a run in one call and write its report: JSON, Markdown, self-contained HTML and PNG plots."""

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .. import inputs
from ..elements import symbols
from ..errors import MLFFDError
from ..inputs import COUNT, FRACTION_BELOW_ONE, FRAME_INTERVAL_PS, POSITIVE_TEMPERATURE_K, SECONDS, TIME_PS
from ..safe_write import output_folder, safe_write_text
from .drift import (
    FIT_FIGURES,
    MIN_FIT_ROWS,
    MIN_PRODUCTION_FRACTION_BEFORE_FAILURE,
    MIN_ROWS_BEFORE_FAILURE,
    EnergyDrift,
    judged_before_failure,
)
from .ensemble import Ensemble, resolve_ensemble
from .figures import finite_or_none, section_figures
from .force_statistics import audit_only_results
from .forces import ForceFidelity
from .internal import InternalCoordinates
from .model_deviation import ModelDeviation, has_recorded_deviation
from .plots import draw_all
from .render import render_html, render_markdown
from .selection import Selection, select_atoms
from .stability import FAILURE_LABELS, Stability, initial_positions
from .structure import StructureComparison
from .teacher_md import REFERENCE_BUDGET_S, REFERENCE_SEED, REFERENCE_TIME_PS, ReferenceCut, teacher_md
from .temperature import temperature_figures, temperature_note
from .thresholds import Thresholds
from .trajectory import atomic_numbers, audit_records, frame_atoms, open_run
from .verdict import verdict

#: Version of report.json's layout (see report.schema.json).
SCHEMA_VERSION = 2
SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
REPORT_FILES = ("report.json", "report.md", "report.html")
#: ``reference`` value that asks for a short teacher MD as the structural reference.
TEACHER_REFERENCE = "teacher"
#: Temperature of the teacher reference MD when the run states none (K).
DEFAULT_REFERENCE_TEMPERATURE_K = 300.0


@dataclass
class ValidationReport:
    """The outcome of :func:`validate`.

    Attributes
    ----------
    data : dict
        Everything ``report.json`` holds (figures with units and definitions, verdict, inputs).
    analyses : dict
        The ``results`` of each analysis that ran (``energy_drift``, ``force_fidelity``,
        ``stability``, ``structure``), for plots and further work.
    """

    data: dict
    analyses: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether every criterion of the verdict passed."""
        return bool(self.data["verdict"]["passed"])

    @property
    def exit_code(self) -> int:
        """0 when the verdict passes, 1 when it fails (the CLI's convention)."""
        return 0 if self.passed else 1

    def figure(self, section: str, key: str) -> float | None:
        """The value of one figure (None when not measured)."""
        return self.data["figures"].get(section, {}).get(key, {}).get("value")

    def write(self, directory: str | Path, overwrite: bool = False, inputs: Sequence[str | Path | None] = ()) -> Path:
        """Write report.json, report.md, report.html and the PNG plots into ``directory``.

        Each file is written beside its path and renamed into place (:mod:`~mlff_distiller.safe_write`);
        with ``overwrite``, PNGs of a previous report that this one does not draw are removed last.

        Parameters
        ----------
        directory : str or Path
            The report folder (created if missing).
        overwrite : bool
            Write into a folder that is not empty.
        inputs : sequence of paths
            What the report was made from (run, topology, ...): never overwritten, whatever ``overwrite`` says.

        Raises
        ------
        OverwriteError
            When the directory is not empty and ``overwrite`` is False.
        MLFFDError
            When ``directory`` is an input or a file, or cannot be written.
        """
        directory = output_folder(directory, inputs=inputs, overwrite=overwrite)
        previous_plots = set(directory.glob("*.png"))
        self.data["plots"] = draw_all(self.analyses, directory)
        text = {
            "report.json": json.dumps(self.data, indent=2, ensure_ascii=False) + "\n",
            "report.md": render_markdown(self.data),
            "report.html": render_html(self.data, directory),
        }
        for name in REPORT_FILES:
            safe_write_text(directory / name, text[name], inputs=inputs, overwrite=True)
        for stale in previous_plots - {directory / name for name in self.data["plots"]}:
            stale.unlink()
        return directory


def validate(
    path: str | Path,
    topology: str | Path | None = None,
    teacher: str | object | None = "gfn2-xtb",
    frames: int = 50,
    reference: str | Path | None = None,
    reference_topology: str | Path | None = None,
    thresholds: Thresholds | str | Path | None = None,
    energies: str | Path | None = None,
    student=None,
    workers: int = 1,
    warmup_fraction: float = 0.2,
    progress: bool = False,
    units: str | None = None,
    ensemble: str | None = None,
    temperature: float | None = None,
    select: str | None = None,
    frame_interval_ps: float | None = None,
    reference_time_ps: float = REFERENCE_TIME_PS,
    reference_budget_s: float = REFERENCE_BUDGET_S,
    committee: Sequence[str | Path] | None = None,
) -> ValidationReport:
    """Validate an MD run: energy drift, temperature, force fidelity against the teacher, stability; a verdict.

    Every input is checked before any analysis runs. Units come from the source (see
    :func:`open_run`); the ensemble from ``ensemble``, the run's settings or its LAMMPS log
    (see :func:`resolve_ensemble`); a run without energies is judged on everything else, its
    energy conservation reading "not measured".

    Parameters
    ----------
    path : str or Path
        A run directory of ``mlffd md``, a trajectory file MDAnalysis reads, an ASE ``.traj`` or
        extended XYZ file (see :func:`open_run`).
    topology : str or Path, optional
        Topology for trajectories without one.
    teacher : str, Teacher, ASE calculator or None
        Teacher for force fidelity ("gfn2-xtb" by default). None evaluates no teacher: the
        force RMSE then comes from the audits made during MD when the trajectory has them, and
        every other force criterion reads "not measured" (the verdict fails).
    frames : int
        Frames on which the teacher is evaluated, spread over the run.
    reference : str or Path, optional
        A reference trajectory (the teacher's run) for the RDF comparison, a run directory or a
        file; or ``"teacher"``: a short teacher MD from the run's first frame, whose bond, angle and
        dihedral distributions the run's are compared with (:class:`InternalCoordinates`).
    reference_topology : str or Path, optional
        Its topology (default: ``topology``).
    thresholds : Thresholds, TOML path or None
        Pass lines (default: :class:`Thresholds`).
    energies : str or Path, optional
        Energy file for trajectories without energies (OpenMM CSV, LAMMPS log, ASE MD log).
    student : Student or path, optional
        The student, needed when the trajectory stores no forces or a selection is judged
        (default: the run's model).
    workers : int
        Processes for the teacher (with a teacher given by name).
    warmup_fraction : float
        Fraction of the production ignored by the drift fit.
    progress : bool
        Show progress bars.
    units : str, optional
        LAMMPS unit style (metal or real) of a LAMMPS dump whose log does not state it.
    ensemble : str, optional
        ``nve``, ``nvt`` or ``npt``; by default from the run (NVE when nothing says, with a note).
    temperature : float, optional
        Target temperature in K (default: the thermostat's, or the temperature an mlffd run started at).
    select : str, optional
        MDAnalysis selection of the student's atoms (an ML/MM run): force fidelity, stability and
        structure are judged on them alone.
    frame_interval_ps : float, optional
        Time between the frames of an ASE trajectory, in ps.
    reference_time_ps, reference_budget_s : float
        Length (ps) and wall-time cap (s) of the teacher MD of ``reference="teacher"``.
    committee : sequence of checkpoint paths, optional
        Further students that, with the validated student (``student``, default the run's model)
        as first member, form a committee evaluated on every frame: the report's model deviation
        (:class:`ModelDeviation`). Without it, a trajectory of ``mlffd md --committee`` is reported
        from its recorded deviation. The model deviation informs; it is not part of the verdict.
    """
    inputs.check_all(  # the rules of mlffd validate's options
        [
            (COUNT, frames, "frames"),
            (COUNT, workers, "workers"),
            (FRACTION_BELOW_ONE, warmup_fraction, "warmup_fraction"),
            (TIME_PS, reference_time_ps, "reference_time_ps"),
            (SECONDS, reference_budget_s, "reference_budget_s"),
        ]
        + ([(POSITIVE_TEMPERATURE_K, temperature, "temperature")] if temperature is not None else [])
        + ([(FRAME_INTERVAL_PS, frame_interval_ps, "frame_interval_ps")] if frame_interval_ps is not None else [])
    )
    if str(reference) == TEACHER_REFERENCE and teacher is None:
        raise MLFFDError("--reference teacher runs the teacher's MD: it needs a teacher (--teacher)")
    if isinstance(student, (str, Path)):  # a damaged model file is refused before any analysis
        from ..models import load_checkpoint

        student = load_checkpoint(student)
    if thresholds is None:
        thresholds = Thresholds()
    elif not isinstance(thresholds, Thresholds):
        thresholds = Thresholds.from_toml(thresholds)
    run = open_run(path, topology, energies, units=units, frame_interval_ps=frame_interval_ps)
    universe = run.universe
    run_ensemble = resolve_ensemble(ensemble, temperature, run.settings, run.energies)
    selection = select_atoms(universe, select, from_mlffd=bool(run.settings))
    fidelity = None
    if teacher is not None:  # every input of the force comparison is checked before any analysis runs
        model = student if student is not None else run.model_path
        fidelity = ForceFidelity(
            selection.atoms, teacher, student=model, n_frames=frames, workers=workers, force_unit=run.force_unit
        )
    deviation = _model_deviation(selection, committee, student if student is not None else run.model_path)
    notes: list[str] = list(selection.notes)
    if run_ensemble.assumed:
        notes.append(
            "Nothing in the run states its ensemble: it was judged as NVE (pass --ensemble nvt or npt otherwise)."
        )
    analyses: dict = {}
    stability = Stability(
        selection.atoms,
        requested_time_ps=run.requested_time_ps,
        energies=run.energies,
        production_start_ps=run_ensemble.production_start_ps,
        initial_positions=lambda: initial_positions(run.topology, selection.atoms),  # read only if needed
    )
    analyses["stability"] = stability.run(**_progress(progress, "stability")).results
    unmeasured: dict[str, str] = {}  # section -> why its figures are not measured
    has_energies = run.energies is not None or run.has_energy_observables
    if has_energies:
        end_ps = analyses["stability"].failure_from_ps  # a failed run: only the rows before its first failure
        drift = EnergyDrift(
            universe,
            energies=run.energies,
            warmup_fraction=warmup_fraction,
            start_ps=run_ensemble.production_start_ps,
            conserved=run_ensemble.thermostatted,
            end_ps=end_ps,
        )
        analyses["energy_drift"] = drift.run(**_progress(progress, "energy drift")).results
        analyses["temperature"] = temperature_figures(
            drift.full_series, universe.atoms.n_atoms, run_ensemble, end_ps=end_ps
        )
        note = temperature_note(analyses["temperature"], run_ensemble)
        notes += [note] if note else []
        if end_ps is not None:
            note, unmeasured = _before_failure(analyses, run_ensemble.production_start_ps)
            notes.append(note)
    else:
        notes.append(
            "The run stores no energies and none were given (--energies): energy conservation and "
            "temperature are not measured; everything else is judged."
        )
    if fidelity is not None:
        analyses["force_fidelity"] = fidelity.run(**_progress(progress, "student forces")).results
    elif audit_records(universe) is not None:  # no teacher now: the audits made during MD give the RMSE
        analyses["force_fidelity"] = audit_only_results(audit_records(universe))
    if deviation is not None:
        deviation.run(**_progress(progress, "model deviation"))
        analyses["model_deviation"] = deviation.correlate(analyses.get("force_fidelity")).results
        notes.append(
            "The model deviation (the committee's force spread) is a teacher-free estimate of the error: it is "
            "reported, not judged, and does not change the verdict."
        )
    reference_info = None
    if str(reference) == TEACHER_REFERENCE:
        temperature_K = _reference_temperature(analyses.get("temperature"), run_ensemble)
        internal, reference_info, cut = teacher_reference(
            selection, teacher, temperature_K, reference_time_ps, reference_budget_s, progress
        )
        analyses["internal_coordinates"] = internal
        if cut:  # a reference shorter than asked would judge by the machine's load: not measured
            unmeasured["internal_coordinates"] = cut
            notes.append(f"Bonds and angles were not judged: {cut}.")
    elif reference is not None:
        ref = open_run(reference, reference_topology or topology)
        structure = StructureComparison(selection.atoms, ref.universe.atoms)
        analyses["structure"] = structure.run(**_progress(progress, "structure")).results
    figures = {name: section_figures(name, results) for name, results in analyses.items()}
    if not has_energies:
        figures = {
            "energy_drift": section_figures("energy_drift", {}),
            "temperature": section_figures("temperature", {}),
            **figures,
        }
    data = {
        "schema_version": SCHEMA_VERSION,
        "generated_by": _generator(),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "input": _describe_input(run, teacher, frames, reference, run_ensemble, selection),
        "figures": figures,
        "details": {
            **_details(analyses),
            **({"internal_reference": reference_info} if reference_info else {}),
            **({"not_measured": unmeasured} if unmeasured else {}),
        },
        "thresholds": thresholds.to_dict(),
        "notes": notes,
    }
    data["verdict"] = verdict(data["figures"], thresholds, data["input"]["ensemble"], reasons=unmeasured)
    return ValidationReport(data, analyses)


def _before_failure(analyses: dict, start_ps: float) -> tuple[str, dict[str, str]]:
    """What the energy and temperature figures of a failed run cover, in words, and why those not measured are not.

    Returns the report's note and ``{section: reason}`` for the sections with too few energy rows of the
    production before the run's first stability failure: a drift fit needs :data:`MIN_FIT_ROWS`, and is judged
    only over :data:`MIN_ROWS_BEFORE_FAILURE` rows reaching :data:`MIN_PRODUCTION_FRACTION_BEFORE_FAILURE` of the
    production (requested, else written); below that its figures are blanked (NaN) in ``analyses``.
    """
    stability, drift, temperature = analyses["stability"], analyses["energy_drift"], analyses["temperature"]
    kind, time = FAILURE_LABELS[stability.first_failure_kind], stability.first_failure["time_ps"]
    failure = f"{kind} at t = {time:.4g} ps"
    if time < start_ps:
        why = f"the {failure} came during the equilibration, before the production (from {start_ps:.4g} ps)"
        note = f"The run failed during the equilibration ({failure}): energy conservation and temperature are not measured."
        return note, {"energy_drift": why, "temperature": why}
    rows, until = drift["n_rows"], drift["measured_until_ps"]
    rows_text = f"{'no' if rows == 0 else rows} energy row{'' if rows == 1 else 's'}"
    counted = f"{rows_text} before the {failure}"
    reasons = {}
    if rows < MIN_FIT_ROWS:
        reasons["energy_drift"] = f"{counted}; a drift fit needs {MIN_FIT_ROWS}"
    if temperature["n_samples"] < MIN_FIT_ROWS:  # no mean without a row, no kinetic-energy variance below 3
        reasons["temperature"] = counted
    if rows == 0:
        return f"The run failed ({failure}): {counted}, energy conservation and temperature are not measured.", reasons
    span = until - start_ps
    over = f"over the {span:.4g} ps before the {kind} ({rows_text}, up to t = {until:.4g} ps)"
    production = stability.requested_time_ps or stability.completed_time_ps  # requested, else written
    rule = f"a drift fit needs {MIN_FIT_ROWS} rows"
    if rows >= MIN_FIT_ROWS and not judged_before_failure(rows, span, production):
        for name in FIT_FIGURES:  # a fit over a few fs before an explosion is no drift: no figure, no pass
            drift[name] = float("nan")
        rule = f"a failed run's drift is judged over at least {MIN_ROWS_BEFORE_FAILURE} energy rows" + (
            f" reaching {100 * MIN_PRODUCTION_FRACTION_BEFORE_FAILURE:g} % of the {production:.4g} ps production"
            if production
            else ""
        )
        reasons["energy_drift"] = f"{rows_text} over the {span:.4g} ps before the {failure}; {rule}"
    if "energy_drift" in reasons:
        measured = f"energy conservation is not measured ({rule}); the temperature is measured {over}"
    else:
        measured = f"energy conservation and temperature are measured {over}"
    return f"The run failed ({failure}): {measured}, not over the failed frames.", reasons


def _model_deviation(selection: Selection, committee, first) -> ModelDeviation | None:
    """The model deviation analysis of the run: of ``committee`` with ``first`` ahead, else as recorded, else None.

    Built (members loaded, elements checked) before any analysis runs.
    """
    if committee:
        if first is None:
            raise MLFFDError("--committee evaluates the validated student with the other members: pass it with --model")
        members = [first if not isinstance(first, (str, Path)) else Path(first)] + [Path(m) for m in committee]
        return ModelDeviation(selection.atoms, members)
    return ModelDeviation(selection.atoms) if has_recorded_deviation(selection.atoms.universe) else None


def teacher_reference(
    selection: Selection,
    teacher,
    temperature_K: float,
    time_ps: float = REFERENCE_TIME_PS,
    budget_s: float = REFERENCE_BUDGET_S,
    progress: bool = False,
    seed: int = REFERENCE_SEED,
) -> tuple[dict, dict, str | None]:
    """Internal coordinates of the run against a short teacher MD started from the run's first frame.

    The teacher MD (:func:`teacher_md`: Langevin at ``temperature_K``, K, from ``seed``) runs a fixed
    ``time_ps`` ps of steps, so the same run gets the same reference on any machine; ``budget_s``
    seconds of wall time only cap it. When the cap cuts it short, nothing is compared: a shorter
    reference has a narrower range, and the verdict would follow the machine's load.

    Returns
    -------
    tuple
        The results of :class:`InternalCoordinates` (empty when cut), the reference's description
        (``reference_time_ps`` reached, ``reference_requested_time_ps``, ``reference_seed``,
        ``reference_wall_s``, ``reference_budget_s``, ``reference_temperature_K``), and why the
        criterion is not measured (None when the reference is complete).
    """
    selection.atoms.universe.trajectory[0]
    numbers = atomic_numbers(selection.atoms)
    start = frame_atoms(selection.atoms, numbers, whole=selection.partial)
    if progress:
        print(
            f"teacher MD for the reference: {time_ps:g} ps at {temperature_K:.0f} K (seed {seed}), "
            f"capped at {budget_s:g} s",
            file=sys.stderr,
        )
    info = {
        "reference_requested_time_ps": float(time_ps),
        "reference_seed": int(seed),
        "reference_budget_s": float(budget_s),
        "reference_temperature_K": float(temperature_K),
    }
    try:
        reference = teacher_md(
            start, teacher=teacher, temperature_K=temperature_K, time_ps=time_ps, budget_s=budget_s, seed=seed
        )
    except ReferenceCut as exc:
        reached, wall = exc.reached_ps, float(budget_s)
    else:
        reached, wall = reference.reached_time_ps, reference.wall_s
    info |= {"reference_time_ps": float(reached), "reference_wall_s": float(wall)}
    if reached < time_ps:
        why = (
            f"teacher reference cut at {reached:.3g} of {time_ps:g} ps by the {budget_s:g} s budget; "
            "raise --reference-budget"
        )
        return {}, info, why
    internal = InternalCoordinates(selection.atoms, reference.universe()).run(
        **_progress(progress, "internal coordinates")
    )
    return internal.results, info, None


def _reference_temperature(temperature: dict | None, ensemble: Ensemble) -> float:
    """The teacher MD's temperature (K): the run's own mean temperature, else its target, else 300 K."""
    if temperature is not None and np.isfinite(temperature["temperature_mean_K"]):
        return float(temperature["temperature_mean_K"])
    return float(ensemble.target_temperature_K or DEFAULT_REFERENCE_TEMPERATURE_K)


def _progress(show: bool, name: str) -> dict:
    """Arguments of ``AnalysisBase.run`` for a named progress bar."""
    return {"verbose": show, "progressbar_kwargs": {"desc": name}}


def _generator() -> str:
    from .. import __version__

    return f"mlff-distiller {__version__}"


def _describe_input(run, teacher, frames: int, reference, ensemble: Ensemble, selection: Selection) -> dict:
    universe = run.universe
    times = [float(universe.trajectory[0].time), float(universe.trajectory[-1].time)]
    universe.trajectory[0]
    counts: dict[str, int] = {}
    for symbol in symbols(atomic_numbers(universe.atoms)):
        counts[symbol] = counts.get(symbol, 0) + 1
    model = run.settings.get("model")
    model_name = model.get("path") if isinstance(model, dict) else model
    run_name = run.trajectory.parent.name if run.trajectory.name == "trajectory.h5md" else run.trajectory.stem
    label = f"{Path(model_name).stem} ({run_name})" if model_name else run_name
    return {
        "label": label,
        "trajectory": str(run.trajectory),
        "topology": str(run.topology) if run.topology else None,
        "energy_source": run.energies.source if run.energies is not None else "H5MD observables (eV)",
        "n_atoms": int(universe.atoms.n_atoms),
        "composition": counts,
        "n_frames": int(len(universe.trajectory)),
        "time_first_ps": times[0],
        "time_last_ps": times[1],
        "periodic": universe.trajectory.ts.dimensions is not None,
        "teacher": None
        if teacher is None
        else (teacher if isinstance(teacher, str) else getattr(teacher, "name", type(teacher).__name__)),
        "frames_requested": int(frames),
        "reference": str(reference) if reference else None,
        "force_unit_stored": run.force_unit,
        "ensemble": {
            "name": ensemble.name,
            "source": ensemble.source,
            "target_temperature_K": ensemble.target_temperature_K,
            "production_start_ps": ensemble.production_start_ps,
            "conserved_quantity": bool(run.energies is not None and run.energies.conserved_eV is not None),
        },
        "selection": selection.describe(),
        "settings": run.settings,
        "summary": run.summary,
    }


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return finite_or_none(value)
    return value


def _details(analyses: dict) -> dict:
    """Per-element and per-frame breakdowns, failures and gaps (small enough for JSON)."""
    out: dict = {}
    stability = analyses.get("stability")
    if stability is not None:
        out["stability_events"] = _jsonable(
            {k: stability.get(k) for k in ("collapse", "hydrogen_loss", "explosion", "close_contact", "first_failure")}
        )
    forces = analyses.get("force_fidelity")
    if forces is not None:
        out["force_per_element"] = _jsonable(forces["per_element"])
        out["force_per_frame"] = _jsonable(
            {
                "time_ps": forces["time_ps"],
                "frame": forces["frames"],
                "rmse_eV_per_A": forces["per_frame_rmse"],
                "energy_error_meV_per_atom": forces.get("energy_error_meV_per_atom"),
            }
        )
        out["teacher_gaps"] = _jsonable(forces["gaps"])
        out["audit"] = _jsonable(forces["audit"])
        out["force_worst_atoms"] = _jsonable(_worst_atoms(forces))
    deviation = analyses.get("model_deviation")
    if deviation is not None:
        out["model_deviation_per_frame"] = _jsonable(
            {
                "source": deviation["source"],
                "n_members": deviation["n_members"],
                "time_ps": deviation["time_ps"],
                "frame": deviation["frames"],
                "max_eV_per_A": deviation["max_deviation"],
                "mean_eV_per_A": deviation["mean_deviation"],
            }
        )
    internal = analyses.get("internal_coordinates")
    if internal:
        keys = ("label", "kind", "atoms", "unit", "divergence", "outside_fraction", "shift", "shift_sd")
        out["internal_worst"] = _jsonable([{k: w[k] for k in keys} for w in internal["worst"]])
        out["internal_worst_dihedrals"] = _jsonable([{k: w[k] for k in keys} for w in internal["worst_dihedrals"]])
    return out


def _worst_atoms(forces) -> list[dict]:
    """The atoms with the largest force RMSE, with their universe index, element and RMSE (eV/Å)."""
    worst = forces.get("worst_atoms") or []
    indices = forces.get("atom_indices")
    return [{**w, "index": int(indices[w["atom"]]) if indices is not None else int(w["atom"])} for w in worst]
