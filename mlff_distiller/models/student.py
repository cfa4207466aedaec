"""The student force field: a PaiNN network plus its own neighbour search."""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from numbers import Integral

import torch
from torch import Tensor, nn

from ..elements import DEFAULT_ELEMENTS, check_supported
from .neighbors import neighbor_list
from .painn import PaiNN


@dataclass
class StudentConfig:
    """Architecture of a student.

    Attributes
    ----------
    features : int
        Width of scalar and vector features.
    layers : int
        Number of interaction blocks.
    n_rbf : int
        Number of radial basis functions.
    cutoff : float
        Interaction range in Å.
    elements : list of int
        Supported atomic numbers, in the order of the model's species indices.
    """

    features: int = 110
    layers: int = 3
    n_rbf: int = 20
    cutoff: float = 5.0
    elements: list[int] = field(default_factory=lambda: list(DEFAULT_ELEMENTS))

    def __post_init__(self):
        problem = config_problem(asdict(self))
        if problem is not None:
            raise ValueError(problem)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "StudentConfig":
        return cls(**data)


def config_problem(config: object) -> str | None:
    """What makes an architecture (a :meth:`StudentConfig.to_dict` mapping) unusable, or None if nothing.

    Accepted: a finite ``cutoff`` > 0 Å; ``features``, ``layers`` and ``n_rbf`` integers ≥ 1;
    ``elements`` a non-empty list of distinct atomic numbers 1-118.
    """
    if not isinstance(config, dict):
        return "the architecture is not a mapping (corrupt file)"
    cutoff = config.get("cutoff")
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or not (math.isfinite(cutoff) and cutoff > 0):
        return f"cutoff {cutoff!r} Å makes no sense; a model needs a finite cutoff > 0 Å"
    for key in ("features", "layers", "n_rbf"):
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            return f"{key} {value!r} makes no sense; a model needs an integer {key} >= 1"
    elements = config.get("elements")
    if (
        not isinstance(elements, (list, tuple))
        or not elements
        or len(set(elements)) != len(elements)
        or not all(isinstance(z, Integral) and not isinstance(z, bool) and 1 <= z <= 118 for z in elements)
    ):
        return f"elements {elements!r} make no sense; a model needs distinct atomic numbers 1-118"
    return None


#: Sizes of the student family, close to the reference family's 427K, 77K and 21K parameters.
PRESETS: dict[str, StudentConfig] = {
    "standard": StudentConfig(features=110, layers=3),
    "tiny": StudentConfig(features=45, layers=3),
    "ultra-tiny": StudentConfig(features=22, layers=3),
}


def preset(name: str, **overrides) -> StudentConfig:
    """The configuration of a named size ("standard", "tiny", "ultra-tiny"), with overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown student size '{name}'; choose one of {', '.join(PRESETS)}")
    return StudentConfig(**{**PRESETS[name].to_dict(), **overrides})


class Student(nn.Module):
    """A student force field in Å and eV that TorchScript can compile.

    Parameters
    ----------
    config : StudentConfig
        Architecture, cutoff and supported elements.
    """

    def __init__(self, config: StudentConfig):
        super().__init__()
        self.config = config
        self.cutoff = float(config.cutoff)
        self.elements = list(config.elements)
        self.network = PaiNN(len(config.elements), config.features, config.layers, config.n_rbf, config.cutoff)
        lookup = torch.full((119,), -1, dtype=torch.long)
        lookup[torch.tensor(config.elements)] = torch.arange(len(config.elements))
        self.register_buffer("species_lookup", lookup)
        self.neighbor_strategy = "auto"

    @torch.jit.ignore
    def parameter_count(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    @torch.jit.ignore
    def species(self, numbers: Sequence[int]) -> Tensor:
        """Species indices of atomic numbers; raises UnsupportedElementError for foreign elements."""
        check_supported(numbers, self.elements)
        return self.species_lookup[torch.as_tensor(list(numbers), dtype=torch.long, device=self.species_lookup.device)]

    def edges(self, positions: Tensor, cell: Tensor, pbc: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Neighbour edges ``(src, dst, images)``; see :mod:`mlff_distiller.models.neighbors`."""
        return neighbor_list(positions, cell, pbc, self.cutoff, self.neighbor_strategy)

    def atomic_energies(self, positions: Tensor, species: Tensor, cell: Tensor, pbc: Tensor) -> Tensor:
        """Energy of each atom in eV.

        Parameters
        ----------
        positions : Tensor, shape (N, 3)
            Positions in Å (may require grad).
        species : Tensor, shape (N,), int64
            Species indices (see :meth:`species`).
        cell : Tensor, shape (3, 3)
            Lattice vectors as rows in Å (may require grad, for stress).
        pbc : Tensor, shape (3,), bool
            Periodicity per lattice direction.
        """
        src, dst, images = self.edges(positions, cell, pbc)
        vectors = positions.index_select(0, dst) - positions.index_select(0, src)
        if bool(pbc.any()):  # in vacuum every image is zero: skip a product and its backward
            vectors = vectors + images @ cell
        return self.network(species, src, dst, vectors)

    def forward(self, positions: Tensor, species: Tensor, cell: Tensor, pbc: Tensor) -> Tensor:
        """Total potential energy in eV; arguments as in :meth:`atomic_energies`."""
        return self.atomic_energies(positions, species, cell, pbc).sum()

    @torch.jit.ignore
    def energy_and_forces(
        self, positions: Tensor, species: Tensor, cell: Tensor | None = None, pbc: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Energy (eV) and forces (eV/Å) by autograd; a molecule in vacuum when ``cell`` is None."""
        dtype = self.network.energy_scale.dtype
        positions = positions.detach().to(dtype).requires_grad_(True)
        cell = torch.zeros((3, 3), dtype=dtype) if cell is None else cell.to(dtype)
        pbc = torch.zeros(3, dtype=torch.bool) if pbc is None else pbc
        energy = self.forward(positions, species, cell, pbc)
        (gradient,) = torch.autograd.grad(energy, positions)
        return energy.detach(), -gradient
