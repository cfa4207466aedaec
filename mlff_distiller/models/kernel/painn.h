// The fused PaiNN of mlff-distiller's students, layer by layer: forward here, and a hand-written
// reverse pass (painn_reverse.h), as loops over atoms and edges. It computes the function of
// mlff_distiller/models/painn.py (the definition, differentiated by autograd);
// tests/models/test_kernel.py checks the two against each other.
//
// driver.h runs it: all layers in one call in the torch operators (painn_forces.cpp), one layer at
// a time with LAMMPS communicating the features of ghost atoms in between in the pair style
// (plugin/lammps/pair_mlffd.cpp). The atoms a layer updates ("local", the first nlocal) are the
// receivers of the edges; their neighbours may be any of the n atoms (local or ghost).
//
// Layouts: the features of an atom are one row of width 4F: its scalars s (F), then its vectors v
// (3 x F, Cartesian component first). Weights arrive named and checked (weights.h); matrix
// products go through gemm() (gemm.h). Work on atoms, edges and edge rows is split over the
// threads of set_threads (threads.h): each atom's rows are written by one block, and edges that
// scatter into atoms sum into per-block buffers, added up in block order.

#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "gemm.h"
#include "threads.h"
#include "weights.h"

namespace mlffd {

template <typename T>
inline T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }

template <typename T>
inline T silu(T x) { return x * sigmoid(x); }

template <typename T>
inline T silu_slope(T x) {
  T sg = sigmoid(x);
  return sg * (T(1) + x * (T(1) - sg));
}

// The envelope of every radial filter at distance r (Å): 0.5 (cos(pi r / r_cut) + 1) for
// r < r_cut, else 0, and its slope d/dr (1/Å). As cosine_envelope in models/painn.py.
template <typename T>
inline void cosine_envelope(T r, T cutoff, T& value, T& slope) {
  value = slope = T(0);
  if (r >= cutoff) return;
  const T k = T(M_PI) / cutoff;
  value = T(0.5) * (std::cos(r * k) + T(1));
  slope = T(-0.5) * k * std::sin(r * k);
}

// One radial basis function at distance r (Å): sin(w r) / r (1/Å) for a frequency w (1/Å), and
// its slope d/dr (1/Å^2). As RadialBasis in models/painn.py.
template <typename T>
inline void sine_basis(T r, T frequency, T& value, T& slope) {
  const T angle = r * frequency;
  value = std::sin(angle) / r;
  slope = (frequency * std::cos(angle) - value) / r;
}

// Fewest atoms, and edge rows, per block of work: waking a thread for less costs more than it saves.
constexpr int64_t ATOM_GRAIN = 8;
constexpr int64_t ROW_GRAIN = 32;

// A student's network, evaluated one layer at a time. Keep one object to reuse its buffers.
//
//   set_edges(...)                       geometry of this evaluation's edges
//   embed -> forward(0) -> ... -> forward(L - 1) -> readout        (features: rows of width();
//                                                                   forward(0) needs embed's rows)
//   reverse(L - 1) -> ... -> reverse(0) -> edge_gradients          (d energy / d edge vectors)
//
// forward(l) keeps what reverse(l) needs, including a pointer to its input rows: they must stay
// unchanged until then.
template <typename T>
class PaiNN {
 public:
  PaiNN() = default;
  // The network to evaluate: weights checked by read_weights (weights.h) in the dtype T, cutoff
  // (Å), and the epsilon under the square root of vector norms (NORM_EPSILON of painn.py). The
  // buffers of earlier evaluations are kept, and so is the first layer's context of each species
  // when the embedding and that layer's context weights are the very tensors of the last call,
  // unchanged since (same tensor and version counter: weights are constants, a module calls with
  // the same ones each time; an in-place change bumps the version and recomputes it).
  void set_weights(Weights weights, double cutoff, double norm_epsilon) {
    TORCH_CHECK(weights.embedding.scalar_type() == c10::CppTypeToScalarType<T>::value,
                "mlffd: the network's weights are not in the dtype it computes in");
    const std::array<at::Tensor, 5> context = {weights.embedding, weights.layer[0].context_in.weight_t,
                                               weights.layer[0].context_in.bias, weights.layer[0].context_out.weight_t,
                                               weights.layer[0].context_out.bias};
    bool same_context = !species_context_.empty();
    for (size_t k = 0; k < context.size(); ++k) {
      same_context = same_context && context[k].is_same(context_[k]) && context[k]._version() == context_versions_[k];
      context_[k] = context[k];
      context_versions_[k] = context[k]._version();
    }
    if (!same_context) species_context_.clear();
    w_ = std::move(weights);
    layers_ = w_.layers;
    cutoff_ = T(cutoff);
    norm_epsilon_ = T(norm_epsilon);
    f_ = w_.features;
    r1_ = w_.basis + 1;
    h_ = w_.hidden;
    state_.resize(layers_);
  }

  // Threads to split the work of the next evaluations over (1: the caller's alone), from 1 to
  // MAX_THREADS; set before an evaluation's set_edges.
  void set_threads(int threads) {
    TORCH_CHECK(threads >= 1 && threads <= MAX_THREADS, "mlffd: threads must be from 1 to ", MAX_THREADS, ", not ",
                threads);
    threads_ = threads;
  }

  int64_t layers() const { return layers_; }
  int64_t species_count() const { return w_.species; }
  // doubles or floats per atom in a feature row (and its gradient)
  int64_t width() const { return 4 * f_; }

  // The edges of this evaluation: count of them, receiving (local) and neighbouring atom, and the
  // vector x[dst] - x[src] (Å). The first 2 x pairs edges come in pairs, edge k + pairs being edge
  // k reversed: the two share their distance, hence their radial features and filters, which are
  // computed (forward) and differentiated (reverse) once per pair. The arrays must outlive the
  // evaluation.
  void set_edges(int64_t count, const int64_t* src, const int64_t* dst, const T* vectors, int64_t pairs) {
    TORCH_CHECK(pairs >= 0 && 2 * pairs <= count, "mlffd: more edge pairs than edges");
    e_ = count;
    src_ = src;
    dst_ = dst;
    pairs_ = pairs;
    rows_ = count - pairs;
    distance_.resize(e_);
    unit_.resize(3 * e_);
    parallel_ranges(threads_, e_, ROW_GRAIN, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const T* x = vectors + 3 * k;
        distance_[k] = std::sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]);
        for (int c = 0; c < 3; ++c) unit_[3 * k + c] = x[c] / distance_[k];
      }
    });
    // radial features of each row: basis x envelope, then the envelope itself (as
    // PaiNN.radial_features), and their slopes d/dr
    const T* frequencies = p(w_.frequencies);
    radial_.resize(rows_ * r1_);
    radial_slope_.resize(rows_ * r1_);
    parallel_ranges(threads_, rows_, ROW_GRAIN, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const T d = distance_[first_edge(k)];
        T env, env_slope;
        cosine_envelope(d, cutoff_, env, env_slope);
        T* rad = radial_.data() + k * r1_;
        T* slope = radial_slope_.data() + k * r1_;
        for (int64_t b = 0; b + 1 < r1_; ++b) {
          T basis, basis_slope;
          sine_basis(d, frequencies[b], basis, basis_slope);
          rad[b] = basis * env;
          slope[b] = basis_slope * env + basis * env_slope;
        }
        rad[r1_ - 1] = env;
        slope[r1_ - 1] = env_slope;
      }
    });
    g_radial_.assign(rows_ * r1_, T(0));
    g_unit_.assign(3 * e_, T(0));
    // filters of every layer are kept from forward to reverse when they fit in a few MB;
    // otherwise each block of rows recomputes them a chunk at a time (about 1 MB, to stay in cache)
    const int64_t f3 = 3 * f_;
    keep_filters_ = rows_ * f3 * layers_ * int64_t(sizeof(T)) <= (int64_t(8) << 20);
    chunk_ = keep_filters_ ? std::max<int64_t>(rows_, 1)
                           : std::max<int64_t>(256, (int64_t(1) << 20) / (f3 * int64_t(sizeof(T))));
    row_blocks_ = block_count(threads_, rows_, ROW_GRAIN);
    filters_.resize((keep_filters_ ? layers_ * rows_ : row_blocks_ * std::min(chunk_, rows_)) * f3);
    g_filters_.resize(row_blocks_ * std::min(chunk_, rows_) * f3);
    partial_.resize(row_blocks_);
  }

  // Layer-0 feature rows (n x width) of atoms with these species indices, which forward(0) also
  // reads (the array must outlive it).
  void embed(int64_t n, const int64_t* species, T* x) {
    species_ = species;
    const T* embedding = p(w_.embedding);
    parallel_ranges(threads_, n, ATOM_GRAIN, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        T* row = x + i * width();
        std::copy(embedding + species[i] * f_, embedding + (species[i] + 1) * f_, row);
        std::fill(row + f_, row + 4 * f_, T(0));
      }
    });
  }

  // Layer l: x_out (first nlocal rows, width apart) from x_in (n rows: local, then neighbours).
  void forward(int64_t l, int64_t n, int64_t nlocal, const T* x_in, T* x_out) {
    const LayerWeights& lw = w_.layer[l];
    const int64_t f = f_, f3 = 3 * f_, wd = width();
    Layer& st = state_[l];
    st.n = n;
    st.nlocal = nlocal;
    st.x_in = x_in;
    // context = silu(s W_in^T + b_in) W_out^T + b_out, for every atom (neighbours need it); in
    // the first layer s is the embedding, so the context is that of the atom's species
    st.context.resize(n * f3);
    act_.resize(std::max(n, species_count()) * f);
    if (l == 0 && species_context_.empty()) {
      const int64_t count = species_count();
      std::vector<T> hidden(count * f);
      species_context_.resize(count * f3);
      gemm(count, f, f, p(w_.embedding), f, p(lw.context_in.weight_t), hidden.data(), f, p(lw.context_in.bias), false);
      for (int64_t k = 0; k < count * f; ++k) act_[k] = silu(hidden[k]);
      gemm(count, f3, f, act_.data(), f, p(lw.context_out.weight_t), species_context_.data(), f3, p(lw.context_out.bias),
           false);
    }
    if (l > 0) st.hidden.resize(n * f);
    s1_.resize(nlocal * f);
    v1_.resize(nlocal * f3);
    parallel_ranges(threads_, n, ATOM_GRAIN, [&](int64_t begin, int64_t end) {
      const int64_t m = end - begin;
      if (l == 0) {  // the embedding's context is that of the atom's species
        for (int64_t i = begin; i < end; ++i)
          std::copy(species_context_.data() + species_[i] * f3, species_context_.data() + (species_[i] + 1) * f3,
                    st.context.data() + i * f3);
      } else {
        T* hidden = st.hidden.data() + begin * f;
        gemm(m, f, f, x_in + begin * wd, wd, p(lw.context_in.weight_t), hidden, f, p(lw.context_in.bias), false);
        for (int64_t k = 0; k < m * f; ++k) act_[begin * f + k] = silu(hidden[k]);
        gemm(m, f3, f, act_.data() + begin * f, f, p(lw.context_out.weight_t), st.context.data() + begin * f3, f3,
             p(lw.context_out.bias), false);
      }
      // the messages start from the local atoms' own s and v
      for (int64_t i = begin; i < std::min(end, nlocal); ++i) {
        std::copy(x_in + i * wd, x_in + i * wd + f, s1_.data() + i * f);
        std::copy(x_in + i * wd + f, x_in + (i + 1) * wd, v1_.data() + i * f3);
      }
    });
    // messages: s1 = s + sum ms, v1 = v + sum (mvs unit + mvv v[dst]), into the local atoms; the
    // first block of rows sums into s1 and v1, each other one into its own buffer
    const T* ctx = st.context.data();
    parallel_blocks(row_blocks_, [&](int block) {
      T* s1 = s1_.data();
      T* v1 = v1_.data();
      if (block > 0) {
        partial_[block].assign(nlocal * (f + f3), T(0));
        s1 = partial_[block].data();
        v1 = s1 + nlocal * f;
      }
      const Span rows = block_span(rows_, row_blocks_, block);
      for (int64_t a = rows.begin; a < rows.end; a += chunk_) {
        const int64_t len = std::min(chunk_, rows.end - a);
        const T* filters = chunk_filters(l, a, len, true, block);
        for (int64_t edge = 0; edge < edges_in_rows(a, len); ++edge) {
          const int64_t row = row_of(a, edge), k = edge_of(a, edge);
          const int64_t i = src_[k], j = dst_[k];
          const T* filt = filters + (row - a) * f3;
          const T* cj = ctx + j * f3;
          T* si = s1 + i * f;
          T* vi = v1 + i * f3;
          const T u0 = unit_[3 * k], u1 = unit_[3 * k + 1], u2 = unit_[3 * k + 2];
          // one pass over the features: each message and each row read once
          if (l > 0) {
            const T* vj = x_in + j * wd + f;
#pragma omp simd
            for (int64_t q = 0; q < f; ++q) {
              const T mvv = cj[f + q] * filt[f + q], mvs = cj[2 * f + q] * filt[2 * f + q];
              si[q] += cj[q] * filt[q];
              vi[q] += mvs * u0 + mvv * vj[q];
              vi[f + q] += mvs * u1 + mvv * vj[f + q];
              vi[2 * f + q] += mvs * u2 + mvv * vj[2 * f + q];
            }
          } else {  // the input's vectors are zero
#pragma omp simd
            for (int64_t q = 0; q < f; ++q) {
              const T mvs = cj[2 * f + q] * filt[2 * f + q];
              si[q] += cj[q] * filt[q];
              vi[q] += mvs * u0;
              vi[f + q] += mvs * u1;
              vi[2 * f + q] += mvs * u2;
            }
          }
        }
      }
    });
    // update: s2 = s1 + asv <u_v, v_v> + ass, v2 = v1 + avv u_v, gates from [s1, |v_v|]
    st.u_v.resize(nlocal * f3);
    st.v_v.resize(nlocal * f3);
    st.norm.resize(nlocal * f);
    st.dot.resize(nlocal * f);
    z_.resize(nlocal * 2 * f);
    st.gate_hidden.resize(nlocal * f);
    st.gate.resize(nlocal * f3);
    parallel_ranges(threads_, nlocal, ATOM_GRAIN, [&](int64_t begin, int64_t end) {
      const int64_t m = end - begin;
      for (int block = 1; block < row_blocks_; ++block) {  // the messages of the other blocks
        const T* s = partial_[block].data();
        const T* v = s + nlocal * f;
        for (int64_t k = begin * f; k < end * f; ++k) s1_[k] += s[k];
        for (int64_t k = begin * f3; k < end * f3; ++k) v1_[k] += v[k];
      }
      const T* v1 = v1_.data() + begin * f3;
      T* u_v = st.u_v.data() + begin * f3;
      T* v_v = st.v_v.data() + begin * f3;
      gemm(3 * m, f, f, v1, f, p(lw.mix_u.weight_t), u_v, f, nullptr, false);
      gemm(3 * m, f, f, v1, f, p(lw.mix_v.weight_t), v_v, f, nullptr, false);
      for (int64_t i = begin; i < end; ++i) {
        for (int64_t q = 0; q < f; ++q) {
          T sq = norm_epsilon_, dt = T(0);
          for (int c = 0; c < 3; ++c) {
            const T vv = st.v_v[i * f3 + c * f + q];
            sq += vv * vv;
            dt += st.u_v[i * f3 + c * f + q] * vv;
          }
          st.norm[i * f + q] = std::sqrt(sq);
          st.dot[i * f + q] = dt;
          z_[i * 2 * f + q] = s1_[i * f + q];
          z_[i * 2 * f + f + q] = st.norm[i * f + q];
        }
      }
      T* gate_hidden = st.gate_hidden.data() + begin * f;
      gemm(m, f, 2 * f, z_.data() + begin * 2 * f, 2 * f, p(lw.gate_in.weight_t), gate_hidden, f, p(lw.gate_in.bias),
           false);
      for (int64_t k = 0; k < m * f; ++k) act_[begin * f + k] = silu(gate_hidden[k]);
      gemm(m, f3, f, act_.data() + begin * f, f, p(lw.gate_out.weight_t), st.gate.data() + begin * f3, f3,
           p(lw.gate_out.bias), false);
      for (int64_t i = begin; i < end; ++i) {
        const T* g = st.gate.data() + i * f3;
        T* out = x_out + i * wd;
        for (int64_t q = 0; q < f; ++q) out[q] = s1_[i * f + q] + g[f + q] * st.dot[i * f + q] + g[2 * f + q];
        for (int c = 0; c < 3; ++c)
          for (int64_t q = 0; q < f; ++q)
            out[f + c * f + q] = v1_[i * f3 + c * f + q] + g[q] * st.u_v[i * f3 + c * f + q];
      }
    });
  }

  // Energies (eV) of the nlocal atoms from their final feature rows x, and g_x (nlocal x width),
  // the gradient of their sum with respect to x.
  void readout(int64_t nlocal, const int64_t* species, const T* x, T* energies, T* g_x) {
    const T* w2 = p(w_.readout_out);
    const T b2 = p(w_.readout_out_bias)[0];
    const T scale = p(w_.energy_scale)[0];
    const T* reference = p(w_.reference_energies);
    readout_hidden_.resize(nlocal * h_);
    parallel_ranges(threads_, nlocal, ATOM_GRAIN, [&](int64_t begin, int64_t end) {
      const int64_t m = end - begin, wd = width();
      T* hidden = readout_hidden_.data() + begin * h_;
      gemm(m, h_, f_, x + begin * wd, wd, p(w_.readout_in.weight_t), hidden, h_, p(w_.readout_in.bias), false);
      for (int64_t i = begin; i < end; ++i) {
        T out = b2;
        for (int64_t q = 0; q < h_; ++q) {
          T& x_q = readout_hidden_[i * h_ + q];
          out += silu(x_q) * w2[q];
          x_q = silu_slope(x_q) * w2[q] * scale;  // now the gradient on the hidden layer
        }
        energies[i] = out * scale + reference[species[i]];
      }
      std::fill(g_x + begin * wd, g_x + end * wd, T(0));
      gemm(m, f_, h_, hidden, h_, p(w_.readout_in.weight), g_x + begin * wd, wd, nullptr, true);
    });
  }

  // Reverse of layer l: from g_out (nlocal rows, width apart), the gradient of the energy with
  // respect to the layer's output, accumulate the edges' geometry gradients and write g_in
  // (n rows), the gradient with respect to its input rows, except in the first layer (l = 0),
  // whose input is constant and which leaves g_in alone (it may be nullptr). n and nlocal may be 0.
  void reverse(int64_t l, const T* g_out, T* g_in);

  // d E / d (x[dst] - x[src]) of every edge (E x 3), after reverse(0).
  void edge_gradients(T* g_vectors) const;

 private:
  struct Layer {
    int64_t n = 0, nlocal = 0;
    const T* x_in = nullptr;
    std::vector<T> hidden, context, u_v, v_v, norm, dot, gate_hidden, gate;
  };

  // Rows (distinct distances) and edges: row r < pairs holds edges r and r + pairs, a later row
  // the one edge r + pairs. Within rows a .. a + len - 1, edge number m (0-based, two per paired
  // row, in row order) is edge_of(a, m) of row row_of(a, m).
  int64_t first_edge(int64_t row) const { return row < pairs_ ? row : row + pairs_; }
  int64_t edges_in_rows(int64_t a, int64_t len) const {
    const int64_t paired_rows = std::max<int64_t>(0, std::min(a + len, pairs_) - a);
    return len + paired_rows;
  }
  int64_t row_of(int64_t a, int64_t m) const {
    const int64_t paired_rows = std::max<int64_t>(0, pairs_ - a);
    return m < 2 * paired_rows ? a + m / 2 : a + m - paired_rows;
  }
  int64_t edge_of(int64_t a, int64_t m) const {
    const int64_t paired_rows = std::max<int64_t>(0, pairs_ - a);
    if (m < 2 * paired_rows) return a + m / 2 + (m % 2) * pairs_;
    return a + m - paired_rows + pairs_;
  }
  // the data of a weight (checked to be contiguous and of dtype T by read_weights)
  static const T* p(const at::Tensor& t) { return static_cast<const T*>(t.data_ptr()); }

  // The envelope-weighted filters (len x 3F) of rows a .. a + len - 1 in layer l: computed (when
  // kept, in the forward pass only) or read back; when not kept, into the buffer of block.
  const T* chunk_filters(int64_t l, int64_t a, int64_t len, bool forward, int block) {
    const int64_t f3 = 3 * f_;
    T* out = filters_.data() + (keep_filters_ ? (l * rows_ + a) * f3 : block * std::min(chunk_, rows_) * f3);
    if (forward || !keep_filters_)
      gemm(len, f3, r1_, radial_.data() + a * r1_, r1_, p(w_.layer[l].filter.weight_t), out, f3, nullptr, false);
    return out;
  }

  Weights w_;
  int64_t layers_ = 0, f_ = 0, r1_ = 0, h_ = 0;
  T cutoff_ = T(0), norm_epsilon_ = T(0);
  // edges
  int64_t e_ = 0, rows_ = 0, pairs_ = 0, chunk_ = 1;
  bool keep_filters_ = false;
  int threads_ = 1;
  int row_blocks_ = 1;  // blocks of edge rows, each with its own filters and partial sums
  // the sums that edge blocks 1, 2, ... scatter into atoms (block 0 writes the real ones)
  std::vector<std::vector<T>> partial_;
  const int64_t* src_ = nullptr;
  const int64_t* dst_ = nullptr;
  const int64_t* species_ = nullptr;  // of the atoms embed() was given
  std::vector<T> species_context_;    // the first layer's context of each species
  std::array<at::Tensor, 5> context_;             // the tensors it was computed from (embedding, layer 0's context)
  std::array<int64_t, 5> context_versions_ = {};  // and their version counters then
  std::vector<T> distance_, unit_, radial_, radial_slope_, g_radial_, g_unit_, filters_, g_filters_;
  // per layer, and scratch
  std::vector<Layer> state_;
  std::vector<T> act_, s1_, v1_, z_, readout_hidden_, g_gate_, g_gh_, g_z_, g_s1_, g_v1_, g_u_, g_vv_, g_ctx_, g_h_;
};

}  // namespace mlffd

// the reverse pass of the layers, defined in its own file
#include "painn_reverse.h"
