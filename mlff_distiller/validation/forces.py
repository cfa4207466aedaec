"""Force fidelity: the student's forces on its own trajectory against the teacher's."""

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from MDAnalysis.analysis.base import AnalysisBase
from tqdm.auto import tqdm

from ..errors import TrajectoryError
from ..units import EV_TO_MEV, force_to_eV_per_A
from .force_statistics import (
    MIN_TEACHER_FORCE,
    audit_statistics,
    empty_statistics,
    force_statistics,
)
from .trajectory import atomic_numbers, audit_records, frame_atoms, observable_scale, reader_force_unit


def sample_frames(n_total: int, n_frames: int) -> list[int]:
    """``n_frames`` frame indices spread evenly over a trajectory of ``n_total`` frames, first and last included."""
    if n_frames >= n_total:
        return list(range(n_total))
    return sorted(set(np.linspace(0, n_total - 1, n_frames).round().astype(int).tolist()))


_WORKER_TEACHERS: dict[str, object] = {}


def _label_in_worker(name: str, atoms) -> dict:
    """Teacher energy and forces in a worker process (teachers load once per process)."""
    from ..teachers import load_teacher

    if name not in _WORKER_TEACHERS:
        _WORKER_TEACHERS[name] = load_teacher(name)
    return _label(_WORKER_TEACHERS[name], atoms)


def _label(teacher, atoms) -> dict:
    """Energy (eV) and forces (eV/Å) from a Teacher (cached ``compute``) or a bare ASE calculator."""
    try:
        if hasattr(teacher, "compute"):
            result = teacher.compute(atoms)
            energy, forces = float(result["energy"]), np.asarray(result["forces"], dtype=float)
        else:
            atoms = atoms.copy()
            atoms.calc = teacher
            energy, forces = float(atoms.get_potential_energy()), np.asarray(atoms.get_forces(), dtype=float)
    except Exception as exc:  # a teacher can fail in its own ways (SCF not converged, library errors)
        return {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"}
    if not (np.isfinite(energy) and np.isfinite(forces).all()):
        return {"error": "the teacher returned non-finite energy or forces"}
    return {"energy": energy, "forces": forces}


class ForceFidelity(AnalysisBase):
    """Student forces on frames of its own trajectory against the teacher's.

    Forces stored in the trajectory are the student's (converted from ``force_unit`` to eV/Å);
    without them the student is evaluated on each frame. For a selection of part of the system
    (the student's atoms of an ML/MM run) the stored forces include the rest of the system, so the
    student and the teacher are both evaluated on the selected atoms alone, in vacuum, the
    selection made whole across periodic boundaries. The teacher is evaluated on ``n_frames``
    frames spread over the run (through its cache; in ``workers`` processes when the teacher is
    given by name). A frame on which the teacher fails is recorded in ``results.gaps`` and left
    out of every statistic.

    Results: every figure of :func:`force_statistics`, ``frames``, ``time_ps`` (of the compared
    frames), ``energy_error_meV_per_atom`` (student - teacher per frame), ``energy_mae_meV_per_atom``,
    ``energy_offset_meV_per_atom`` (mean), ``energy_spread_meV_per_atom`` (std), ``student_forces``,
    ``teacher_forces`` (eV/Å, for parity plots), ``gaps``, ``audit`` (records of ``mlffd md
    --audit-every``: time in ps and force RMSE in eV/Å, or None) and :func:`audit_statistics`.

    Parameters
    ----------
    atomgroup : AtomGroup or Universe
        The atoms compared: the whole system, or the student's part of it (the teacher sees these atoms only).
    teacher : Teacher, str or ASE calculator
        A teacher from :func:`mlff_distiller.teachers.load_teacher`, its name, or any ASE calculator.
    student : Student, str or Path, optional
        The student, used only when the trajectory stores no forces.
    n_frames : int
        Frames compared when ``run()`` gets no frame selection (default 50).
    workers : int
        Processes evaluating the teacher (needs the teacher by name when above 1).
    min_teacher_force : float
        eV/Å; atoms with a smaller teacher force get no angular error.
    force_unit : str, optional
        Unit of the forces stored in the trajectory (a key of :data:`mlff_distiller.units.FORCE_UNITS`);
        by default what the reader states (H5MD with unit attributes); required for others.
    """

    def __init__(
        self,
        atomgroup,
        teacher: str | object,
        student=None,
        n_frames: int = 50,
        workers: int = 1,
        min_teacher_force: float = MIN_TEACHER_FORCE,
        force_unit: str | None = None,
        **kwargs,
    ):
        self._ag = atomgroup.atoms
        self.partial = self._ag.n_atoms < self._ag.universe.atoms.n_atoms
        self.force_unit = force_unit
        super().__init__(self._ag.universe.trajectory, **kwargs)
        if isinstance(teacher, str):
            from ..teachers import load_teacher

            self.teacher_name, self.teacher = teacher, load_teacher(teacher)
        else:
            self.teacher_name, self.teacher = getattr(teacher, "name", type(teacher).__name__), teacher
        if workers > 1 and not isinstance(teacher, str):
            raise ValueError("workers > 1 needs the teacher by name, so that each process can load it")
        self.workers = max(int(workers), 1)
        self.student = student
        self.n_frames = n_frames
        self.min_teacher_force = min_teacher_force
        self.numbers = atomic_numbers(self._ag)
        if hasattr(self.teacher, "check_elements"):
            self.teacher.check_elements(self.numbers)
        if student is None and (self.partial or not self._ag.universe.trajectory.ts.has_forces):
            why = (
                "forces on a selection are recomputed"
                if self.partial
                else "this trajectory stores no forces: they are recomputed"
            )
            raise TrajectoryError(f"{why} by the student; pass the student model (--model)")
        if student is not None and (self.partial or not self._ag.universe.trajectory.ts.has_forces):
            _check_student_elements(student, self.numbers)

    def run(self, start=None, stop=None, step=None, frames=None, verbose=None, **kwargs):
        """As :meth:`AnalysisBase.run`; without a selection, ``n_frames`` frames spread evenly over the run."""
        if start is None and stop is None and step is None and frames is None:
            frames = sample_frames(len(self._trajectory), self.n_frames)
        self._verbose_teacher = bool(verbose)
        return super().run(start=start, stop=stop, step=step, frames=frames, verbose=verbose, **kwargs)

    def _prepare(self):
        ts = self._trajectory.ts
        self._stored_forces = ts.has_forces and not self.partial
        if not self._stored_forces and self.student is None:
            why = "the selection's forces" if self.partial else "this trajectory stores no forces"
            raise TrajectoryError(
                f"{why} must be recomputed and no student was given: pass the student model (--model)"
            )
        if self._stored_forces:
            unit = self.force_unit or reader_force_unit(self._trajectory)
            self._force_scale = force_to_eV_per_A(unit)
        self._calculator = None
        if not self._stored_forces:
            from ..models import StudentCalculator

            model = self.student if not isinstance(self.student, (str, Path)) else Path(self.student)
            self._calculator = StudentCalculator(model)
        self._energy_scale = observable_scale(self._ag.universe, "potential_energy")
        self._records = []

    def _single_frame(self):
        ts = self._ts
        atoms = frame_atoms(self._ag, self.numbers, whole=self.partial)
        energy = ts.data.get("potential_energy")
        if self._stored_forces:
            forces = self._ag.forces.astype(np.float64) * self._force_scale
            energy = None if energy is None else float(energy) * self._energy_scale
        else:
            atoms.calc = self._calculator
            forces = np.asarray(atoms.get_forces(), dtype=float)
            energy = float(atoms.get_potential_energy())
            atoms.calc = None
        self._records.append(
            {"frame": int(ts.frame), "time_ps": float(ts.time), "atoms": atoms, "forces": forces, "energy": energy}
        )

    def _teacher_labels(self) -> list[dict]:
        atoms = [r["atoms"] for r in self._records]
        bar = dict(
            total=len(atoms), desc=f"teacher {self.teacher_name}", unit="frame", disable=not self._verbose_teacher
        )
        if self.workers > 1 and len(atoms) > 1:
            with ProcessPoolExecutor(max_workers=self.workers) as pool:
                return list(tqdm(pool.map(_label_in_worker, [self.teacher_name] * len(atoms), atoms), **bar))
        return [_label(self.teacher, a) for a in tqdm(atoms, **bar)]

    def _conclude(self):
        labels = self._teacher_labels()
        gaps, kept = [], []
        for record, label in zip(self._records, labels, strict=False):
            if "error" in label:
                gaps.append({"frame": record["frame"], "time_ps": record["time_ps"], "error": label["error"]})
            else:
                kept.append((record, label))
        self.results.teacher = self.teacher_name
        self.results.gaps = gaps
        self.results.n_requested = len(self._records)
        self.results.n_compared = len(kept)
        self.results.audit = audit_records(self._ag.universe)
        self.results.update(audit_statistics(self.results.audit))
        self.results.frames = np.array([r["frame"] for r, _ in kept], dtype=int)
        self.results.time_ps = np.array([r["time_ps"] for r, _ in kept], dtype=float)
        self.results.numbers = self.numbers
        self.results.atom_indices = self._ag.indices
        if not kept:
            self.results.update(empty_statistics())
            return
        student = np.stack([r["forces"] for r, _ in kept])
        teacher = np.stack([label["forces"] for _, label in kept])
        self.results.student_forces, self.results.teacher_forces = student, teacher
        self.results.update(force_statistics(student, teacher, self.numbers, self.min_teacher_force))
        if all(r["energy"] is not None for r, _ in kept):
            error = np.array([(r["energy"] - label["energy"]) for r, label in kept]) * EV_TO_MEV / len(self.numbers)
            self.results.energy_error_meV_per_atom = error
            self.results.energy_mae_meV_per_atom = float(np.abs(error).mean())
            self.results.energy_offset_meV_per_atom = float(error.mean())
            self.results.energy_spread_meV_per_atom = float(error.std())
        else:
            self.results.update(
                energy_error_meV_per_atom=None,
                energy_mae_meV_per_atom=float("nan"),
                energy_offset_meV_per_atom=float("nan"),
                energy_spread_meV_per_atom=float("nan"),
            )


def _check_student_elements(student, numbers: np.ndarray) -> None:
    """Refuse, before any analysis, atoms whose elements the student was not built for (naming --select)."""
    from ..errors import UnsupportedElementError
    from ..models import load_checkpoint

    model = load_checkpoint(student) if isinstance(student, (str, Path)) else student
    try:
        model.species(numbers)
    except UnsupportedElementError as exc:
        raise UnsupportedElementError(
            f"{exc}; if the student acted on part of the system (ML/MM), pass its atoms with --select"
        ) from None
