"""Building an ``openmm.System`` whose forces come from a student (through openmm-torch's ``TorchForce``)."""

import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

import numpy as np
import openmm
from ase import Atoms
from openmm import app, unit
from openmm.app.internal.unitcell import reducePeriodicBoxVectors

from ...elements import check_supported, symbol
from ...errors import CheckpointError, StructureError, UnsupportedElementError
from ...export.metadata import build_metadata, load_exported
from ...export.openmm import openmm_module
from ...models import load_checkpoint
from ...models.kernel import resolve_kernel, resolve_threads
from ...models.student import Student
from ...structures import check_box_for_cutoff, check_structure, read_structure
from ...structures import check_positions as check_coordinates
from ...units import NM_TO_ANGSTROM

logging.disable(logging.WARNING)  # openmm-torch 1.5 imports the deprecated simtk.openmm, which logs a warning
try:
    import openmmtorch  # noqa: E402  (after torch: it needs torch's CUDA libraries loaded)
finally:
    logging.disable(logging.NOTSET)

ModelSource = str | Path | Student


def _reload_torch_plugins() -> None:
    """Load openmm-torch's platform plugins that failed because ``openmm`` was imported before ``torch``.

    OpenMM loads its plugins when first imported; openmm-torch's need torch's libraries
    (libnvrtc) already loaded, so a script that imports openmm first would otherwise get
    "Specified a Platform for a Context which does not support all required kernels".
    """
    for failure in openmm.Platform.getPluginLoadFailures():
        library = failure.removeprefix("Error loading library ").split(":")[0]
        if "libOpenMMTorch" in library and "libnvrtc" in failure:
            try:
                openmm.Platform.loadPluginLibrary(library)
            except openmm.OpenMMException:
                pass  # a platform whose own runtime is missing here (e.g. CUDA without a driver)


_reload_torch_plugins()


@dataclass
class ForceModel:
    """A scripted OpenMM-target model and its metadata (see :func:`mlff_distiller.export.build_metadata`)."""

    module: torch.jit.ScriptModule
    metadata: dict


@dataclass
class OpenMMStructure:
    """A structure as OpenMM sees it: topology (with the box, if periodic) and positions in nm."""

    topology: app.Topology
    positions: np.ndarray

    @property
    def periodic(self) -> bool:
        return self.topology.getPeriodicBoxVectors() is not None


def load_force_model(
    model: ModelSource, dtype: torch.dtype = torch.float64, kernel: str = "auto", threads: int | None = None
) -> ForceModel:
    """The OpenMM-target model of a checkpoint (built in ``dtype``), an export (its own dtype) or a Student.

    ``kernel`` applies to checkpoints and students (an export keeps the kernel it was written
    with): ``"auto"`` uses the fused C++ kernel on CPU where it builds, ``"portable"`` and
    ``"fused"`` force one (see :func:`mlff_distiller.export.export_openmm`).

    ``threads`` is the fused kernel's thread count (default
    :func:`~mlff_distiller.models.kernel.default_threads`: ``OMP_NUM_THREADS`` when set, else the
    cores this process may use), set on the module (``forces.set_threads``). A portable model
    runs on torch's own threads (``torch.set_num_threads``); a fused file used without this
    function splits its work over torch's intra-op thread count.

    Raises :class:`CheckpointError` for missing, corrupt or foreign files and for exports made for
    another engine, :class:`InvalidValueError` for a thread count that is not a whole number from 1
    to :data:`~mlff_distiller.models.kernel.MAX_THREADS`.
    """
    threads = resolve_threads(threads)
    if isinstance(model, Student):
        force_model = _student_force_model(model.to(dtype).eval(), kernel)
    elif _is_torchscript_archive(path := Path(model)):
        module, metadata = load_exported(path)
        if metadata.get("engine") != "openmm":
            raise CheckpointError(
                f"{path}: exported for {metadata.get('engine')}, not OpenMM; export it with --engine openmm"
            )
        force_model = ForceModel(module, metadata)
    else:
        force_model = _student_force_model(load_checkpoint(path, dtype=dtype), kernel, checkpoint=path)
    forces = getattr(force_model.module, "forces", None)
    if forces is not None and hasattr(forces, "set_threads"):  # fused (and exported by a version with threads)
        forces.set_threads(threads)
    return force_model


def _student_force_model(student: Student, kernel: str, checkpoint: Path | None = None) -> ForceModel:
    kernel = resolve_kernel(kernel)
    precision = "float64" if student.network.energy_scale.dtype == torch.float64 else "float32"
    metadata = build_metadata(student, "openmm", precision, checkpoint=checkpoint, kernel=kernel)
    return ForceModel(openmm_module(student, kernel=kernel), metadata)


def _is_torchscript_archive(path: Path) -> bool:
    if not (path.is_file() and zipfile.is_zipfile(path)):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") for name in archive.namelist())


def create_torch_force(
    model: ModelSource | ForceModel,
    numbers: Sequence[int],
    atoms: Sequence[int] | None = None,
    periodic: bool = False,
    cuda_graphs: bool = False,
    dtype: torch.dtype = torch.float64,
) -> openmmtorch.TorchForce:
    """A ``TorchForce`` computing the student's energy of the atoms ``atoms`` (all when ``None``).

    Parameters
    ----------
    model : path, Student or ForceModel
        Checkpoint, OpenMM export or student.
    numbers : sequence of int
        Atomic numbers of the ML atoms.
    atoms : sequence of int, optional
        Indices of the ML atoms in the System; default ``range(len(numbers))``.
    periodic : bool
        Whether the System is periodic (the model then receives the box vectors).
    cuda_graphs : bool
        Set the TorchForce property ``useCUDAGraphs`` (only the CUDA platform uses it).
    dtype : torch.dtype
        Dtype a checkpoint-built student computes in (exports keep their own).

    Raises
    ------
    UnsupportedElementError, StructureError, CheckpointError
        For elements the model lacks, a periodic system with a model exported without periodic
        support, a self-contained export for another system, or an unreadable model.
    """
    force_model = model if isinstance(model, ForceModel) else load_force_model(model, dtype)
    metadata = force_model.metadata
    numbers = [int(z) for z in numbers]
    atoms = list(range(len(numbers))) if atoms is None else [int(i) for i in atoms]
    check_supported(numbers, metadata["atomic_numbers"])
    if periodic and not metadata.get("periodic", True):
        raise StructureError(
            "the system is periodic but the model was exported without periodic support; "
            "export it again without --no-periodic"
        )
    baked = metadata.get("species")
    if baked is not None:
        if baked != numbers or atoms != list(range(len(baked))):
            raise StructureError(
                f"the model was exported for a fixed system of {len(baked)} atoms "
                f"({metadata.get('source_checkpoint') or 'a checkpoint'}) that differs from this one; "
                "export it without --topology or with this system's topology"
            )
    else:
        force_model.module.set_species(torch.tensor(numbers), torch.tensor(atoms))
    force = openmmtorch.TorchForce(force_model.module)
    force.setOutputsForces(bool(metadata.get("outputs_forces", False)))
    force.setUsesPeriodicBoundaryConditions(bool(periodic))
    if cuda_graphs:
        force.setProperty("useCUDAGraphs", "true")
    return force


def structure_to_openmm(source: str | Path | Atoms | app.Topology, seed: int = 0) -> OpenMMStructure:
    """An OpenMM topology and positions (nm) from a file (PDB keeps residues and bonds), SMILES or ASE Atoms.

    Periodic structures must be periodic along all three directions; the cell is put into
    OpenMM's lower-triangular form (positions rotated with it).
    """
    if isinstance(source, (str, Path)) and Path(str(source)).suffix.lower() == ".pdb" and Path(str(source)).is_file():
        try:
            pdb = app.PDBFile(str(source))
        except Exception as exc:  # OpenMM raises several kinds for malformed PDB files
            raise StructureError(f"{source}: cannot read PDB file ({type(exc).__name__}: {exc})") from exc
        positions = np.asarray(pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer), dtype=np.float64)
        if any(atom.element is None for atom in pdb.topology.atoms()):
            raise StructureError(f"{source}: atoms without a recognisable element")
        box = pdb.topology.getPeriodicBoxVectors()
        check_structure(
            Atoms(
                numbers=[atom.element.atomic_number for atom in pdb.topology.atoms()],
                positions=positions * NM_TO_ANGSTROM,
                cell=None if box is None else np.asarray(box.value_in_unit(unit.nanometer)) * NM_TO_ANGSTROM,
                pbc=box is not None,
            ),
            str(source),
        )
        return OpenMMStructure(pdb.topology, positions)
    atoms = source if isinstance(source, Atoms) else read_structure(source, seed=seed)
    return OpenMMStructure(*_topology_from_atoms(atoms))


def _topology_from_atoms(atoms: Atoms) -> tuple[app.Topology, np.ndarray]:
    atoms = atoms.copy()
    if atoms.pbc.any() and not atoms.pbc.all():
        raise StructureError("OpenMM simulates fully periodic or non-periodic systems, not partly periodic ones")
    topology = app.Topology()
    residue = topology.addResidue("MOL", topology.addChain())
    for index, z in enumerate(atoms.numbers):
        try:
            element = app.Element.getByAtomicNumber(int(z))
        except KeyError:
            last = max(app.Element._elements_by_atomic_number)
            raise UnsupportedElementError(
                f"element {symbol(z)} (atomic number {int(z)}) is not in OpenMM's element table, "
                f"which holds H (1) to {symbol(last)} ({last})"
            ) from None
        topology.addAtom(f"{element.symbol}{index + 1}", element, residue)
    if atoms.pbc.all():
        cell, _ = atoms.cell.standard_form()
        atoms.set_cell(cell, scale_atoms=True)  # rotates the structure with its cell
        # the same lattice in OpenMM's reduced form; positions need not move (the model wraps them)
        topology.setPeriodicBoxVectors(
            reducePeriodicBoxVectors([openmm.Vec3(*row) for row in np.asarray(cell) / NM_TO_ANGSTROM])
        )
    positions = np.asarray(atoms.positions, dtype=np.float64) / NM_TO_ANGSTROM
    check_positions(positions)
    return topology, positions


def check_positions(positions_nm: np.ndarray, name: str = "structure") -> None:
    """Raise :class:`StructureError` for non-finite positions (nm), or beyond ±:data:`~mlff_distiller.structures.MAX_COORDINATE_A` Å."""
    check_coordinates(np.asarray(positions_nm, dtype=np.float64) * NM_TO_ANGSTROM, name)


def check_box_for_model(box_angstrom: np.ndarray, metadata: dict) -> None:
    """Raise :class:`StructureError` when a periodic box (rows, Å) is narrower than the model's cutoff."""
    check_box_for_cutoff(box_angstrom, float(metadata["cutoff_angstrom"]), "the periodic box")


def build_system(
    source: str | Path | Atoms | app.Topology | OpenMMStructure,
    model: ModelSource | ForceModel,
    remove_cm_motion: bool = True,
    cuda_graphs: bool = False,
    dtype: torch.dtype = torch.float64,
) -> openmm.System:
    """An ``openmm.System`` of ``source`` whose only potential is the student.

    Parameters
    ----------
    source : Topology, OpenMMStructure, path, SMILES or ase.Atoms
        The system; a Topology's periodic box vectors (nm) make it periodic.
    model : path, Student or ForceModel
        Student checkpoint, OpenMM export (``mlffd export --engine openmm``) or student.
    remove_cm_motion : bool
        Add a ``CMMotionRemover`` (centre-of-mass motion removed every step).
    cuda_graphs : bool
        Ask the TorchForce to capture CUDA graphs (CUDA platform only).
    dtype : torch.dtype
        Dtype a checkpoint-built student computes in.

    Returns
    -------
    openmm.System
        Particles with element masses (amu), the TorchForce, default box vectors when periodic.
    """
    if isinstance(source, app.Topology):
        topology = source
    elif isinstance(source, OpenMMStructure):
        topology = source.topology
    else:
        topology = structure_to_openmm(source).topology
    if any(atom.element is None for atom in topology.atoms()):
        raise StructureError("the topology has atoms without an element (virtual sites are not supported)")
    system = openmm.System()
    box = topology.getPeriodicBoxVectors()
    if box is not None:
        system.setDefaultPeriodicBoxVectors(*box)
    numbers = []
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
        numbers.append(atom.element.atomic_number)
    force_model = model if isinstance(model, ForceModel) else load_force_model(model, dtype)
    if box is not None:
        check_box_for_model(np.asarray(box.value_in_unit(unit.nanometer)) * NM_TO_ANGSTROM, force_model.metadata)
    system.addForce(create_torch_force(force_model, numbers, periodic=box is not None, cuda_graphs=cuda_graphs))
    if remove_cm_motion:
        system.addForce(openmm.CMMotionRemover())
    return system
