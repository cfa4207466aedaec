"""The LAMMPS target: the model file of ``pair_style mlffd`` (metal units: Å, eV).

PaiNN passes messages: with L layers the energy of an atom depends on atoms up to
L x cutoff away, much further than LAMMPS's ghost atoms (cutoff + skin). Rather than
growing the ghost shell L-fold (and repeating most of the work on ghosts), the pair
style runs the network one layer at a time and lets LAMMPS communicate per-atom
features between layers, as it communicates positions. It runs the fused network of
``mlff_distiller/models/kernel/painn.h`` (compiled into the plugin), layer by layer:

1. the layer-0 features of local and ghost atoms, and the geometry of the edges (local
   receiver, local or ghost neighbour closer than the cutoff), once per step;
2. each block updates the features of the *local* atoms from their edges; a forward
   communication then copies every owner's new features onto its ghosts;
3. the readout turns the final features of local atoms into per-atom energies (eV).

The reverse pass runs the layers backwards: gradients that land on ghost features are
summed onto their owners by a reverse communication; the gradients on the edges become
forces (on local and ghost atoms, summed by LAMMPS) and the virial. Features travel as
one row of 4 x features doubles per atom: scalars, then the three Cartesian components
of the vectors.

The model file is a scripted :class:`LammpsStudent`: the pair style reads the network's
weights (:attr:`LammpsStudent.kernel_weights`, by name, every name and shape checked) and
settings from it; its ``forward`` evaluates all layers in one call over every atom it is
given (nothing communicated) by autograd. An export is verified by running its weights
through the C++ network the pair style compiles
(:func:`~mlff_distiller.export.verify.verify_lammps`).
"""

from pathlib import Path

import torch
from torch import Tensor, nn

from ..elements import symbols
from ..errors import MLFFDError
from ..models import load_checkpoint
from ..models.kernel.weights import kernel_weights
from ..models.painn import PaiNN
from ..models.student import Student
from ..safe_write import check_output, staged_file
from .metadata import PRECISIONS, build_metadata, save_with_metadata
from .verify import verify_lammps

#: The ``pair_style`` name the C++ plugin registers.
PAIR_STYLE = "mlffd"


class LammpsStudent(nn.Module):
    """A student as the model of ``pair_style mlffd``: Å and eV, float64 in and out.

    Parameters
    ----------
    student : Student
        The force field, already in the dtype it should compute in (the dtype of
        :attr:`kernel_weights`, which the pair style computes in).
    """

    #: The weights by name in the layout of the fused network (see
    #: :func:`~mlff_distiller.models.kernel.weights.kernel_weights`), read by the pair style.
    #: (Annotated here: TorchScript warns of ``dict``/``list`` annotations inside ``__init__``.)
    kernel_weights: dict[str, Tensor]
    #: Atomic numbers and symbols of the model's elements, by species index.
    elements: list[int]
    symbols: list[str]

    def __init__(self, student: Student):
        super().__init__()
        network: PaiNN = student.network
        self.network = network
        self.kernel_weights = kernel_weights(student)
        self.cutoff = float(student.cutoff)
        self.layers = len(network.interactions)
        self.features = int(network.features)
        self.norm_epsilon = float(network.interactions[0].norm_epsilon)
        #: Width of the per-atom row the pair style communicates between layers.
        self.width = 4 * int(network.features)
        self.elements = [int(z) for z in student.elements]
        self.symbols = symbols(student.elements)
        self.engine = "lammps"
        self.units = "metal"
        self.dtype = network.energy_scale.dtype

    def forward(self, positions: Tensor, species: Tensor, src: Tensor, dst: Tensor, nlocal: int) -> list[Tensor]:
        """Energy of the first ``nlocal`` atoms (eV) and their per-atom energies, in one call.

        Parameters
        ----------
        positions : Tensor, shape (N, 3), float64
            Positions (Å) of local atoms followed by ghost atoms (periodic images already
            placed); differentiate the energy with respect to them for forces on all N.
        species : Tensor, shape (N,), int64
            Species indices (positions in the model's element list).
        src, dst : Tensor, shape (E,), int64
            Every pair closer than the cutoff among all N atoms, both directions.
        nlocal : int
            Number of local atoms. Their energies are exact when ghosts extend
            ``layers`` x ``cutoff`` beyond them.
        """
        vectors = (positions.index_select(0, dst) - positions.index_select(0, src)).to(self.dtype)
        energies = self.network(species, src, dst, vectors)[:nlocal].to(torch.float64)
        return [energies.sum(), energies]


def lammps_module(student: Student) -> torch.jit.ScriptModule:
    """``student`` as a scripted :class:`LammpsStudent` (not saved)."""
    return torch.jit.script(LammpsStudent(student.eval()))


def export_lammps(
    checkpoint: str | Path,
    output: str | Path,
    *,
    precision: str = "float32",
    periodic: bool = True,
    overwrite: bool = False,
    topology: str | Path | None = None,
) -> Path:
    """Write a checkpoint as the TorchScript model of ``pair_style mlffd``.

    Parameters
    ----------
    checkpoint : str or Path
        Student checkpoint (``.ckpt``).
    output : str or Path
        TorchScript file to write (``.pt``).
    precision : str
        ``"float32"`` (default; about 6x faster in LAMMPS) or ``"float64"``: the dtype the
        network computes in; the pair style always exchanges float64.
    periodic : bool
        Recorded only: LAMMPS decides periodicity with its ``boundary`` command.
    overwrite : bool
        Replace an existing ``output`` (never the checkpoint itself).
    topology : str or Path, optional
        Not used: LAMMPS maps atom types to elements with ``pair_coeff``.

    Returns
    -------
    Path
        ``output``, verified (:func:`~mlff_distiller.export.verify.verify_lammps`): the C++
        network of the pair style, given the file's weights, reproduces the student's energy and
        forces.

    Raises
    ------
    ExportVerificationError
        When it does not; ``output`` is then left as it was.
    """
    output = Path(output)
    if topology is not None:
        raise MLFFDError(
            "LAMMPS models take no topology: atom types are mapped to elements by 'pair_coeff * * H O ...'"
        )
    check_output(output, inputs=[checkpoint], overwrite=overwrite)
    student = load_checkpoint(checkpoint, dtype=PRECISIONS[precision])
    scripted = lammps_module(student)
    layers = int(student.config.layers)
    metadata = build_metadata(
        student,
        "lammps",
        precision,
        checkpoint=checkpoint,
        periodic=periodic,
        pair_style=f"pair_style {PAIR_STYLE} {output.name}",
        lammps_units="metal",
        layers=layers,
        features=int(student.config.features),
        receptive_field_angstrom=layers * student.cutoff,
        newton_pair="on",
    )
    # renamed into place once the C++ network reproduces the student: a file that fails
    # verification never replaces the output
    with staged_file(output, inputs=[checkpoint], overwrite=overwrite) as staged:
        verify_lammps(save_with_metadata(scripted, staged, metadata), student, output)
    return output
