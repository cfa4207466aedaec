"""The student's weights as the C++ network reads them: by name, in its layout.

:func:`kernel_weights` is the one place the Python side of that layout is written; the C++ side
is ``weights.h`` (``read_weights``), which checks every name, shape and dtype before reading.
Both the fused kernel (:class:`~mlff_distiller.models.fused.FusedStudentForces`) and the LAMMPS
export (:class:`~mlff_distiller.export.lammps.LammpsStudent`) hand over this dictionary.
"""

from torch import Tensor

from ..student import Student


def _linear(weights: dict[str, Tensor], name: str, weight: Tensor, bias: Tensor | None) -> None:
    """A linear map y = x W^T + b: W^T (in x out) for the kernel's forward products, W (out x in)
    for its reverse products, and b (out) where the map has one."""
    weights[f"{name}.weight_t"] = weight.t()
    weights[f"{name}.weight"] = weight
    if bias is not None:
        weights[f"{name}.bias"] = bias


def kernel_weights(student: Student) -> dict[str, Tensor]:
    """The student's weights by name, detached, contiguous copies in its dtype.

    Names: ``embedding.weight`` (species x F), ``basis.frequencies`` (n_rbf, 1/Å); per block
    ``interactions.<l>.<map>.weight_t`` / ``.weight`` / ``.bias`` for the maps ``context_in``,
    ``context_out``, ``filter`` (radial features and envelope, the envelope's column carrying the
    bias), ``mix_u``, ``mix_v``, ``gate_in``, ``gate_out``; then ``readout_in.*``,
    ``readout_out.weight`` (1 x H), ``readout_out.bias``, ``energy_scale`` (1) and
    ``reference_energies`` (species, eV).
    """
    network = student.network
    weights = {"embedding.weight": network.embedding.weight, "basis.frequencies": network.basis.frequencies}
    for index, block in enumerate(network.interactions):
        prefix = f"interactions.{index}."
        _linear(weights, prefix + "context_in", block.context[0].weight, block.context[0].bias)
        _linear(weights, prefix + "context_out", block.context[2].weight, block.context[2].bias)
        _linear(weights, prefix + "filter", block.envelope_filter_weight(), None)
        _linear(weights, prefix + "mix_u", block.mix_u.weight, None)
        _linear(weights, prefix + "mix_v", block.mix_v.weight, None)
        _linear(weights, prefix + "gate_in", block.gate[0].weight, block.gate[0].bias)
        _linear(weights, prefix + "gate_out", block.gate[2].weight, block.gate[2].bias)
    readout_in, readout_out = network.readout[0], network.readout[2]
    _linear(weights, "readout_in", readout_in.weight, readout_in.bias)
    weights["readout_out.weight"] = readout_out.weight
    weights["readout_out.bias"] = readout_out.bias
    weights["energy_scale"] = network.energy_scale.reshape(1)
    weights["reference_energies"] = network.reference_energies
    return {name: tensor.detach().contiguous().clone() for name, tensor in weights.items()}
