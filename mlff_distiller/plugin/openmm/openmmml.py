"""OpenMM-ML backend: ``MLPotential("mlff-distiller", modelPath=...)``.

Registered through the ``openmmml.potentials`` entry point, so ``createSystem`` and
``createMixedSystem`` (student for a subset, a classical force field for the rest) work.
"""

from collections.abc import Iterable

import torch

import openmm
from openmm import app
from openmmml.mlpotential import MLPotentialImpl, MLPotentialImplFactory

from ...errors import MLFFDError
from .system import create_torch_force, load_force_model

#: OpenMM-ML's ``precision`` values and the dtype a checkpoint's student computes in for each.
PRECISIONS = {"double": torch.float64, "single": torch.float32}


def precision_dtype(precision: str | None, default: torch.dtype = torch.float64) -> torch.dtype:
    """The dtype of an OpenMM-ML ``precision`` (``None``: ``default``).

    Raises
    ------
    MLFFDError
        For any value but ``"single"``, ``"double"`` and ``None``, naming the accepted values.
    """
    if precision is None:
        return default
    if precision not in PRECISIONS:
        raise MLFFDError(f"unknown precision {precision!r} for mlff-distiller; choose 'single' or 'double'")
    return PRECISIONS[precision]


class StudentPotentialImplFactory(MLPotentialImplFactory):
    """Creates :class:`StudentPotentialImpl` for ``MLPotential("mlff-distiller", modelPath=...)``."""

    def createImpl(self, name: str, modelPath: str, precision: str | None = "double", **args) -> MLPotentialImpl:
        """``modelPath``: checkpoint or OpenMM export; ``precision``: ``"double"`` or ``"single"`` (checkpoints only)."""
        return StudentPotentialImpl(modelPath, precision)


class StudentPotentialImpl(MLPotentialImpl):
    """Adds a student's TorchForce to a System (all atoms, or the ML subset of a mixed system).

    Parameters
    ----------
    model_path : str
        Student checkpoint or OpenMM export (``mlffd export --engine openmm``, without ``--topology``
        for mixed systems).
    precision : str or None
        ``"double"`` (float64; also ``None``) or ``"single"`` (float32) for a checkpoint; exports keep
        their own. ``createSystem(..., precision=...)`` overrides it, as for OpenMM-ML's other
        potentials. See docs/openmm.md for which is faster.

    Raises
    ------
    MLFFDError
        For any other ``precision``, naming the accepted values.
    """

    def __init__(self, model_path: str, precision: str | None = "double"):
        self.model_path = model_path
        self.dtype = precision_dtype(precision)

    def getMLLongRange(self) -> bool:
        """False: a student's interactions end at its cutoff (a few Å), so it is a local potential."""
        return False

    def addForces(
        self,
        topology: app.Topology,
        system: openmm.System,
        atoms: Iterable[int] | None,
        forceGroup: int,
        cudaGraphs: bool = False,
        precision: str | None = None,
        **args,
    ) -> None:
        """Add the TorchForce for ``atoms`` (all when None) in ``forceGroup``; periodic if the topology has a box.

        ``precision`` (``"single"``, ``"double"``; None keeps the one given at construction) is the
        dtype a checkpoint's student computes in.
        """
        all_atoms = list(topology.atoms())
        indices = list(range(len(all_atoms))) if atoms is None else list(atoms)
        numbers = [all_atoms[i].element.atomic_number for i in indices]
        force = create_torch_force(
            load_force_model(self.model_path, precision_dtype(precision, self.dtype)),
            numbers,
            atoms=indices,
            periodic=topology.getPeriodicBoxVectors() is not None,
            cuda_graphs=cudaGraphs,
        )
        force.setForceGroup(forceGroup)
        system.addForce(force)
