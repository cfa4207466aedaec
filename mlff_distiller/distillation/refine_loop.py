"""Active distillation (``mlffd refine``): explore with the student's own MD, select by committee deviation,
label with the teacher, retrain; round after round, until the student is sure of what it meets.

One round, as in DP-GEN (explore, select by model deviation, label, retrain):

1. *explore*: Langevin MD of the driving student (committee member 0) from every structure at
   every temperature, several seeds each (:mod:`.refine_explore`);
2. *score*: the committee's largest per-atom force deviation on every frame, or the teacher's
   largest per-atom force error (:mod:`.refine_committee`);
3. *select*: frames inside the trust window, spread along each trajectory, at most
   ``frames_per_round`` (:mod:`.refine_select`), plus a few fresh frames held out;
4. *held-out check*: the held-out frames are labelled and the driving student measured on them;
   the run stops here when the uncertain fraction and this error are below their targets;
5. *label*: the selected frames are labelled (parallel workers, :mod:`.refine_label`) and appended
   to the run's dataset;
6. *train*: every member is fine-tuned from its current weights on all the data.

The output folder holds ``state.json`` (settings and the finished stages of every round),
``dataset.h5`` (seed data and labelled frames, kind ``"refine"``), ``heldout.h5`` (held-out
frames, never trained on), ``provenance.csv`` (one row per selected frame), ``labels.sqlite``
(every teacher label), ``structures/``, ``rounds/round-NN/`` (MD runs, scores, selection, the
members after the round), ``committee/`` (the current members), ``student.ckpt`` (the final
student) and the report ``refine.md``, ``refine.json``, ``refine.png``.
"""

import csv
import io
import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import MLFFDError, OverwriteError
from ..models import Student, StudentCalculator, load_checkpoint, read_checkpoint, save_checkpoint
from ..models.checkpoint import file_sha256
from ..safe_write import check_output, output_folder, safe_write, safe_write_text
from .dataset import Dataset, Frame, append, create
from .refine_committee import committee_scores, fine_tune, new_member
from .refine_explore import Explored, explore
from .refine_label import label_configurations, teacher_options
from .refine_report import round_line, write_report
from .refine_select import heldout_frames, largest_force_error, select_frames, uncertain_fraction
from .refine_settings import RESUMABLE_CHANGES, RefineSettings
from .refine_signals import StopOnSignal
from .training import evaluate

#: Files and folders of a run folder, removed by ``overwrite`` (nothing else in the folder is touched).
STATE, DATASET, HELDOUT, LABELS, PROVENANCE, STUDENT = (
    "state.json",
    "dataset.h5",
    "heldout.h5",
    "labels.sqlite",
    "provenance.csv",
    "student.ckpt",
)
RUN_FILES = (STATE, DATASET, HELDOUT, LABELS, PROVENANCE, STUDENT, "refine.json", "refine.md", "refine.png")
RUN_FOLDERS = ("structures", "rounds", "committee")
#: Kind of the frames this run adds to its dataset and to its held-out file.
KIND, HELDOUT_KIND = "refine", "refine-heldout"
#: frame_id of a labelled frame: round x FRAME_ID_ROUND + its place in the round's selection.
FRAME_ID_ROUND = 1_000_000
#: The stages of a round, in order, as ``state.json`` records them.
STAGES = ("explore", "score", "select", "heldout", "label", "train")


@dataclass
class RefineResult:
    """What :func:`refine` produced.

    Attributes
    ----------
    folder : Path
        The run folder.
    student : Path
        The final student checkpoint (``folder/student.ckpt``).
    report : dict
        The content of ``refine.json``.
    """

    folder: Path
    student: Path
    report: dict

    @property
    def stop_reason(self) -> str:
        """``"converged"``, ``"rounds"`` (all done) or ``"time limit"``."""
        return self.report["stop_reason"]


def refine(
    structures: Sequence[str | Path],
    output: str | Path,
    settings: RefineSettings,
    model: str | Path | None = None,
    data: Sequence[str | Path] = (),
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    command: str = "",
    on_stage: Callable[[int, str], None] | None = None,
) -> RefineResult:
    """Refine a student by active distillation; see the module's description for the loop and the files.

    Parameters
    ----------
    structures : sequence of str or Path
        Starting structures of the exploration: files, bundled names or SMILES
        (:func:`~mlff_distiller.structures.read_structure`; SMILES embedded with ``settings.seed``).
    output : str or Path
        The run folder.
    settings : RefineSettings
    model : str or Path, optional
        The student to refine (checkpoint): every committee member is it fine-tuned on ``data`` with
        its own seed (:mod:`.refine_committee`), member 0 drives the exploration. Without it, every
        member is trained from scratch on ``data`` (size ``settings.size``).
    data : sequence of paths
        Seed datasets (:meth:`Dataset.load`), copied into the run's dataset. Selection by committee
        needs them (the members are trained on them).
    resume : bool
        Continue the run in ``output`` (same structures, model, data and settings, but for
        :data:`~.refine_settings.RESUMABLE_CHANGES`).
    overwrite : bool
        Start again in an ``output`` that holds files, replacing this command's files there.
    progress : bool
        A progress bar over rounds and one line per round.
    command : str
        The command line, recorded in the provenance of the final student.
    on_stage : callable, optional
        Called with (round, stage) after each stage is finished and recorded (round 0: the committee).

    Returns
    -------
    RefineResult

    Raises
    ------
    MLFFDError
        For inputs that cannot make a run (no model and no data, committee selection without
        data, an output that exists without ``resume`` or ``overwrite``, a run to resume that was
        made otherwise).
    Interrupted
        On SIGINT or SIGTERM (:mod:`.refine_signals`); everything finished is kept for ``resume``.
    """
    settings.check()
    structures = [str(s) for s in structures]
    data = [Path(p) for p in data]
    model = Path(model) if model is not None else None
    if model is None and not data:
        raise MLFFDError("give a student to refine (--model) or seed data to train one from (--data), or both")
    if settings.select == "committee" and not data:
        raise MLFFDError(
            "selection by committee trains its members on seed data: give --data, or select by the teacher "
            "(--select teacher)"
        )
    run = _Run(Path(output), settings, model, data, structures, progress, command, on_stage)
    stops = StopOnSignal()
    with stops.catching():
        run.open(resume, overwrite, stops)
        return run.go()


class _Run:
    """One run folder and the loop over its rounds."""

    def __init__(self, folder, settings, model, data, structures, progress, command, on_stage):
        self.folder, self.settings, self.model, self.data = folder, settings, model, data
        self.structure_texts, self.progress, self.command, self.on_stage = structures, progress, command, on_stage
        self.started = time.perf_counter()

    # -- the folder --------------------------------------------------------------------------

    def open(self, resume: bool, overwrite: bool, stops: StopOnSignal) -> None:
        from ..teachers import load_teacher

        self.stops = stops
        inputs = [self.model, *self.data, *(s for s in self.structure_texts if Path(s).exists())]
        self.seed_parts = [Dataset.load(path) for path in self.data]
        identity = {
            "settings": asdict(self.settings),
            "model": str(self.model) if self.model else None,
            "model_sha256": file_sha256(self.model) if self.model else None,
            "data": [
                {"file": str(p), "hash": part.content_hash()}
                for p, part in zip(self.data, self.seed_parts, strict=True)
            ],
            "structures": self.structure_texts,
        }
        if self.model is not None:
            read_checkpoint(self.model)  # refuse a damaged model before anything is written
        if resume and (self.folder / STATE).is_file():
            check_output(self.folder, inputs=inputs, overwrite=True, folder=True)
            self.state = json.loads((self.folder / STATE).read_text())
            self._check_resumable(identity)
            self.state["settings"] = asdict(self.settings)
        else:
            if resume:
                raise MLFFDError(
                    f"{self.folder} holds no run to resume ({STATE} is missing); start one without --resume"
                )
            if (self.folder / STATE).is_file() and not overwrite:
                raise OverwriteError(
                    f"{self.folder} holds a refine run; pass --resume to continue it or --overwrite to start again"
                )
            output_folder(self.folder, inputs=inputs, overwrite=overwrite)
            self._clear()
            self.state = {**identity, "committee": False, "rounds": [], "stop_reason": None}
        self.teacher = load_teacher(
            self.settings.teacher, cache=self.folder / LABELS, **teacher_options(self.settings.teacher)
        )
        self.structures = self._structures()
        for path in self.structures:
            from ase.io import read

            self.teacher.check_elements(read(str(path)).numbers)
        self._datasets()

    def _check_resumable(self, identity: dict) -> None:
        previous = self.state
        changed = [
            key
            for key in identity["settings"]
            if key not in RESUMABLE_CHANGES and previous["settings"].get(key) != identity["settings"][key]
        ]
        changed += [key for key in ("model_sha256", "structures") if previous.get(key) != identity[key]]
        if [d["hash"] for d in previous.get("data", [])] != [d["hash"] for d in identity["data"]]:
            changed.append("data")  # by content: the same files may be named from another folder
        if changed:
            raise MLFFDError(
                f"{self.folder} was made with other {', '.join(changed)}; resume it with the same ones, "
                "or start a new run (another -o, or --overwrite)"
            )

    def _clear(self) -> None:
        for name in RUN_FILES:
            (self.folder / name).unlink(missing_ok=True)
        for name in RUN_FOLDERS:
            shutil.rmtree(self.folder / name, ignore_errors=True)

    def _structures(self) -> list[Path]:
        """The starting structures as extended XYZ files in ``structures/`` (SMILES embedded once)."""
        from ase.io import write

        from ..structures import read_structure

        paths = []
        for i, text in enumerate(self.structure_texts):
            path = self.folder / "structures" / f"s{i}.xyz"
            if not path.is_file():
                atoms = read_structure(text, seed=self.settings.seed)
                safe_write(path, lambda staged, atoms=atoms: write(str(staged), atoms, format="extxyz"), overwrite=True)
            paths.append(path)
        return paths

    def _datasets(self) -> None:
        if not (self.folder / DATASET).is_file():
            seed = Dataset.concatenate(self.seed_parts) if self.data else Dataset(attrs={"teacher": self.teacher.name})
            seed.attrs = {**seed.attrs, "refined_by": "mlffd refine", "refine_teacher": self.teacher.name}
            safe_write(self.folder / DATASET, seed.save, overwrite=True)
            self.state["seed_frames"] = len(seed)
        if not (self.folder / HELDOUT).is_file():
            safe_write(
                self.folder / HELDOUT,
                lambda staged: create(staged, {"teacher": self.teacher.name, "purpose": "held out, never trained on"}),
                overwrite=True,
            )
        self._save_state()

    def _save_state(self) -> None:
        text = json.dumps(self.state, indent=2, default=float) + "\n"
        with self.stops.deferred():
            safe_write_text(self.folder / STATE, text, overwrite=True)

    def _stage_done(self, row: dict, stage: str) -> None:
        if stage not in row["stages"]:
            row["stages"].append(stage)
        self._save_state()
        if self.on_stage is not None:
            self.on_stage(row["round"], stage)

    # -- the loop ----------------------------------------------------------------------------

    def go(self) -> RefineResult:
        from tqdm.auto import tqdm

        s = self.settings
        self.members = self._committee()
        finished = [row for row in self.state["rounds"] if "train" in row["stages"] or row.get("stop")]
        bar = tqdm(
            total=s.rounds, initial=min(len(finished), s.rounds), desc="refine", unit="round", disable=not self.progress
        )
        stop = next((row["stop"] for row in finished if row.get("stop")), None)
        try:
            for index in range(len(finished) + 1, s.rounds + 1):
                if stop:
                    break
                spent = (time.perf_counter() - self.started) / 60.0
                if s.time_limit_minutes is not None and spent >= s.time_limit_minutes:
                    stop = "time limit"
                    break
                row = self._round(index, bar)
                stop = row.get("stop")
                if self.progress:
                    tqdm.write(round_line(row))
                bar.update(1)
        finally:
            bar.close()
        self.state["stop_reason"] = stop or "rounds"
        self._save_state()
        return self._finish()

    def _round_row(self, index: int) -> dict:
        for row in self.state["rounds"]:
            if row["round"] == index:
                return row
        row = {"round": index, "stages": [], "seconds": 0.0}
        self.state["rounds"].append(row)
        return row

    def _round(self, index: int, bar) -> dict:
        s = self.settings
        begin = time.perf_counter()
        row = self._round_row(index)
        folder = self.folder / "rounds" / f"round-{index:02d}"
        bar.set_postfix_str(f"round {index}: exploring")
        explored = explore(self.structures, self.folder / "committee" / "member-0.ckpt", s, index, folder / "md")
        row["explored"] = len(explored.atoms)
        row["trajectory_stops"] = explored.stops
        self._stage_done(row, "explore")

        bar.set_postfix_str(f"round {index}: scoring")
        scores = self._scores(explored, folder / "scores.json")
        row["uncertain_fraction"] = uncertain_fraction(scores, s.trust_low)
        row["above_trust_high"] = int(np.sum(scores >= s.trust_high))
        self._stage_done(row, "score")

        records = self._selection(index, explored, scores, folder / "selection.json")
        row["selected"] = sum(r["split"] == "train" for r in records)
        self._stage_done(row, "select")

        bar.set_postfix_str(f"round {index}: held-out check")
        heldout = self._label(index, explored, records, "heldout", folder / "selection.json")
        row["heldout_frames"] = len(heldout)
        row["heldout_force_rmse"] = self._rmse(self.members[0], heldout)
        self._stage_done(row, "heldout")
        target_met = row["heldout_force_rmse"] <= s.target_force_rmse or (not heldout and s.heldout_per_round == 0)
        if row["uncertain_fraction"] <= s.target_uncertain and target_met:
            row["stop"] = "converged"
        else:
            bar.set_postfix_str(f"round {index}: labelling")
            labelled = self._label(index, explored, records, "train", folder / "selection.json")
            row["labelled"] = len(labelled)
            row["label_failures"] = sum(1 for r in records if r["split"] == "train" and r.get("problem"))
            self._stage_done(row, "label")
            bar.set_postfix_str(f"round {index}: training")
            self.members = self._train(index, folder)
            row["heldout_force_rmse_after"] = self._rmse(self.members[0], self._heldout())
        row["seconds"] = row.get("seconds", 0.0) + time.perf_counter() - begin
        self._stage_done(row, "train" if "stop" not in row else "heldout")
        self._report()
        return row

    # -- the stages --------------------------------------------------------------------------

    def _committee(self) -> list[Student]:
        """The current members: from ``committee/``, or made (round 0) and saved there."""
        s = self.settings
        current = self.folder / "committee"
        if self.state["committee"]:
            return [load_checkpoint(current / f"member-{k}.ckpt") for k in range(s.members)]
        start = self.folder / "rounds" / "round-00"
        student = load_checkpoint(self.model) if self.model is not None else None
        dataset = Dataset.load(self.folder / DATASET) if self.data else None
        members = []
        for k in range(s.members):
            path = start / f"member-{k}.ckpt"
            if not path.is_file():
                member = new_member(student, dataset, s, k)
                self._save_member(member, path, 0, k)
            members.append(load_checkpoint(path))
        for k in range(s.members):
            self._copy(start / f"member-{k}.ckpt", current / f"member-{k}.ckpt")
        self.state["committee"] = True
        self._save_state()
        if self.on_stage is not None:
            self.on_stage(0, "committee")
        return members

    def _save_member(self, member: Student, path: Path, index: int, k: int) -> None:
        provenance = {
            "origin": "mlffd refine",
            "round": index,
            "member": k,
            "teacher": self.teacher.name,
            "parent": self.state["model"],
            "parent_sha256": self.state["model_sha256"],
        }
        with self.stops.deferred():
            safe_write(path, lambda staged: save_checkpoint(member, staged, provenance), overwrite=True)

    def _copy(self, source: Path, target: Path) -> None:
        with self.stops.deferred():
            safe_write(target, lambda staged: shutil.copyfile(source, staged), overwrite=True)

    def _scores(self, explored: Explored, path: Path) -> np.ndarray:
        if path.is_file():
            return np.array(json.loads(path.read_text()), dtype=np.float64)
        if self.settings.select == "committee":
            scores = committee_scores(self.members, explored.atoms)
        else:
            scores = np.full(len(explored.atoms), np.inf)
            calculator = StudentCalculator(self.members[0])

            def score(index: int, labels: dict | None, problem: str) -> None:
                if labels is not None:
                    calculator.calculate(explored.atoms[index], ["forces"])
                    scores[index] = largest_force_error(calculator.results["forces"], labels["forces"])

            label_configurations(explored.atoms, self.teacher, self.settings.workers, score)
        with self.stops.deferred():
            safe_write_text(path, json.dumps([float(x) if np.isfinite(x) else 1e300 for x in scores]), overwrite=True)
        return scores

    def _selection(self, index: int, explored: Explored, scores: np.ndarray, path: Path) -> list[dict]:
        if path.is_file():
            return json.loads(path.read_text())
        s = self.settings
        chosen = select_frames(
            scores, explored.trajectory, s.trust_low, s.trust_high, s.per_trajectory, s.spacing, s.frames_per_round
        )
        rng = np.random.default_rng([s.seed, index, 7])
        held = heldout_frames(scores, s.trust_high, s.heldout_per_round, chosen, rng)
        records = []
        for split, indices in (("train", chosen), ("heldout", held)):
            for i in indices:
                records.append(
                    {
                        "frame_id": index * FRAME_ID_ROUND + len(records),
                        "split": split,
                        "explored_index": int(i),
                        "round": index,
                        "trajectory": explored.names[int(explored.trajectory[i])],
                        "step": int(explored.step[i]),
                        "time_ps": float(explored.time_ps[i]),
                        "temperature_K": float(explored.temperature[i]),
                        "score_eV_per_A": float(scores[i]),
                    }
                )
        with self.stops.deferred():
            safe_write_text(path, json.dumps(records, indent=1), overwrite=True)
        return records

    def _label(self, index: int, explored: Explored, records: list[dict], split: str, path: Path) -> list[Frame]:
        """Label the records of ``split`` not yet stored, appending each frame as it arrives; the round's frames of ``split``."""
        target = self.folder / (DATASET if split == "train" else HELDOUT)
        kind = KIND if split == "train" else HELDOUT_KIND
        wanted = [r for r in records if r["split"] == split]
        stored = {f.frame_id: f for f in Dataset.load(target).frames if f.kind == kind} if _has_frames(target) else {}
        todo = [r for r in wanted if r["frame_id"] not in stored]
        configurations = [explored.atoms[r["explored_index"]] for r in todo]

        def store(k: int, labels: dict | None, problem: str) -> None:
            record = todo[k]
            if labels is None:
                record["problem"] = problem
                return
            record.pop("problem", None)
            frame = Frame.from_labels(configurations[k], labels, kind, record["temperature_K"], record["frame_id"])
            with self.stops.deferred():
                append(target, [frame])
            stored[frame.frame_id] = frame

        label_configurations(configurations, self.teacher, self.settings.workers, store)
        with self.stops.deferred():
            safe_write_text(path, json.dumps(records, indent=1), overwrite=True)
        self._write_provenance()
        return [stored[r["frame_id"]] for r in wanted if r["frame_id"] in stored]

    def _train(self, index: int, folder: Path) -> list[Student]:
        if not _has_frames(self.folder / DATASET):  # nothing labelled yet (no seed data, every label failed)
            return self.members
        dataset = Dataset.load(self.folder / DATASET)
        members = []
        for k, member in enumerate(self.members):
            path = folder / f"member-{k}.ckpt"
            if not path.is_file():
                trained = fine_tune(member, dataset, self.settings, self.settings.seed + 1000 * index + k)
                self._save_member(trained, path, index, k)
            members.append(load_checkpoint(path))
        for k in range(len(members)):
            self._copy(folder / f"member-{k}.ckpt", self.folder / "committee" / f"member-{k}.ckpt")
        return members

    def _heldout(self) -> list[Frame]:
        path = self.folder / HELDOUT
        return Dataset.load(path).frames if _has_frames(path) else []

    @staticmethod
    def _rmse(student: Student, frames: list[Frame]) -> float:
        return float(evaluate(student, Dataset(frames))["force_rmse"]) if frames else math.nan

    def _write_provenance(self) -> None:
        columns = [
            "frame_id",
            "split",
            "round",
            "trajectory",
            "step",
            "time_ps",
            "temperature_K",
            "score_eV_per_A",
            "problem",
        ]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for path in sorted((self.folder / "rounds").glob("round-*/selection.json")):
            for record in json.loads(path.read_text()):
                writer.writerow({"problem": "", **record})
        with self.stops.deferred():
            safe_write_text(self.folder / PROVENANCE, buffer.getvalue(), overwrite=True)

    # -- the end -----------------------------------------------------------------------------

    def _report(self) -> dict:
        heldout = self._heldout()
        dataset = Dataset.load(self.folder / DATASET) if _has_frames(self.folder / DATASET) else Dataset()
        initial = load_checkpoint(self.folder / "rounds" / "round-00" / "member-0.ckpt")
        report = {
            "settings": asdict(self.settings),
            "members": self.settings.members,
            "units": {"force": "eV/Å", "time": "s", "temperature": "K"},
            "rounds": [{k: v for k, v in row.items() if k != "stages"} for row in self.state["rounds"]],
            "heldout_frames": len(heldout),
            "initial_heldout_force_rmse": self._rmse(initial, heldout),
            "final_heldout_force_rmse": self._rmse(self.members[0], heldout),
            "dataset": {
                "frames": len(dataset),
                "added": sum(f.kind == KIND for f in dataset.frames),
                "hash": dataset.content_hash(),
            },
            "stop_reason": self.state.get("stop_reason") or "running",
        }
        with self.stops.deferred():
            write_report(self.folder, report)
        return report

    def _finish(self) -> RefineResult:
        report = self._report()
        rounds = [row["round"] for row in self.state["rounds"] if "train" in row["stages"]]
        provenance = {
            "origin": "mlffd refine",
            "teacher": self.teacher.name,
            "parent": self.state["model"],
            "parent_sha256": self.state["model_sha256"],
            "rounds": len(rounds),
            "data_hash": report["dataset"]["hash"],
            "dataset_frames": report["dataset"]["frames"],
            "heldout_force_rmse": {
                "initial": report["initial_heldout_force_rmse"],
                "final": report["final_heldout_force_rmse"],
                "frames": report["heldout_frames"],
            },
            "settings": asdict(self.settings),
            "command": self.command,
        }
        student = self.members[0]
        with self.stops.deferred():
            safe_write(
                self.folder / STUDENT,
                lambda staged: read_checkpoint(save_checkpoint(student, staged, provenance)),
                overwrite=True,
            )
        return RefineResult(self.folder, self.folder / STUDENT, report)


def _has_frames(path: Path) -> bool:
    from .dataset import stored_frame_ids

    return bool(stored_frame_ids(path))
