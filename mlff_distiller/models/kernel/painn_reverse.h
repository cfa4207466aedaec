// The hand-written reverse pass of the fused PaiNN (painn.h): PaiNN::reverse, the gradient of
// the energy through one layer back to its input rows and to the edges' geometry, and
// PaiNN::edge_gradients, d E / d edge vector (eV/Å) from those geometry gradients. Checked against
// autograd on models/painn.py by tests/models/test_kernel.py.

#pragma once

#include <algorithm>
#include <cstdint>

#include "painn.h"

namespace mlffd {

template <typename T>
void PaiNN<T>::reverse(int64_t l, const T* g_out, T* g_in) {
  // the first layer's input (the embedding) is constant: it takes no gradient. Other layers write
  // n rows into g_in, none when n = 0 (an MPI rank of LAMMPS without atoms, whose g_in may then be
  // a null pointer: it still runs every layer, to take part in each exchange).
  const bool input_gradient = l > 0;
  const LayerWeights& lw = w_.layer[l];
  const int64_t f = f_, f3 = 3 * f_, wd = width();
  const Layer& st = state_[l];
  const int64_t n = st.n, nlocal = st.nlocal;
  const T* uv = st.u_v.data();
  const T* vv = st.v_v.data();
  const T* gt = st.gate.data();
  g_gate_.resize(nlocal * f3);
  g_gh_.resize(nlocal * f);
  g_z_.resize(nlocal * 2 * f);
  g_s1_.resize(nlocal * f);
  g_v1_.resize(nlocal * f3);
  g_u_.resize(nlocal * f3);
  g_vv_.resize(nlocal * f3);
  g_ctx_.resize(input_gradient ? n * f3 : 0);
  // each block of atoms: the update's reverse for its local atoms, and its rows of g_in (the
  // gradients s1 and v1 pass straight to the input's s and v) and of the context's gradient
  parallel_ranges(threads_, n, ATOM_GRAIN, [&](int64_t begin, int64_t end_all) {
    const int64_t end = std::min(end_all, nlocal), m = std::max<int64_t>(0, end - begin);
    // update: s2 = s1 + asv * dot + ass, v2 = v1 + avv * u_v
    for (int64_t i = begin; i < end; ++i) {
      const T* gs = g_out + i * wd;
      const T* gv = gs + f;
      for (int64_t q = 0; q < f; ++q) {
        T gav = T(0);
        for (int c = 0; c < 3; ++c) gav += gv[c * f + q] * uv[i * f3 + c * f + q];
        g_gate_[i * f3 + q] = gav;
        g_gate_[i * f3 + f + q] = gs[q] * st.dot[i * f + q];
        g_gate_[i * f3 + 2 * f + q] = gs[q];
      }
    }
    if (m > 0) {
      T* g_gh = g_gh_.data() + begin * f;
      gemm(m, f, f3, g_gate_.data() + begin * f3, f3, p(lw.gate_out.weight), g_gh, f, nullptr, false);
      for (int64_t k = 0; k < m * f; ++k) g_gh[k] *= silu_slope(st.gate_hidden[begin * f + k]);
      gemm(m, 2 * f, f, g_gh, f, p(lw.gate_in.weight), g_z_.data() + begin * 2 * f, 2 * f, nullptr, false);
    }
    for (int64_t i = begin; i < end; ++i) {
      const T* gs = g_out + i * wd;
      const T* gv = gs + f;
      for (int64_t q = 0; q < f; ++q) {
        const T avv = gt[i * f3 + q];
        const T g_dot = gs[q] * gt[i * f3 + f + q];
        const T g_norm = g_z_[i * 2 * f + f + q] / st.norm[i * f + q];
        for (int c = 0; c < 3; ++c) {
          const int64_t p = i * f3 + c * f + q;
          g_u_[p] = avv * gv[c * f + q] + g_dot * vv[p];
          g_vv_[p] = g_dot * uv[p] + g_norm * vv[p];
          g_v1_[p] = gv[c * f + q];
        }
        g_s1_[i * f + q] = gs[q] + g_z_[i * 2 * f + q];
      }
    }
    if (m > 0) {
      gemm(3 * m, f, f, g_u_.data() + begin * f3, f, p(lw.mix_u.weight), g_v1_.data() + begin * f3, f, nullptr, true);
      gemm(3 * m, f, f, g_vv_.data() + begin * f3, f, p(lw.mix_v.weight), g_v1_.data() + begin * f3, f, nullptr, true);
    }
    if (!input_gradient) return;
    for (int64_t i = begin; i < end_all; ++i) {
      T* row = g_in + i * wd;
      if (i < nlocal) {
        std::copy(g_s1_.data() + i * f, g_s1_.data() + (i + 1) * f, row);
        std::copy(g_v1_.data() + i * f3, g_v1_.data() + (i + 1) * f3, row + f);
      } else {
        std::fill(row, row + wd, T(0));
      }
    }
    std::fill(g_ctx_.data() + begin * f3, g_ctx_.data() + end_all * f3, T(0));
  });
  // messages: each block of edge rows sums the gradients it sends to atoms into g_in and the
  // context's gradient (block 0) or into its own buffer (the others)
  const T* ctx = st.context.data();
  const T* x_in = st.x_in;
  parallel_blocks(row_blocks_, [&](int block) {
    T* g_in_sum = g_in;
    T* g_ctx_sum = g_ctx_.data();
    if (block > 0 && input_gradient) {
      partial_[block].assign(n * (wd + f3), T(0));
      g_in_sum = partial_[block].data();
      g_ctx_sum = g_in_sum + n * wd;
    }
    T* g_filters = g_filters_.data() + block * std::min(chunk_, rows_) * f3;
    const Span rows = block_span(rows_, row_blocks_, block);
    for (int64_t a = rows.begin; a < rows.end; a += chunk_) {
      const int64_t len = std::min(chunk_, rows.end - a);
      const T* filters = chunk_filters(l, a, len, false, block);
      // each row's filter gradient is summed over its edges
      std::fill(g_filters, g_filters + len * f3, T(0));
      for (int64_t edge = 0; edge < edges_in_rows(a, len); ++edge) {
        const int64_t row = row_of(a, edge), k = edge_of(a, edge);
        const int64_t i = src_[k], j = dst_[k];
        const T* filt = filters + (row - a) * f3;
        T* g_filter = g_filters + (row - a) * f3;
        const T* cj = ctx + j * f3;
        const T* gvi = g_v1_.data() + i * f3;  // gradient of the vector message into atom i
        const T* gsi = g_s1_.data() + i * f;
        const T u0 = unit_[3 * k], u1 = unit_[3 * k + 1], u2 = unit_[3 * k + 2];
        T gu0 = T(0), gu1 = T(0), gu2 = T(0);
        // one pass over the features: the gradients of the scalar, vector-vector and
        // vector-scalar messages (g_s, g_vv, g_vs), and what they send to the unit vector, the
        // neighbour's vectors and context, and the filter
        if (l > 0) {
          const T* vj = x_in + j * wd + f;
          T* gvj = g_in_sum + j * wd + f;
          T* gcj = g_ctx_sum + j * f3;
#pragma omp simd reduction(+ : gu0, gu1, gu2)
          for (int64_t q = 0; q < f; ++q) {
            const T gv0 = gvi[q], gv1 = gvi[f + q], gv2 = gvi[2 * f + q];
            const T mvv = cj[f + q] * filt[f + q], mvs = cj[2 * f + q] * filt[2 * f + q];
            gu0 += gv0 * mvs;
            gu1 += gv1 * mvs;
            gu2 += gv2 * mvs;
            const T g_s = gsi[q];
            const T g_vv = gv0 * vj[q] + gv1 * vj[f + q] + gv2 * vj[2 * f + q];
            const T g_vs = gv0 * u0 + gv1 * u1 + gv2 * u2;
            gvj[q] += mvv * gv0;
            gvj[f + q] += mvv * gv1;
            gvj[2 * f + q] += mvv * gv2;
            gcj[q] += g_s * filt[q];
            gcj[f + q] += g_vv * filt[f + q];
            gcj[2 * f + q] += g_vs * filt[2 * f + q];
            g_filter[q] += g_s * cj[q];
            g_filter[f + q] += g_vv * cj[f + q];
            g_filter[2 * f + q] += g_vs * cj[2 * f + q];
          }
        } else {  // the input's vectors are zero, and the input (the embedding) takes no gradient
#pragma omp simd reduction(+ : gu0, gu1, gu2)
          for (int64_t q = 0; q < f; ++q) {
            const T gv0 = gvi[q], gv1 = gvi[f + q], gv2 = gvi[2 * f + q];
            const T mvs = cj[2 * f + q] * filt[2 * f + q];
            gu0 += gv0 * mvs;
            gu1 += gv1 * mvs;
            gu2 += gv2 * mvs;
            g_filter[q] += gsi[q] * cj[q];
            g_filter[2 * f + q] += (gv0 * u0 + gv1 * u1 + gv2 * u2) * cj[2 * f + q];
          }
        }
        g_unit_[3 * k] += gu0;
        g_unit_[3 * k + 1] += gu1;
        g_unit_[3 * k + 2] += gu2;
      }
      // d E / d radial features of the chunk: (len, 3F) x (3F, R + 1)
      gemm(len, r1_, f3, g_filters, f3, p(w_.layer[l].filter.weight), g_radial_.data() + a * r1_, r1_, nullptr, true);
    }
  });
  if (!input_gradient) return;
  // context = silu(s W_in^T + b_in) W_out^T + b_out, over all n atoms, once the sums of the other
  // edge blocks are in
  g_h_.resize(n * f);
  parallel_ranges(threads_, n, ATOM_GRAIN, [&](int64_t begin, int64_t end) {
    const int64_t m = end - begin;
    for (int block = 1; block < row_blocks_; ++block) {
      const T* g_in_part = partial_[block].data();
      const T* g_ctx_part = g_in_part + n * wd;
      for (int64_t k = begin * wd; k < end * wd; ++k) g_in[k] += g_in_part[k];
      for (int64_t k = begin * f3; k < end * f3; ++k) g_ctx_[k] += g_ctx_part[k];
    }
    T* g_h = g_h_.data() + begin * f;
    gemm(m, f, f3, g_ctx_.data() + begin * f3, f3, p(lw.context_out.weight), g_h, f, nullptr, false);
    for (int64_t k = 0; k < m * f; ++k) g_h[k] *= silu_slope(st.hidden[begin * f + k]);
    gemm(m, f, f, g_h, f, p(lw.context_in.weight), g_in + begin * wd, wd, nullptr, true);
  });
}

template <typename T>
void PaiNN<T>::edge_gradients(T* g_vectors) const {
  parallel_ranges(threads_, e_, ROW_GRAIN, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      // the derivative with respect to a row's distance goes to its first edge: a distance moves
      // the two atoms of both edges alike
      T g_distance = T(0);
      if (k < pairs_ || k >= 2 * pairs_) {
        const int64_t row = k < pairs_ ? k : k - pairs_;
        const T* grad = g_radial_.data() + row * r1_;
        const T* slope = radial_slope_.data() + row * r1_;
        for (int64_t b = 0; b < r1_; ++b) g_distance += grad[b] * slope[b];
      }
      const T* u = unit_.data() + 3 * k;
      const T* gu = g_unit_.data() + 3 * k;
      const T radial_part = gu[0] * u[0] + gu[1] * u[1] + gu[2] * u[2];
      for (int c = 0; c < 3; ++c)
        g_vectors[3 * k + c] = (gu[c] - radial_part * u[c]) / distance_[k] + g_distance * u[c];
    }
  });
}

}  // namespace mlffd
