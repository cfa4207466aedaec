"""Labelling configurations with a teacher in parallel worker processes, through the teacher's label cache.

Each worker loads its own teacher (one thread for GFN2-xTB) and labels the configurations it is
given; the parent stores every label in its teacher's cache (an SQLite file in the run folder) and
hands it on as soon as it arrives, so that an interrupted run never pays for a label twice.
"""

import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

from ase import Atoms

from ..errors import MLFFDError
from ..teachers import Teacher, load_teacher

_WORKER_TEACHER: Teacher | None = None


def teacher_options(name: str) -> dict:
    """Options of :func:`~mlff_distiller.teachers.load_teacher` for one labelling process: one thread for GFN2-xTB."""
    return {"threads": 1} if name == "gfn2-xtb" else {}


def label_configurations(
    configurations: Sequence[Atoms],
    teacher: Teacher,
    workers: int,
    on_label: Callable[[int, dict | None, str], None],
) -> None:
    """Label every configuration, calling ``on_label(index, labels, problem)`` as each one is done.

    Parameters
    ----------
    configurations : sequence of ase.Atoms
        Positions in Å.
    teacher : Teacher
        Its cache answers what was labelled before and keeps every new label; workers load a
        teacher of the same name (``teacher.name``, options of :func:`teacher_options`).
    workers : int
        Worker processes; with 1, or a single configuration to compute, labels are computed here.
    on_label : callable
        Called in this process, in completion order, with the index in ``configurations``, the
        labels (``energy`` eV, ``forces`` eV/Å, ``stress`` eV/Å³ for periodic boxes) and ``""``;
        or with None and the one-line reason when the teacher failed on that configuration.
    """
    todo = []
    for index, atoms in enumerate(configurations):
        labels = teacher.cache.get(teacher.key(atoms))
        if labels is not None:
            on_label(index, labels, "")
        else:
            todo.append(index)
    if workers <= 1 or len(todo) <= 1:
        for index in todo:
            try:
                on_label(index, teacher.compute(configurations[index]), "")
            except MLFFDError as exc:
                on_label(index, None, str(exc))
        return
    context = get_context("spawn")  # a fresh interpreter: no torch or OpenMP state copied from this process
    with ProcessPoolExecutor(
        min(workers, len(todo)), mp_context=context, initializer=_start_worker, initargs=(teacher.name,)
    ) as pool:
        futures = {pool.submit(_label, configurations[index]): index for index in todo}
        try:
            for future in as_completed(futures):
                index = futures[future]
                labels, problem = future.result()
                if labels is not None:
                    teacher.cache.put(teacher.key(configurations[index]), labels)
                on_label(index, labels, problem)
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _start_worker(name: str) -> None:
    global _WORKER_TEACHER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interruption stops
    _WORKER_TEACHER = load_teacher(name, **teacher_options(name))


def _label(atoms: Atoms) -> tuple[dict | None, str]:
    try:
        return _WORKER_TEACHER.compute(atoms), ""
    except MLFFDError as exc:
        return None, str(exc)
