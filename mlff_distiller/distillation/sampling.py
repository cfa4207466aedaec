"""Sampling configurations with a teacher: Langevin MD over temperatures, random and normal-mode displacements.

The sampling plan is deterministic for a given structure, settings and seed: frame ``i`` of the plan is
always the same configuration. Frames are appended to an HDF5 dataset as they are labelled, and every
teacher call goes through a label cache on disk, so an interrupted run resumes without paying twice.
"""

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from tqdm.auto import tqdm

from .. import inputs
from ..errors import InvalidValueError, OverwriteError
from ..inputs import (
    COUNT,
    DISPLACEMENT_A,
    FRACTION,
    FRICTION_PER_FS,
    INTERVAL_STEPS,
    POSITIVE_TEMPERATURE_K,
    SEED,
    STEPS,
    TIMESTEP_FS,
)
from ..structures import check_structure
from ..teachers import Teacher, TeacherCalculator
from ..units import BOLTZMANN_EV_PER_K
from .dataset import Dataset, DatasetError, Frame, append, create, read_attrs, stored_frame_ids

#: Frames are written to the file in groups of this many (each group is one HDF5 append).
WRITE_EVERY = 10
#: Largest displacement of any atom (Å) in a normal-mode sample; larger draws are scaled down.
MAX_NORMAL_MODE_DISPLACEMENT = 0.5
#: Finite-difference step (Å) of the teacher Hessian.
HESSIAN_STEP = 0.01


@dataclass
class SamplingSettings:
    """How configurations are generated.

    Attributes
    ----------
    frames : int
        Total frames to label.
    temperatures : list of float
        Temperatures in K; MD frames are shared equally among them, normal-mode samples cycle through them.
    random_fraction : float
        Share of frames made by Gaussian displacements of MD frames.
    normal_mode_fraction : float
        Share of frames drawn from the teacher's harmonic (normal-mode) distribution; ignored for periodic systems.
    timestep_fs : float
        MD time step in fs.
    stride : int
        MD steps between kept frames.
    equilibration_steps : int
        MD steps discarded at the start of each temperature.
    friction_per_fs : float
        Langevin friction in 1/fs.
    displacement : float
        Standard deviation (Å) of the random displacements.
    seed : int
        Seed of velocities, thermostat noise and displacements.
    """

    frames: int = 500
    temperatures: list[float] = field(default_factory=lambda: [300.0, 600.0])
    random_fraction: float = 0.15
    normal_mode_fraction: float = 0.2
    timestep_fs: float = 0.5
    stride: int = 10
    equilibration_steps: int = 100
    friction_per_fs: float = 0.01
    displacement: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise :class:`~mlff_distiller.errors.InvalidValueError` naming every value out of range.

        Each number follows its quantity's rule of :mod:`mlff_distiller.inputs` (the rules of
        ``mlffd sample``'s options); the random and normal-mode shares must leave MD frames.
        """
        temperatures = self.temperatures if isinstance(self.temperatures, (list, tuple)) else [self.temperatures]
        checks = [
            (COUNT, self.frames, "frames"),
            (FRACTION, self.random_fraction, "random_fraction"),
            (FRACTION, self.normal_mode_fraction, "normal_mode_fraction"),
            (TIMESTEP_FS, self.timestep_fs, "timestep_fs"),
            (INTERVAL_STEPS, self.stride, "stride"),
            (STEPS, self.equilibration_steps, "equilibration_steps"),
            (FRICTION_PER_FS, self.friction_per_fs, "friction_per_fs"),
            (DISPLACEMENT_A, self.displacement, "displacement"),
            (SEED, self.seed, "seed"),
        ] + [(POSITIVE_TEMPERATURE_K, t, f"temperatures[{i}]") for i, t in enumerate(temperatures)]
        found = inputs.problems(checks)
        if not isinstance(self.temperatures, (list, tuple)) or not self.temperatures:
            found.append(f"temperatures must be a non-empty list of temperatures in K, not {self.temperatures!r}")
        if not found and self.random_fraction + self.normal_mode_fraction >= 1:
            found.append(
                f"random_fraction + normal_mode_fraction = {self.random_fraction + self.normal_mode_fraction:g} "
                "leaves no MD frames (the displacements start from them); keep their sum below 1"
            )
        if found:
            raise InvalidValueError("; ".join(found))

    def plan(self, periodic: bool) -> dict[str, int]:
        """Number of MD, random and normal-mode frames."""
        normal = 0 if periodic else int(round(self.frames * self.normal_mode_fraction))
        random = int(round(self.frames * self.random_fraction))
        md = self.frames - normal - random
        if md < len(self.temperatures) or self.frames < 1:
            raise DatasetError(
                f"{self.frames} frames leave too few MD frames for {len(self.temperatures)} temperature(s)"
            )
        return {"md": md, "random": random, "normal-mode": normal}


def sample(
    structure: Atoms,
    teacher: Teacher,
    output: Path,
    settings: SamplingSettings,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Dataset:
    """Generate and label configurations of ``structure`` and write them to the HDF5 file ``output``.

    Parameters
    ----------
    structure : ase.Atoms
        Starting configuration (Å); periodic systems get stress labels.
    teacher : Teacher
        Labels every configuration and drives the MD. Give it a disk cache (see
        :func:`~mlff_distiller.teachers.load_teacher`) to make interruptions cheap.
    output : Path
        Dataset file.
    settings : SamplingSettings
    resume : bool
        Continue an existing ``output`` made with the same settings, labelling only missing frames.
    overwrite : bool
        Replace an existing ``output``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Dataset
        Every frame of ``output``.
    """
    settings.check()  # again: attributes may have changed since the settings were made
    check_structure(structure, structure.get_chemical_formula())
    teacher.check_elements(structure.numbers)
    output = Path(output)
    periodic = bool(structure.pbc.any())
    plan = settings.plan(periodic)
    done = open_output(output, _attributes(structure, teacher, settings), resume, overwrite)
    writer = FrameWriter(output, done, settings.frames, progress)
    _molecular_dynamics(structure, teacher, settings, plan["md"], writer)
    _random_displacements(output, teacher, settings, plan, writer)
    _normal_modes(structure, teacher, settings, plan, writer)
    writer.close()
    return Dataset.load(output)


def open_output(output: Path, attrs: dict, resume: bool, overwrite: bool) -> set[int]:
    """Create the dataset file ``output`` with ``attrs``, or check that it can be resumed; the frame ids it holds.

    Raises
    ------
    OverwriteError
        ``output`` exists and neither ``resume`` nor ``overwrite`` is given, or it was made with other
        settings (``attrs["settings"]``, JSON) or another teacher (``attrs["teacher"]``).
    """
    if output.exists() and not overwrite:
        if not resume:
            raise OverwriteError(f"{output} exists; pass --resume to continue it or --overwrite to replace it")
        previous = read_attrs(output)
        if previous.get("settings") != json.loads(attrs["settings"]) or previous.get("teacher") != attrs["teacher"]:
            raise OverwriteError(f"{output} was made with other settings or another teacher; cannot resume it")
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        create(output, attrs)
    return set(stored_frame_ids(output))


class FrameWriter:
    """Buffers labelled frames, appends them to the file and counts progress; skips frames already stored."""

    def __init__(self, path: Path, done: set, total: int, progress: bool):
        self.path, self.done, self.buffer = path, done, []
        self.bar = tqdm(
            total=total, initial=len(done), desc=f"labelling {path.name}", unit="frame", disable=not progress
        )

    def wanted(self, frame_id: int) -> bool:
        return frame_id not in self.done

    def add(self, frame: Frame) -> None:
        self.buffer.append(frame)
        self.done.add(frame.frame_id)
        self.bar.update(1)
        if len(self.buffer) >= WRITE_EVERY:
            self.flush()

    def flush(self) -> None:
        append(self.path, self.buffer)
        self.buffer = []

    def close(self) -> None:
        self.flush()
        self.bar.close()


def _attributes(structure: Atoms, teacher: Teacher, settings: SamplingSettings) -> dict:
    from .. import __version__

    return {
        "teacher": teacher.name,
        "settings": json.dumps(asdict(settings), sort_keys=True),
        "seed": settings.seed,
        "structure": structure.get_chemical_formula(),
        "package_version": __version__,
    }


def _molecular_dynamics(
    structure: Atoms, teacher: Teacher, settings: SamplingSettings, n_md: int, writer: FrameWriter
) -> None:
    shares = np.array_split(np.arange(n_md), len(settings.temperatures))
    for index, (temperature, frame_ids) in enumerate(zip(settings.temperatures, shares, strict=False)):
        if not any(writer.wanted(int(i)) for i in frame_ids):
            continue
        rng = np.random.default_rng([settings.seed, index])
        atoms = structure.copy()
        atoms.calc = TeacherCalculator(teacher)
        with warnings.catch_warnings():  # ASE 3.29 deprecates the name, not the distribution
            warnings.simplefilter("ignore", DeprecationWarning)
            MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
        Stationary(atoms)
        if not atoms.pbc.any():
            ZeroRotation(atoms)
        dynamics = Langevin(
            atoms,
            timestep=settings.timestep_fs * units.fs,
            temperature_K=temperature,
            friction=settings.friction_per_fs / units.fs,
            rng=rng,
            fixcm=False,
        )
        dynamics.run(settings.equilibration_steps)
        for frame_id in frame_ids:
            dynamics.run(settings.stride)
            if writer.wanted(int(frame_id)):
                writer.add(Frame.from_labels(atoms, teacher.compute(atoms), "md", temperature, int(frame_id)))


def _random_displacements(
    output: Path, teacher: Teacher, settings: SamplingSettings, plan: dict[str, int], writer: FrameWriter
) -> None:
    if plan["random"] == 0:
        return
    writer.flush()
    md_frames = [f for f in Dataset.load(output).frames if f.kind == "md"]
    md_frames.sort(key=lambda f: f.frame_id)
    rng = np.random.default_rng([settings.seed, 1_000_001])
    for k in range(plan["random"]):
        frame_id = plan["md"] + k
        base = md_frames[int(rng.integers(len(md_frames)))]
        noise = rng.normal(scale=settings.displacement, size=base.positions.shape)
        if writer.wanted(frame_id):
            atoms = base.atoms()
            atoms.positions = base.positions + noise
            writer.add(Frame.from_labels(atoms, teacher.compute(atoms), "random", base.temperature, frame_id))


def harmonic_modes(structure: Atoms, teacher: Teacher) -> tuple:
    """Mass-weighted normal modes of the teacher at ``structure`` from a central-difference Hessian of its forces.

    Returns
    -------
    eigenvalues : ndarray (M,)
        Curvatures in eV/(Å² amu) of the M vibrational modes (the six smallest, rigid-body ones removed).
    modes : ndarray (3N, M)
        Orthonormal mass-weighted mode vectors.
    """
    n = len(structure)
    hessian = np.zeros((3 * n, 3 * n))
    for i in range(3 * n):
        columns = []
        for sign in (1, -1):
            displaced = structure.copy()
            displaced.positions[i // 3, i % 3] += sign * HESSIAN_STEP
            columns.append(teacher.compute(displaced)["forces"].reshape(-1))
        hessian[:, i] = -(columns[0] - columns[1]) / (2 * HESSIAN_STEP)
    hessian = 0.5 * (hessian + hessian.T)
    inv_sqrt_mass = np.repeat(1 / np.sqrt(structure.get_masses()), 3)
    eigenvalues, vectors = np.linalg.eigh(hessian * inv_sqrt_mass[:, None] * inv_sqrt_mass[None, :])
    rigid = 5 if n == 2 else 6
    keep = np.argsort(np.abs(eigenvalues))[rigid:] if n > 1 else np.array([], dtype=int)
    keep = keep[eigenvalues[keep] > 0]
    return eigenvalues[keep], vectors[:, keep]


def _normal_modes(
    structure: Atoms, teacher: Teacher, settings: SamplingSettings, plan: dict[str, int], writer: FrameWriter
) -> None:
    if plan["normal-mode"] == 0:
        return
    first = plan["md"] + plan["random"]
    if not any(writer.wanted(first + k) for k in range(plan["normal-mode"])):
        return
    eigenvalues, modes = harmonic_modes(structure, teacher)
    inv_sqrt_mass = np.repeat(1 / np.sqrt(structure.get_masses()), 3)
    rng = np.random.default_rng([settings.seed, 2_000_003])
    for k in range(plan["normal-mode"]):
        temperature = settings.temperatures[k % len(settings.temperatures)]
        amplitudes = rng.normal(size=len(eigenvalues)) * np.sqrt(BOLTZMANN_EV_PER_K * temperature / eigenvalues)
        displacement = ((modes @ amplitudes) * inv_sqrt_mass).reshape(-1, 3)
        largest = np.linalg.norm(displacement, axis=1).max()
        if largest > MAX_NORMAL_MODE_DISPLACEMENT:
            displacement *= MAX_NORMAL_MODE_DISPLACEMENT / largest
        if writer.wanted(first + k):
            atoms = structure.copy()
            atoms.positions = structure.positions + displacement
            writer.add(Frame.from_labels(atoms, teacher.compute(atoms), "normal-mode", temperature, first + k))
