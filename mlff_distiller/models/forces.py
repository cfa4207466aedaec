"""Energies and forces of a student by a hand-written reverse pass, without autograd.

An MD engine needs the energy and its gradient with respect to the positions, nothing else.
Autograd records every operation of the forward pass and replays it backwards through a
generic engine, and openmm-torch's ``backward()`` visits every leaf; for the small tensors of a
molecule that bookkeeping costs more than the arithmetic. :class:`StudentForces` runs the same
PaiNN arithmetic as :class:`~mlff_distiller.models.painn.PaiNN` forward, keeps the few per-atom
intermediates the reverse pass needs, and then applies the chain rule block by block by hand:
about half the tensor operations of autograd and no graph. It reads the student's own weights,
so it is always the same function; the tests compare it with autograd to 1e-10.

Only forces (and per-atom energies) come out: training, which needs gradients with respect to
the weights, and stress keep using autograd on :class:`~mlff_distiller.models.student.Student`.
"""

import math
from typing import List, Tuple

import torch
from torch import Tensor, nn
from torch.nn.functional import linear, silu  # linear, not addmm: openmm-torch freezes the module, and the
# frozen graph's shape analysis mis-sizes addmm with a one-element bias (torch 2.9)

from .painn import EDGE_CHUNK_BYTES
from .student import Student


def silu_slope(x: Tensor) -> Tensor:
    """d silu(x) / dx = sigmoid(x) (1 + x (1 - sigmoid(x)))."""
    sigmoid = torch.sigmoid(x)
    return sigmoid * (1.0 + x * (1.0 - sigmoid))


class StudentForces(nn.Module):
    """Per-atom energies (eV) and forces (eV/Å) of a student, computed without autograd.

    Parameters
    ----------
    student : Student
        The force field; its weights are shared, not copied.
    """

    def __init__(self, student: Student):
        super().__init__()
        self.student = student
        network = student.network
        self.features = int(network.features)
        self.cutoff = float(network.cutoff)
        self.norm_epsilon = float(network.interactions[0].norm_epsilon)
        self.edge_chunk_bytes = EDGE_CHUNK_BYTES

    def forward(self, positions: Tensor, species: Tensor, cell: Tensor, pbc: Tensor) -> Tuple[Tensor, Tensor]:
        """Energy of each atom (N,) in eV and force on each atom (N, 3) in eV/Å.

        Parameters
        ----------
        positions : Tensor, shape (N, 3)
            Positions in Å, in the student's dtype.
        species : Tensor, shape (N,), int64
            Species indices (see :meth:`Student.species`).
        cell : Tensor, shape (3, 3)
            Lattice vectors as rows in Å.
        pbc : Tensor, shape (3,), bool
            Periodicity per lattice direction.
        """
        src, dst, images = self.student.edges(positions, cell, pbc)
        vectors = positions.index_select(0, dst) - positions.index_select(0, src)
        if bool(pbc.any()):
            vectors = vectors + images @ cell
        energies, edge_gradient = self.edge_gradient(species, src, dst, vectors)
        gradient = torch.zeros_like(positions).index_add(0, dst, edge_gradient).index_add(0, src, -edge_gradient)
        return energies, -gradient

    def edge_gradient(self, species: Tensor, src: Tensor, dst: Tensor, vectors: Tensor) -> Tuple[Tensor, Tensor]:
        """Per-atom energies (N,) in eV and d(total energy)/d(edge vector) (E, 3) in eV/Å.

        Arguments as in :meth:`~mlff_distiller.models.painn.PaiNN.forward`.
        """
        network = self.student.network
        f = self.features
        n_atoms = species.shape[0]

        # geometry
        distances = torch.sqrt((vectors * vectors).sum(1))
        unit_rows = vectors / distances[:, None]
        unit = unit_rows.t().unsqueeze(2)
        phase = distances * (math.pi / self.cutoff)
        inside = distances < self.cutoff
        envelope = torch.where(inside, 0.5 * (torch.cos(phase) + 1.0), torch.zeros_like(distances))
        frequencies = network.basis.frequencies
        angle = distances[:, None] * frequencies
        basis = torch.sin(angle) / distances[:, None]
        radial = torch.cat([basis * envelope[:, None], envelope[:, None]], dim=1)

        # edges go in chunks (one chunk on GPUs) so that (chunk, 3F) tensors stay in cache; the
        # reverse pass recomputes them per chunk, so only per-atom tensors are kept across layers
        n_edges = src.shape[0]
        chunk = n_edges
        if radial.is_cpu:
            chunk = max(1024, self.edge_chunk_bytes // (3 * f * radial.element_size()))
        bounds: List[int] = list(range(0, n_edges, chunk)) + [n_edges]

        # forward, keeping what the reverse pass needs
        s = network.embedding(species)
        v = torch.zeros((3, n_atoms, f), dtype=s.dtype, device=s.device)
        saved: List[List[Tensor]] = []
        weights: List[List[Tensor]] = []
        first = True
        for block in network.interactions:
            context_in = block.context[0]
            context_out = block.context[2]
            gate_in = block.gate[0]
            gate_out = block.gate[2]
            filter_weight = torch.cat([block.filter.weight, block.filter.bias.unsqueeze(1)], dim=1)
            w = [context_in.weight, context_out.weight, filter_weight, block.mix_u.weight, block.mix_v.weight,
                 gate_in.weight, gate_out.weight]
            hidden = linear(s, context_in.weight, context_in.bias)
            context = linear(silu(hidden), context_out.weight, context_out.bias)
            v_in = v
            s = s.clone()
            v = v.clone()
            for k in range(len(bounds) - 1):
                a, b = bounds[k], bounds[k + 1]
                message = context.index_select(0, dst[a:b]) * radial[a:b].mm(filter_weight.t())
                ms, mvv, mvs = torch.split(message, f, dim=1)
                vector_message = mvs * unit[:, a:b]
                if not first:
                    vector_message = vector_message + mvv * v_in.index_select(1, dst[a:b])
                s.index_add_(0, src[a:b], ms)
                v.index_add_(1, src[a:b], vector_message)
            u_v = torch.matmul(v, block.mix_u.weight.t())
            v_v = torch.matmul(v, block.mix_v.weight.t())
            norm = torch.sqrt((v_v * v_v).sum(0) + self.norm_epsilon)
            gate_hidden = linear(torch.cat([s, norm], dim=1), gate_in.weight, gate_in.bias)
            gate = linear(silu(gate_hidden), gate_out.weight, gate_out.bias)
            avv, asv, ass = torch.split(gate, f, dim=1)
            dot = (u_v * v_v).sum(0)
            saved.append([hidden, context, v_in, u_v, v_v, norm, gate_hidden, avv, asv, dot])
            weights.append(w)
            v = v + avv * u_v
            s = s + asv * dot + ass
            first = False

        readout_in = network.readout[0]
        readout_out = network.readout[2]
        readout_hidden = linear(s, readout_in.weight, readout_in.bias)
        out = linear(silu(readout_hidden), readout_out.weight, readout_out.bias)
        energies = out.squeeze(1) * network.energy_scale + network.reference_energies[species]

        # reverse pass: d(sum of energies)/d(...)
        g_s = (silu_slope(readout_hidden) * (readout_out.weight * network.energy_scale)).mm(readout_in.weight)
        g_v = torch.zeros_like(v)
        g_radial = torch.zeros_like(radial)
        g_unit = torch.zeros((3, n_edges), dtype=s.dtype, device=s.device)
        for layer in range(len(saved) - 1, -1, -1):
            hidden, context, v_in, u_v, v_v, norm, gate_hidden, avv, asv, dot = saved[layer]
            w_context_in, w_context_out, filter_weight, w_mix_u, w_mix_v, w_gate_in, w_gate_out = weights[layer]
            # update: s2 = s1 + asv * dot + ass, v2 = v1 + avv * u_v
            g_dot = g_s * asv
            g_gate = torch.cat([(g_v * u_v).sum(0), g_s * dot, g_s], dim=1)
            g_z = (g_gate.mm(w_gate_out) * silu_slope(gate_hidden)).mm(w_gate_in)
            g_u = avv * g_v + g_dot * v_v
            g_vv = g_dot * u_v + (g_z[:, f:] / norm) * v_v
            g_s = g_s + g_z[:, :f]
            g_v = g_v + torch.matmul(g_u, w_mix_u) + torch.matmul(g_vv, w_mix_v)
            # messages: s1 = s + sum_src ms, v1 = v + sum_src (mvs * unit + mvv * v[dst])
            g_context = torch.zeros((n_atoms, 3 * f), dtype=s.dtype, device=s.device)
            g_v_in = g_v.clone()
            for k in range(len(bounds) - 1):
                a, b = bounds[k], bounds[k + 1]
                filters = radial[a:b].mm(filter_weight.t())
                gathered = context.index_select(0, dst[a:b])
                ms, mvv, mvs = torch.split(gathered * filters, f, dim=1)
                g_vm = g_v.index_select(1, src[a:b])
                g_unit[:, a:b] += (g_vm * mvs).sum(2)
                if layer > 0:
                    g_mvv = (g_vm * v_in.index_select(1, dst[a:b])).sum(0)
                    g_v_in.index_add_(1, dst[a:b], mvv * g_vm)
                else:
                    g_mvv = torch.zeros_like(mvv)
                g_message = torch.cat([g_s.index_select(0, src[a:b]), g_mvv, (g_vm * unit[:, a:b]).sum(0)], dim=1)
                g_radial[a:b] += (g_message * gathered).mm(filter_weight)
                g_context.index_add_(0, dst[a:b], g_message * filters)
            g_v = g_v_in
            g_s = g_s + (g_context.mm(w_context_out) * silu_slope(hidden)).mm(w_context_in)

        # geometry: radial = [basis * envelope, envelope], unit = vectors / distances
        n_rbf = basis.shape[1]
        g_basis = g_radial[:, :n_rbf] * envelope[:, None]
        g_envelope = (g_radial[:, :n_rbf] * basis).sum(1) + g_radial[:, n_rbf]
        slope = torch.where(inside, -0.5 * (math.pi / self.cutoff) * torch.sin(phase), torch.zeros_like(phase))
        g_distance = (g_basis * (frequencies * torch.cos(angle) - basis)).sum(1) / distances + g_envelope * slope
        g_unit_rows = g_unit.t()
        radial_part = (g_unit_rows * unit_rows).sum(1, keepdim=True)
        edge_gradient = (g_unit_rows - radial_part * unit_rows) / distances[:, None] + g_distance[:, None] * unit_rows
        return energies, edge_gradient
