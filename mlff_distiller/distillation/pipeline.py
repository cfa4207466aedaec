"""From dataset files to a student checkpoint with its log, learning curve, test metrics and test split."""

import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import torch

import numpy as np

from ..data import resolve_model
from ..elements import symbols
from ..errors import MLFFDError, OverwriteError, UnsupportedElementError
from ..models import PRESETS, Student, load_checkpoint, read_checkpoint, save_checkpoint
from ..models.checkpoint import weights_sha256
from ..safe_write import check_output, safe_write
from . import training_state
from .dataset import Dataset
from .graphs import frame_graph, predict_all
from .outputs import write_learning_curve, write_log, write_metrics
from .training import TrainingSettings, evaluate, train


def output_paths(checkpoint: str | Path, test_split: str | Path | None = None) -> dict[str, Path]:
    """Files a training run writes next to ``checkpoint``: ``checkpoint``, ``log`` (CSV), ``curve`` (PNG),
    ``metrics`` (JSON), ``test_split`` (HDF5 dataset of the test frames) and ``state`` (the training
    state, written after every epoch and removed when the checkpoint is written; see
    :mod:`~mlff_distiller.distillation.training_state`)."""
    checkpoint = Path(checkpoint)
    stem = checkpoint.with_suffix("")
    return {
        "checkpoint": checkpoint,
        "log": Path(f"{stem}.log.csv"),
        "curve": Path(f"{stem}.curve.png"),
        "metrics": Path(f"{stem}.metrics.json"),
        "test_split": Path(test_split) if test_split else Path(f"{stem}.test.h5"),
        "state": Path(f"{stem}.training.pt"),
    }


def size_of(student: Student) -> str | None:
    """The preset size whose architecture ``student`` has (elements aside), or None."""
    mine = {k: v for k, v in student.config.to_dict().items() if k != "elements"}
    for name, config in PRESETS.items():
        if {k: v for k, v in config.to_dict().items() if k != "elements"} == mine:
            return name
    return None


def starting_student(init: str | Path, dataset: Dataset, settings: TrainingSettings) -> tuple[Student, dict]:
    """The student a fine-tuning starts from and its record for the provenance (name, weights_sha256, size).

    ``init`` is a checkpoint path or a bundled student's name. Refused in one line when the data has
    elements the checkpoint lacks, or ``settings`` ask for another size or other elements.
    """
    path = resolve_model(str(init))
    payload = read_checkpoint(path)
    student = load_checkpoint(path)
    name = str(init) if not Path(str(init)).is_file() else Path(init).name
    missing = sorted(set(dataset.elements) - set(student.elements))
    if missing:
        raise UnsupportedElementError(
            f"{name} supports {' '.join(symbols(student.elements))} only, and the data has "
            f"{' '.join(symbols(missing))}: fine-tune a student that knows every element of the data, or train one "
            "from scratch"
        )
    size = size_of(student)
    if size is not None and settings.size != size:
        raise MLFFDError(f"{name} is a {size} student; a fine-tuning keeps its size (not {settings.size})")
    if settings.elements is not None and sorted(settings.elements) != sorted(student.elements):
        raise MLFFDError(
            f"{name} supports {' '.join(symbols(student.elements))}; a fine-tuning keeps its elements "
            f"(not {' '.join(symbols(settings.elements))})"
        )
    record = {"name": name, "weights_sha256": weights_sha256(payload["state_dict"]), "size": size or "custom"}
    return student, record


def label_with_student(dataset: Dataset, student: Student) -> Dataset:
    """A copy of ``dataset`` whose energies (eV) and forces (eV/Å) are the (float64) student's."""
    student = student.double().eval()
    graphs = [frame_graph(student, frame) for frame in dataset.frames]
    energies, forces = predict_all(student, graphs, torch.float64)
    offsets = np.cumsum([0] + [len(frame.numbers) for frame in dataset.frames])
    frames = [
        replace(frame, energy=float(energies[i]), forces=forces[offsets[i] : offsets[i + 1]], stress=np.full(6, np.nan))
        for i, frame in enumerate(dataset.frames)
    ]
    return Dataset(frames, {**dataset.attrs, "teacher": "student"}, None)


def distill(
    data: Sequence[str | Path],
    checkpoint: str | Path,
    settings: TrainingSettings,
    teacher_student: str | Path | None = None,
    test_split: str | Path | None = None,
    command: str = "",
    overwrite: bool = False,
    progress: bool = True,
    init: str | Path | None = None,
    resume: bool = False,
    energy_unit: str | None = None,
    force_unit: str | None = None,
) -> dict:
    """Train a student on dataset files and write its checkpoint and reports.

    Parameters
    ----------
    data : sequence of paths
        Datasets (HDF5) or labelled files ASE reads (extended XYZ, ``.traj``, ASE databases); see
        :meth:`~mlff_distiller.distillation.Dataset.load`.
    checkpoint : path
        Student checkpoint to write; the log, curve, metrics and test split go next to it (see :func:`output_paths`).
    settings : TrainingSettings
    teacher_student : path, optional
        A (larger) student checkpoint that relabels every frame: the new student learns from it instead of the
        dataset's teacher. Test metrics are then reported against both.
    test_split : path, optional
        Where to write the test frames (default ``<checkpoint stem>.test.h5``).
    command : str
        The command line, recorded in the provenance.
    overwrite : bool
        Replace existing outputs (never an input: see :mod:`~mlff_distiller.safe_write`).
    progress : bool
        Progress bar over epochs.
    init : path or str, optional
        Fine-tune: start from this checkpoint (or bundled student's name), keeping its architecture,
        elements and reference energies (see :func:`starting_student`); recorded in the provenance as
        ``init`` (name and weights_sha256).
    energy_unit, force_unit : str, optional
        Units of the energies and forces in the ASE-readable files (default eV and eV/Å).
    resume : bool
        Continue the interrupted training whose state (``<checkpoint stem>.training.pt``) lies next to
        ``checkpoint``, with the same data and settings (``threads`` may differ). Without it, an
        existing state file is refused unless ``overwrite``.

    Returns
    -------
    dict
        The provenance stored in the checkpoint (teacher, data hash, settings, split, test metrics, ...).
    """
    paths = output_paths(checkpoint, test_split)
    inputs = [*data, teacher_student, init]
    if resume and not paths["state"].is_file():
        raise MLFFDError(f"{paths['state']}: no training state to resume (it is written after each epoch)")
    if not resume and not overwrite and paths["state"].exists():
        raise OverwriteError(
            f"{paths['state']} exists: the state of an interrupted training; continue it with --resume, "
            "or pass --overwrite to start over"
        )
    # on resume every output but the checkpoint may be the interrupted run's own (the checkpoint is written last)
    in_progress = set(paths) - {"checkpoint"} if resume else set()
    for name, path in paths.items():  # every refusal before the training starts
        check_output(path, inputs=inputs, overwrite=overwrite or name in in_progress)
    if paths["test_split"].absolute() in {paths[name].absolute() for name in paths if name != "test_split"}:
        raise MLFFDError(f"the test split {paths['test_split']} would overwrite another output of the run")
    files = [Dataset.load(path, energy_unit=energy_unit, force_unit=force_unit) for path in data]
    dataset = Dataset.concatenate(files)
    data_hash = dataset.content_hash()
    teacher_name = str(dataset.attrs.get("teacher", "unknown"))
    reference = dataset
    if teacher_student is not None:
        big = load_checkpoint(teacher_student)
        dataset = label_with_student(dataset, big)
        teacher_name = (
            f"student {Path(teacher_student).name} (itself taught by {big.provenance.get('teacher', 'unknown')})"
        )
    start, parent = (None, None) if init is None else starting_student(init, dataset, settings)
    run_key = {
        "teacher_student": None if teacher_student is None else Path(teacher_student).name,
        "init": None if parent is None else parent["weights_sha256"],
    }
    started = time.perf_counter()
    history = training_state.saved_history(paths["state"]) if resume else []

    def log(row: dict) -> None:
        history.append(row)
        safe_write(paths["log"], lambda staged: write_log(staged, history), inputs=inputs, overwrite=True)

    result = train(
        dataset,
        settings,
        student=start,
        progress=progress,
        on_epoch=log,
        state_path=paths["state"],
        resume=resume,
        run_key=run_key,
    )
    test = dataset.subset(result.split["test"])
    test.attrs = {**dataset.attrs, "split_of": data_hash, "split_seed": settings.seed}
    safe_write(paths["test_split"], test.save, inputs=inputs, overwrite=overwrite)
    provenance = {
        "teacher": teacher_name,
        "data": [{"file": Path(p).name, "hash": part.content_hash()} for p, part in zip(data, files, strict=True)],
        "data_hash": data_hash,
        "command": command,
        "settings": asdict(settings),
        "split": {
            "seed": settings.seed,
            "val_fraction": settings.val_fraction,
            "test_fraction": settings.test_fraction,
            "test_indices": result.split["test"],
        },
        "test_split_file": paths["test_split"].name,
        "test_split_hash": test.content_hash(),
        "test_metrics": result.test_metrics,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "stopped": result.stopped,
        "training_seconds": round(
            result.history[-1]["seconds"] if result.history else time.perf_counter() - started, 1
        ),
    }
    if parent is not None:
        provenance["init"] = parent
    if resume:
        provenance["resumed"] = True
    if teacher_student is not None and result.split["test"]:
        provenance["test_metrics_vs_original_teacher"] = evaluate(
            result.student, reference.subset(result.split["test"])
        )

    def write_checkpoint(staged: Path) -> None:
        read_checkpoint(save_checkpoint(result.student, staged, provenance))  # renamed into place once it reads back

    safe_write(paths["checkpoint"], write_checkpoint, inputs=inputs, overwrite=overwrite)
    safe_write(paths["log"], lambda staged: write_log(staged, result.history), inputs=inputs, overwrite=True)
    if result.history:
        title = f"{settings.size} student, data {data_hash[:10]}"
        safe_write(
            paths["curve"],
            lambda staged: write_learning_curve(staged, result.history, title),
            inputs=inputs,
            overwrite=overwrite,
        )
    metrics = {key: provenance[key] for key in provenance if key.startswith("test_metrics")}
    safe_write(paths["metrics"], lambda staged: write_metrics(staged, metrics), inputs=inputs, overwrite=overwrite)
    paths["state"].unlink(missing_ok=True)  # the checkpoint is whole: nothing left to resume
    return provenance
