"""The LAMMPS target: a TorchScript module for ``pair_style mlffd`` (metal units: Å, eV).

PaiNN passes messages: with L layers the energy of an atom depends on atoms up to
L x cutoff away, much further than LAMMPS's ghost atoms (cutoff + skin). Rather than
growing the ghost shell L-fold (and repeating most of the work on ghosts), the pair
style runs the network one layer at a time and lets LAMMPS communicate per-atom
features between layers, as it communicates positions:

1. :meth:`LammpsStudent.embed` gives the layer-0 features of local and ghost atoms,
   and :meth:`LammpsStudent.geometry` the radial features and unit vectors of the edges
   (local receiver, local or ghost neighbour closer than the cutoff), once per step.
2. :meth:`LammpsStudent.interaction` updates the features of the *local* atoms from
   their edges; a forward communication then copies every owner's new features onto
   its ghosts.
3. :meth:`LammpsStudent.readout` turns the final features of local atoms into
   per-atom energies (eV).

The backward pass runs the layers in reverse: gradients that land on ghost features
are summed onto their owners by a reverse communication; the gradients on the
geometry, summed over the layers, are taken back to the edge vectors in one pass at
the end and become forces (on local and ghost atoms, summed by LAMMPS) and the virial.
Features travel as one (atoms, 4 x features) float64 block per atom: scalars, then
the three Cartesian components of the vectors.

:meth:`LammpsStudent.forward` runs all layers in one call over every atom it is
given (nothing communicated): the reference the per-layer path is tested against,
and a one-call interface for hosts that supply ghost atoms L x cutoff deep.
"""

from pathlib import Path
from typing import List, Optional, Union

import torch
from torch import Tensor, nn

from ..elements import symbols
from ..errors import MLFFDError, OverwriteError
from ..models import load_checkpoint
from ..models.painn import Interaction, PaiNN
from ..models.student import Student
from .metadata import PRECISIONS, build_metadata, save_with_metadata
from .verify import TOLERANCE, ExportVerificationError, test_configuration

#: The ``pair_style`` name the C++ plugin registers.
PAIR_STYLE = "mlffd"


class LocalInteraction(nn.Module):
    """One PaiNN block that updates only the first ``nlocal`` atoms (the receivers).

    The messages are those of :meth:`~mlff_distiller.models.painn.Interaction.messages`;
    they are summed onto local atoms only, so that no update is spent on ghosts. The
    edges are not split into chunks as in :class:`~mlff_distiller.models.painn.Interaction`:
    the backward pass of each chunk's gather of ``context`` fills a gradient over all N local
    and ghost atoms, and in LAMMPS on 6,144 water atoms (float32, one rank) chunks of the
    same size made the step 3 % (22 features) to 13 % (45 features) slower.
    """

    def __init__(self, block: Interaction):
        super().__init__()
        self.block = block
        self.features = block.features
        self.norm_epsilon = block.norm_epsilon

    def forward(
        self, s: Tensor, v: Tensor, radial: Tensor, unit: Tensor, src: Tensor, dst: Tensor, nlocal: int, first: bool
    ) -> List[Tensor]:
        """Updated ``[s, v]`` of the first ``nlocal`` atoms.

        Shapes: ``s`` (N, F), ``v`` (3, N, F) Cartesian component first, ``radial``
        (E, n_rbf + 1), ``unit`` (3, E, 1); returns (nlocal, F) and (3, nlocal, F).
        ``first``: the incoming ``v`` is zero, its vector-vector message is skipped.
        """
        block = self.block
        ms, vector_message = block.messages(v, block.context(s), radial, unit, dst, first)
        s = s[:nlocal].index_add(0, src, ms)
        v = v[:, :nlocal].index_add(1, src, vector_message)
        u_v = block.mix_u(v)
        v_v = block.mix_v(v)
        norm = torch.sqrt((v_v * v_v).sum(0) + self.norm_epsilon)
        avv, asv, ass = torch.split(block.gate(torch.cat([s, norm], dim=1)), self.features, dim=1)
        return [s + asv * (u_v * v_v).sum(0) + ass, v + avv * u_v]


class LammpsStudent(nn.Module):
    """A student as the model of ``pair_style mlffd``: Å and eV, float64 in and out.

    Inputs are float64 whatever the precision the model computes in (cast inside).
    Atoms are ordered local first, then ghosts; ``src`` holds local atoms only.

    Parameters
    ----------
    student : Student
        The force field, already in the dtype it should compute in.
    """

    def __init__(self, student: Student):
        super().__init__()
        network: PaiNN = student.network
        self.network = network
        self.blocks = nn.ModuleList([LocalInteraction(block) for block in network.interactions])
        self.cutoff = float(student.cutoff)
        self.layers = len(network.interactions)
        self.features = int(network.features)
        #: Width of the per-atom block the pair style communicates between layers.
        self.width = 4 * int(network.features)
        self.elements: List[int] = [int(z) for z in student.elements]
        self.symbols: List[str] = symbols(student.elements)
        self.engine = "lammps"
        self.units = "metal"
        self.dtype = network.energy_scale.dtype

    @torch.jit.export
    def geometry(self, vectors: Tensor) -> List[Tensor]:
        """What every block needs of the edges, computed once per step in the model's dtype.

        Parameters
        ----------
        vectors : Tensor, shape (E, 3), float64
            ``x[dst] - x[src]`` in Å for every edge closer than the cutoff.

        Returns
        -------
        list of Tensor
            ``radial`` (E, n_rbf + 1), the envelope-weighted radial basis (1/Å) and the
            envelope (see :meth:`~mlff_distiller.models.painn.PaiNN.radial_features`), and
            ``unit`` (3, E, 1), the unit vector of each edge, Cartesian component first.
        """
        vectors = vectors.to(self.dtype)
        distances = torch.sqrt((vectors * vectors).sum(1))
        unit = (vectors / distances[:, None]).t().unsqueeze(2)
        return [self.network.radial_features(distances), unit]

    @torch.jit.export
    def embed(self, species: Tensor) -> Tensor:
        """Layer-0 features (N, width), float64, of atoms with species indices ``species`` (N,)."""
        s = self.network.embedding(species)
        return torch.cat([s, torch.zeros((s.shape[0], 3 * self.features), dtype=s.dtype)], dim=1).to(torch.float64)

    @torch.jit.export
    def interaction(
        self, layer: int, features: Tensor, radial: Tensor, unit: Tensor, src: Tensor, dst: Tensor, nlocal: int
    ) -> Tensor:
        """Features (nlocal, width) after block ``layer`` (0-based), float64.

        Parameters
        ----------
        layer : int
            Index of the interaction block, 0 .. layers - 1.
        features : Tensor, shape (N, width), float64
            Features of local and ghost atoms before the block.
        radial, unit : Tensor
            The edges' geometry from :meth:`geometry` (model dtype).
        src, dst : Tensor, shape (E,), int64
            Receiving local atom and its (local or ghost) neighbour of each edge.
        nlocal : int
            Number of local atoms (the first rows of ``features``).
        """
        features = features.to(self.dtype)
        n = features.shape[0]
        s = features[:, : self.features]
        v = features[:, self.features :].reshape(n, 3, self.features).transpose(0, 1)
        for index, block in enumerate(self.blocks):
            if index == layer:
                s, v = block(s, v, radial, unit, src, dst, nlocal, index == 0)
        return torch.cat([s, v.transpose(0, 1).reshape(s.shape[0], 3 * self.features)], dim=1).to(torch.float64)

    @torch.jit.export
    def readout(self, features: Tensor, species: Tensor) -> Tensor:
        """Energy (eV) of each atom, float64, from its final features (n, width) and species (n,)."""
        s = features[:, : self.features].to(self.dtype)
        network = self.network
        energies = network.readout(s).squeeze(1) * network.energy_scale + network.reference_energies[species]
        return energies.to(torch.float64)

    def forward(self, positions: Tensor, species: Tensor, src: Tensor, dst: Tensor, nlocal: int) -> List[Tensor]:
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
        radial, unit = self.geometry(positions[dst] - positions[src])
        features = self.embed(species)
        n = features.shape[0]
        for layer in range(self.layers):
            features = self.interaction(layer, features, radial, unit, src, dst, n)
        energies = self.readout(features[:nlocal], species[:nlocal])
        return [energies.sum(), energies]


def lammps_module(student: Student) -> torch.jit.ScriptModule:
    """``student`` as a scripted :class:`LammpsStudent` (not saved)."""
    return torch.jit.script(LammpsStudent(student.eval()))


def export_lammps(
    checkpoint: Union[str, Path],
    output: Union[str, Path],
    *,
    precision: str = "float64",
    periodic: bool = True,
    overwrite: bool = False,
    topology: Optional[Union[str, Path]] = None,
) -> Path:
    """Write a checkpoint as the TorchScript model of ``pair_style mlffd``.

    Parameters
    ----------
    checkpoint : str or Path
        Student checkpoint (``.ckpt``).
    output : str or Path
        TorchScript file to write (``.pt``).
    precision : str
        ``"float64"`` (default) or ``"float32"``: the dtype the network computes in; the
        pair style always exchanges float64.
    periodic : bool
        Recorded only: LAMMPS decides periodicity with its ``boundary`` command.
    overwrite : bool
        Replace an existing ``output``.
    topology : str or Path, optional
        Not used: LAMMPS maps atom types to elements with ``pair_coeff``.

    Returns
    -------
    Path
        ``output``, verified: the saved file reproduces the student's energy and forces.
    """
    output = Path(output)
    if topology is not None:
        raise MLFFDError("LAMMPS models take no topology: atom types are mapped to elements by 'pair_coeff * * H O ...'")
    if output.exists() and not overwrite:
        raise OverwriteError(f"{output} exists; pass --overwrite to replace it")
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
    save_with_metadata(scripted, output, metadata)
    verify_lammps(output, student)
    return output


def verify_lammps(path: Union[str, Path], student: Student) -> None:
    """Reload ``path`` and check its energy and forces on a small cluster against ``student``.

    Raises :class:`ExportVerificationError` beyond the relative tolerance of
    :data:`~mlff_distiller.export.verify.TOLERANCE` for the student's dtype.
    """
    atoms = test_configuration(student)
    loaded = torch.jit.load(str(path), map_location="cpu")
    positions = torch.tensor(atoms.positions, dtype=torch.float64)
    species = student.species(atoms.numbers)
    expected_energy, expected_forces = student.energy_and_forces(positions, species)
    src, dst, _ = student.edges(positions, torch.zeros((3, 3), dtype=torch.float64), torch.zeros(3, dtype=torch.bool))
    positions.requires_grad_(True)
    energy = loaded(positions, species, src, dst, len(atoms))[0]
    (gradient,) = torch.autograd.grad(energy, positions)
    errors = [_relative(energy.detach(), expected_energy), _relative(-gradient, expected_forces)]
    tolerance = TOLERANCE[student.network.energy_scale.dtype]
    if not all(e <= tolerance for e in errors):  # also catches NaN
        raise ExportVerificationError(
            f"{path}: exported LAMMPS model disagrees with the checkpoint (relative energy error {errors[0]:.1e}, "
            f"force error {errors[1]:.1e}, tolerance {tolerance:.0e}); please report this as a bug"
        )


def _relative(actual: Tensor, expected: Tensor) -> float:
    expected = expected.to(torch.float64)
    return float((actual.to(torch.float64) - expected).abs().max()) / max(float(expected.abs().max()), 1e-30)
