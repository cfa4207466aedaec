"""PaiNN-style equivariant message passing (Schütt et al., ICML 2021).

Scalar features ``s`` (N, F) and vector features ``v`` (N, 3, F) are updated
by messages along edges. Linear maps act on the feature axis only, never on
x/y/z, so energies are invariant and forces equivariant under rotation. Every
radial filter is multiplied by a smooth cosine envelope that vanishes, with
zero slope, at the cutoff: a neighbour crossing the cutoff changes neither
the energy nor the forces abruptly.
"""

import math

import torch
from torch import Tensor, nn

#: Added under the square root of vector norms so that their gradient stays finite at zero.
NORM_EPSILON = 1e-8
#: Edges are processed in chunks whose (E, 3F) message tensor is about this big (bytes).
EDGE_CHUNK_BYTES = 2**21


def cosine_envelope(distances: Tensor, cutoff: float) -> Tensor:
    """Envelope 0.5 (cos(pi r / r_cut) + 1) for r < r_cut, else 0 (dimensionless)."""
    envelope = 0.5 * (torch.cos(distances * (math.pi / cutoff)) + 1.0)
    return torch.where(distances < cutoff, envelope, torch.zeros_like(envelope))


class RadialBasis(nn.Module):
    """Sine basis sin(n pi r / r_cut) / r, n = 1..n_rbf, for distances r in Å."""

    def __init__(self, n_rbf: int, cutoff: float):
        super().__init__()
        self.cutoff = cutoff
        self.register_buffer("frequencies", torch.arange(1, n_rbf + 1, dtype=torch.float32) * math.pi / cutoff)

    def forward(self, distances: Tensor) -> Tensor:
        return torch.sin(distances[:, None] * self.frequencies) / distances[:, None]


class Interaction(nn.Module):
    """One PaiNN message + update block with its own envelope-weighted filter."""

    def __init__(self, features: int, n_rbf: int):
        super().__init__()
        self.features = features
        self.norm_epsilon = NORM_EPSILON
        self.edge_chunk_bytes = EDGE_CHUNK_BYTES
        self.context = nn.Sequential(nn.Linear(features, features), nn.SiLU(), nn.Linear(features, 3 * features))
        self.filter = nn.Linear(n_rbf, 3 * features)
        self.mix_u = nn.Linear(features, features, bias=False)
        self.mix_v = nn.Linear(features, features, bias=False)
        self.gate = nn.Sequential(nn.Linear(2 * features, features), nn.SiLU(), nn.Linear(features, 3 * features))

    def forward(
        self, s: Tensor, v: Tensor, radial: Tensor, unit: Tensor, src: Tensor, dst: Tensor, first: bool
    ) -> list[Tensor]:
        """Updated ``[s, v]``.

        Parameters
        ----------
        s : Tensor, shape (N, F)
            Scalar features.
        v : Tensor, shape (3, N, F)
            Vector features, Cartesian component first.
        radial : Tensor, shape (E, n_rbf + 1)
            Envelope-weighted radial basis and envelope of each edge (see :meth:`PaiNN.radial_features`).
        unit : Tensor, shape (3, E, 1)
            Unit vector of each edge, Cartesian component first.
        src, dst : Tensor, shape (E,), int64
            Edges: ``src`` receives from ``dst``.
        first : bool
            True for the first block, whose incoming ``v`` is zero: its vector-vector third of the
            context and filter is never computed.
        """
        f = self.features
        context = self.context(s)
        weight = self.envelope_filter_weight()
        if first:  # no vector-vector message: only the scalar and vector-scalar thirds
            context = torch.cat([context[:, :f], context[:, 2 * f :]], dim=1)
            weight = torch.cat([weight[:f], weight[2 * f :]])
        n_edges = src.shape[0]
        chunk = max(1024, self.edge_chunk_bytes // (3 * f * s.element_size()))
        if n_edges <= chunk or not s.is_cpu:  # GPUs gain nothing from chunks, only more launches
            ms, vector_message = self.messages(v, context, weight, radial, unit, dst, first)
            s = s.index_add(0, src, ms)
            v = v.index_add(1, src, vector_message)
        else:  # chunks of edges small enough to stay in cache from one operation to the next
            # split once: autograd then joins the chunks' gradients in one step, where slicing in
            # the loop would build a gradient as large as the whole tensor for every chunk
            radials, units = radial.split(chunk), unit.split(chunk, 1)
            sources, targets = src.split(chunk), dst.split(chunk)
            s_sum = s.clone()
            v_sum = v.clone()
            for k in range(len(radials)):
                ms, vector_message = self.messages(v, context, weight, radials[k], units[k], targets[k], first)
                s_sum.index_add_(0, sources[k], ms)
                v_sum.index_add_(1, sources[k], vector_message)
            s, v = s_sum, v_sum

        u_v = self.mix_u(v)
        v_v = self.mix_v(v)
        norm = torch.sqrt((v_v * v_v).sum(0) + self.norm_epsilon)
        avv, asv, ass = torch.split(self.gate(torch.cat([s, norm], dim=1)), f, dim=1)
        v = v + avv * u_v
        s = s + asv * (u_v * v_v).sum(0) + ass
        return [s, v]

    def messages(
        self, v: Tensor, context: Tensor, weight: Tensor, radial: Tensor, unit: Tensor, dst: Tensor, first: bool
    ) -> list[Tensor]:
        """Scalar (E, F) and vector (3, E, F) messages along edges from ``dst``.

        ``context`` is ``context(s)`` and ``weight`` the map of :meth:`envelope_filter_weight`, both
        without their vector-vector third when ``first``. The scalar message is made contiguous:
        ``index_add`` of a strided source is several times slower.
        """
        message = context.index_select(0, dst) * torch.nn.functional.linear(radial, weight)
        if first:
            ms, mvs = torch.split(message, self.features, dim=1)
            return [ms.contiguous(), mvs * unit]
        ms, mvv, mvs = torch.split(message, self.features, dim=1)
        return [ms.contiguous(), mvs * unit + mvv * v.index_select(1, dst)]

    def envelope_filter_weight(self) -> Tensor:
        """The filter's weight with its bias as a last column, (3F, n_rbf + 1).

        ``linear(radial, envelope_filter_weight())`` is ``filter(basis) * envelope`` as one product
        of the radial features (:meth:`PaiNN.radial_features`): the envelope column carries the bias.
        """
        return torch.cat([self.filter.weight, self.filter.bias.unsqueeze(1)], dim=1)


class PaiNN(nn.Module):
    """Per-atom energies (eV) from species indices and edge vectors (Å).

    Parameters
    ----------
    n_species : int
        Number of supported elements; species are indices into that list.
    features : int
        Width F of scalar and vector features.
    layers : int
        Number of interaction blocks.
    n_rbf : int
        Number of radial basis functions.
    cutoff : float
        Interaction range r_cut in Å.
    """

    def __init__(self, n_species: int, features: int, layers: int, n_rbf: int, cutoff: float):
        super().__init__()
        self.cutoff = cutoff
        self.features = features
        self.embedding = nn.Embedding(n_species, features)
        self.basis = RadialBasis(n_rbf, cutoff)
        self.interactions = nn.ModuleList([Interaction(features, n_rbf) for _ in range(layers)])
        self.readout = nn.Sequential(nn.Linear(features, features // 2), nn.SiLU(), nn.Linear(features // 2, 1))
        self.register_buffer("energy_scale", torch.ones(()))
        self.register_buffer("reference_energies", torch.zeros(n_species))

    def forward(self, species: Tensor, src: Tensor, dst: Tensor, vectors: Tensor) -> Tensor:
        """Energy of each atom in eV.

        Parameters
        ----------
        species : Tensor, shape (N,), int64
            Index of each atom's element in the model's element list.
        src, dst : Tensor, shape (E,), int64
            Edges: atom ``src`` receives a message from its neighbour ``dst``.
        vectors : Tensor, shape (E, 3)
            ``position[dst] - position[src]`` including periodic shifts, Å.
        """
        distances = torch.sqrt((vectors * vectors).sum(1))
        unit = (vectors / distances[:, None]).t().unsqueeze(2)
        radial = self.radial_features(distances)
        s = self.embedding(species)
        v = torch.zeros((3, s.shape[0], self.features), dtype=s.dtype, device=s.device)
        for index, interaction in enumerate(self.interactions):
            s, v = interaction(s, v, radial, unit, src, dst, index == 0)
        return self.readout(s).squeeze(1) * self.energy_scale + self.reference_energies[species]

    def radial_features(self, distances: Tensor) -> Tensor:
        """Radial basis times envelope, with the envelope itself as a last column.

        Every block's ``filter(basis) * envelope`` is a single linear map of these features
        (:meth:`Interaction.envelope_filter_weight`), which saves a bias addition and an envelope
        multiplication on an (E, 3F) tensor per block, forward and backward.

        Parameters
        ----------
        distances : Tensor, shape (E,)
            Edge lengths in Å.

        Returns
        -------
        Tensor, shape (E, n_rbf + 1)
        """
        envelope = cosine_envelope(distances, self.cutoff).unsqueeze(1)
        return torch.cat([self.basis(distances) * envelope, envelope], dim=1)
