// The fused PaiNN of mlff-distiller's students, layer by layer: forward, and the hand-written
// reverse pass of StudentForces (mlff_distiller/models/forces.py), as loops over atoms and edges.
//
// Used by the kernel operators (painn_forces.cpp: all layers in one call) and by the LAMMPS pair
// style (plugin/lammps/pair_mlffd.cpp: one layer at a time, LAMMPS communicating the features of
// ghost atoms in between). The atoms a layer updates ("local", the first nlocal) are the receivers
// of the edges; their neighbours may be any of the n atoms (local or ghost).
//
// Layouts: the features of an atom are one row of width 4F: its scalars s (F), then its vectors v
// (3 x F, Cartesian component first). Weights arrive pre-arranged by mlff_distiller/models/fused.py
// (kernel_weights): W^T (in x out) for the forward products y = x W^T, and W (out x in) for the
// reverse products g_x = g_y W, so that every product is C = A B with B row-major.
//
// Matrix products with few rows (a molecule's atoms) run on the register-tiled loops of gemm()
// below: a BLAS call repacks its weight matrix every time, which costs as much as the product
// when there are only a few dozen rows. Larger products go to BLAS (at::mm). Single-threaded
// apart from BLAS.

#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

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

// ---- C (m x n, row stride ldc) = init + A (m x k, row stride lda) B (k x n, row-major) ----

// Products with at least this many rows go to BLAS, which then amortises its repacking of B.
constexpr int64_t BLAS_MIN_ROWS = 256;

// An unaligned load and store of a vector V (or a T).
template <typename V, typename T>
inline V load(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V, typename T>
inline void store(T* p, const V& v) { std::memcpy(p, &v, sizeof(V)); }

// One block of C, ROWS rows by NV vectors of type V (a GCC vector of T, or T itself), its
// accumulators in registers. init: rows of ldi apart (ldi = 0: a bias row), or none (zero).
template <typename T, typename V, int ROWS, int NV>
inline void tile(int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc, const T* init,
                 int64_t ldi) {
  constexpr int L = sizeof(V) / sizeof(T);
  V acc[ROWS][NV];
  for (int r = 0; r < ROWS; ++r)
    for (int q = 0; q < NV; ++q) acc[r][q] = init ? load<V>(init + r * ldi + q * L) : V{};
  for (int64_t p = 0; p < k; ++p) {
    V bv[NV];
    for (int q = 0; q < NV; ++q) bv[q] = load<V>(b + p * ldb + q * L);
    for (int r = 0; r < ROWS; ++r) {
      const T ar = a[r * lda + p];
      for (int q = 0; q < NV; ++q) acc[r][q] += ar * bv[q];
    }
  }
  for (int r = 0; r < ROWS; ++r)
    for (int q = 0; q < NV; ++q) store(c + r * ldc + q * L, acc[r][q]);
}

// The columns j .. j + NV lanes of V of all m rows of C, in blocks of up to 6 rows (12
// accumulators of two registers' width hide the FMA latency) and at least 4 where m allows: the
// (k x NV lanes) panel of B they share stays in L1 from one block to the next.
template <typename T, typename V, int NV>
inline void column_panel(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, T* c, int64_t ldc,
                         const T* init, int64_t ldi) {
  const int64_t blocks = (m + 5) / 6;
  for (int64_t block = 0, i = 0; block < blocks; ++block) {
    const int64_t rows = (m - i) / (blocks - block) + ((m - i) % (blocks - block) ? 1 : 0);
    const T* a_i = a + i * lda;
    T* c_i = c + i * ldc;
    const T* init_i = init ? init + i * ldi : nullptr;
    switch (rows) {
      case 6: tile<T, V, 6, NV>(k, a_i, lda, b, n, c_i, ldc, init_i, ldi); break;
      case 5: tile<T, V, 5, NV>(k, a_i, lda, b, n, c_i, ldc, init_i, ldi); break;
      case 4: tile<T, V, 4, NV>(k, a_i, lda, b, n, c_i, ldc, init_i, ldi); break;
      case 3: tile<T, V, 3, NV>(k, a_i, lda, b, n, c_i, ldc, init_i, ldi); break;
      case 2: tile<T, V, 2, NV>(k, a_i, lda, b, n, c_i, ldc, init_i, ldi); break;
      default: tile<T, V, 1, NV>(k, a_i, lda, b, n, c_i, ldc, init_i, ldi); break;
    }
    i += rows;
  }
}

// T as a type that template deduction does not look at (the element type comes from C alone).
template <typename T>
struct Exactly { using type = T; };

// C = [bias | C | 0] + A B: bias (n) if given, else C's own values if accumulate, else zero.
template <typename T>
void gemm(int64_t m, int64_t n, int64_t k, const typename Exactly<T>::type* a, int64_t lda,
          const typename Exactly<T>::type* b, T* c, int64_t ldc, const typename Exactly<T>::type* bias,
          bool accumulate) {
  if (m == 0 || n == 0) return;
  if (m >= BLAS_MIN_ROWS) {
    const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
    at::Tensor a_t = at::from_blob(const_cast<T*>(a), {m, k}, {lda, 1}, options);
    at::Tensor b_t = at::from_blob(const_cast<T*>(b), {k, n}, options);
    at::Tensor c_t = at::from_blob(c, {m, n}, {ldc, 1}, options);
    if (bias) c_t.copy_(at::from_blob(const_cast<T*>(bias), {n}, options).expand({m, n}));
    if (bias || accumulate) c_t.addmm_(a_t, b_t);
    else at::mm_out(c_t, a_t, b_t);
    return;
  }
  typedef T V8 __attribute__((vector_size(32)));
  constexpr int W = 32 / sizeof(T);
  const int64_t ldi = bias ? 0 : ldc;
  const T* init = bias ? bias : accumulate ? c : nullptr;
  auto from = [&](int64_t j) { return init ? init + j : nullptr; };
  // column panels two 256-bit registers wide; the last, narrower one on a zero-padded copy
  int64_t j = 0;
  for (; j + 2 * W <= n; j += 2 * W) column_panel<T, V8, 2>(m, n, k, a, lda, b + j, c + j, ldc, from(j), ldi);
  const int64_t rest = n - j;
  if (rest == 0) return;
  const int64_t width = rest <= W ? W : 2 * W;
  thread_local std::vector<T> b_pad, c_pad;
  b_pad.assign(k * width, T(0));
  c_pad.assign(m * width, T(0));
  for (int64_t p = 0; p < k; ++p) std::copy(b + p * n + j, b + p * n + n, b_pad.data() + p * width);
  if (init)
    for (int64_t i = 0; i < m; ++i) std::copy(init + i * ldi + j, init + i * ldi + n, c_pad.data() + i * width);
  const T* pad_init = init ? c_pad.data() : nullptr;
  if (width == W) column_panel<T, V8, 1>(m, width, k, a, lda, b_pad.data(), c_pad.data(), width, pad_init, width);
  else column_panel<T, V8, 2>(m, width, k, a, lda, b_pad.data(), c_pad.data(), width, pad_init, width);
  for (int64_t i = 0; i < m; ++i) std::copy(c_pad.data() + i * width, c_pad.data() + i * width + rest, c + i * ldc + j);
}

// ---- the network ----

// Per-layer tensors in the weight list (see kernel_weights in fused.py), in this order.
enum LayerWeight {
  CONTEXT_IN_T, CONTEXT_IN_B, CONTEXT_IN, CONTEXT_OUT_T, CONTEXT_OUT_B, CONTEXT_OUT,
  FILTER_T, MIX_U_T, MIX_U, MIX_V_T, MIX_V,
  GATE_IN_T, GATE_IN_B, GATE_IN, GATE_OUT_T, GATE_OUT_B, GATE_OUT, LAYER_WEIGHTS
};
// Tensors before the layers (embedding, basis frequencies) and after them (readout).
constexpr int64_t LEADING_WEIGHTS = 2;
constexpr int64_t READOUT_WEIGHTS = 7;

// The weight list checked against the number of layers and the dtype, made contiguous.
inline std::vector<at::Tensor> checked_weights(at::TensorList weights, int64_t layers, at::ScalarType dtype) {
  TORCH_CHECK(static_cast<int64_t>(weights.size()) == LEADING_WEIGHTS + layers * LAYER_WEIGHTS + READOUT_WEIGHTS,
              "mlffd: the weight list does not match the number of layers");
  std::vector<at::Tensor> w;
  w.reserve(weights.size());
  for (const auto& t : weights) {
    TORCH_CHECK(t.scalar_type() == dtype, "mlffd: weights and positions or vectors differ in dtype");
    TORCH_CHECK(t.device().is_cpu(), "mlffd: the kernel runs on the CPU only");
    w.push_back(t.contiguous());
  }
  return w;
}

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
  PaiNN(std::vector<at::Tensor> weights, int64_t layers, double cutoff, double norm_epsilon) {
    set_weights(std::move(weights), layers, cutoff, norm_epsilon);
  }

  // The network to evaluate (see checked_weights); the buffers of earlier evaluations are kept.
  void set_weights(std::vector<at::Tensor> weights, int64_t layers, double cutoff, double norm_epsilon) {
    w_ = std::move(weights);
    layers_ = layers;
    cutoff_ = T(cutoff);
    norm_epsilon_ = T(norm_epsilon);
    f_ = w_[0].size(1);
    r1_ = w_[1].size(0) + 1;
    readout_ = LEADING_WEIGHTS + layers_ * LAYER_WEIGHTS;
    h_ = w_[readout_ + 1].size(0);
    filter_back_.clear();
    for (int64_t l = 0; l < layers_; ++l) filter_back_.push_back(w_[offset(l) + FILTER_T].t().contiguous());
    state_.resize(layers_);
    species_context_.clear();
  }

  int64_t layers() const { return layers_; }
  int64_t species_count() const { return w_[0].size(0); }
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
    for (int64_t k = 0; k < e_; ++k) {
      const T* x = vectors + 3 * k;
      distance_[k] = std::sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]);
      for (int c = 0; c < 3; ++c) unit_[3 * k + c] = x[c] / distance_[k];
    }
    const T pi = T(M_PI);
    const T* frequencies = w_[1].data_ptr<T>();
    radial_.resize(rows_ * r1_);
    radial_slope_.resize(rows_ * r1_);
    for (int64_t k = 0; k < rows_; ++k) {
      const T d = distance_[first_edge(k)];
      T env = T(0), env_slope = T(0);
      if (d < cutoff_) {
        const T phase = d * (pi / cutoff_);
        env = T(0.5) * (std::cos(phase) + T(1));
        env_slope = T(-0.5) * (pi / cutoff_) * std::sin(phase);
      }
      T* rad = radial_.data() + k * r1_;
      T* slope = radial_slope_.data() + k * r1_;
      for (int64_t b = 0; b + 1 < r1_; ++b) {
        const T angle = d * frequencies[b];
        const T basis = std::sin(angle) / d;
        rad[b] = basis * env;
        slope[b] = (frequencies[b] * std::cos(angle) - basis) / d * env + basis * env_slope;
      }
      rad[r1_ - 1] = env;
      slope[r1_ - 1] = env_slope;
    }
    g_radial_.assign(rows_ * r1_, T(0));
    g_unit_.assign(3 * e_, T(0));
    // filters of every layer are kept from forward to reverse when they fit in a few MB;
    // otherwise they are recomputed a chunk at a time (about 1 MB, to stay in cache)
    const int64_t f3 = 3 * f_;
    keep_filters_ = rows_ * f3 * layers_ * int64_t(sizeof(T)) <= (int64_t(8) << 20);
    chunk_ = keep_filters_ ? std::max<int64_t>(rows_, 1)
                           : std::max<int64_t>(256, (int64_t(1) << 20) / (f3 * int64_t(sizeof(T))));
    filters_.resize((keep_filters_ ? layers_ * rows_ : std::min(chunk_, rows_)) * f3);
    g_filters_.resize(std::min(chunk_, rows_) * f3);
  }

  // Layer-0 feature rows (n x width) of atoms with these species indices, which forward(0) also
  // reads (the array must outlive it).
  void embed(int64_t n, const int64_t* species, T* x) {
    species_ = species;
    const T* embedding = w_[0].data_ptr<T>();
    for (int64_t i = 0; i < n; ++i) {
      T* row = x + i * width();
      std::copy(embedding + species[i] * f_, embedding + (species[i] + 1) * f_, row);
      std::fill(row + f_, row + 4 * f_, T(0));
    }
  }

  // Layer l: x_out (first nlocal rows, width apart) from x_in (n rows: local, then neighbours).
  void forward(int64_t l, int64_t n, int64_t nlocal, const T* x_in, T* x_out) {
    const int64_t o = offset(l), f = f_, f3 = 3 * f_, wd = width();
    Layer& st = state_[l];
    st.n = n;
    st.nlocal = nlocal;
    st.x_in = x_in;
    // context = silu(s W_in^T + b_in) W_out^T + b_out, for every atom (neighbours need it); in
    // the first layer s is the embedding, so the context is that of the atom's species
    st.context.resize(n * f3);
    act_.resize(std::max(n, species_count()) * f);
    if (l == 0) {
      if (species_context_.empty()) {
        const int64_t count = species_count();
        std::vector<T> hidden(count * f);
        species_context_.resize(count * f3);
        gemm(count, f, f, ptr(0), f, ptr(o + CONTEXT_IN_T), hidden.data(), f, ptr(o + CONTEXT_IN_B), false);
        for (int64_t k = 0; k < count * f; ++k) act_[k] = silu(hidden[k]);
        gemm(count, f3, f, act_.data(), f, ptr(o + CONTEXT_OUT_T), species_context_.data(), f3, ptr(o + CONTEXT_OUT_B),
             false);
      }
      for (int64_t i = 0; i < n; ++i)
        std::copy(species_context_.data() + species_[i] * f3, species_context_.data() + (species_[i] + 1) * f3,
                  st.context.data() + i * f3);
    } else {
      st.hidden.resize(n * f);
      gemm(n, f, f, x_in, wd, ptr(o + CONTEXT_IN_T), st.hidden.data(), f, ptr(o + CONTEXT_IN_B), false);
      for (int64_t k = 0; k < n * f; ++k) act_[k] = silu(st.hidden[k]);
      gemm(n, f3, f, act_.data(), f, ptr(o + CONTEXT_OUT_T), st.context.data(), f3, ptr(o + CONTEXT_OUT_B), false);
    }
    // messages: s1 = s + sum ms, v1 = v + sum (mvs unit + mvv v[dst]), into the local atoms
    s1_.resize(nlocal * f);
    v1_.resize(nlocal * f3);
    for (int64_t i = 0; i < nlocal; ++i) {
      std::copy(x_in + i * wd, x_in + i * wd + f, s1_.data() + i * f);
      std::copy(x_in + i * wd + f, x_in + (i + 1) * wd, v1_.data() + i * f3);
    }
    const T* ctx = st.context.data();
    for (int64_t a = 0; a < rows_; a += chunk_) {
      const int64_t len = std::min(chunk_, rows_ - a);
      const T* filters = chunk_filters(l, a, len, true);
      for (int64_t edge = 0; edge < edges_in_rows(a, len); ++edge) {
        const int64_t row = row_of(a, edge), k = edge_of(a, edge);
        const int64_t i = src_[k], j = dst_[k];
        const T* filt = filters + (row - a) * f3;
        const T* cj = ctx + j * f3;
        T* si = s1_.data() + i * f;
        for (int64_t q = 0; q < f; ++q) si[q] += cj[q] * filt[q];
        for (int c = 0; c < 3; ++c) {
          const T uc = unit_[3 * k + c];
          T* vi = v1_.data() + i * f3 + c * f;
          if (l > 0) {
            const T* vj = x_in + j * wd + f + c * f;
            for (int64_t q = 0; q < f; ++q)
              vi[q] += cj[2 * f + q] * filt[2 * f + q] * uc + cj[f + q] * filt[f + q] * vj[q];
          } else {
            for (int64_t q = 0; q < f; ++q) vi[q] += cj[2 * f + q] * filt[2 * f + q] * uc;
          }
        }
      }
    }
    // update: s2 = s1 + asv <u_v, v_v> + ass, v2 = v1 + avv u_v, gates from [s1, |v_v|]
    st.u_v.resize(nlocal * f3);
    st.v_v.resize(nlocal * f3);
    gemm(3 * nlocal, f, f, v1_.data(), f, ptr(o + MIX_U_T), st.u_v.data(), f, nullptr, false);
    gemm(3 * nlocal, f, f, v1_.data(), f, ptr(o + MIX_V_T), st.v_v.data(), f, nullptr, false);
    st.norm.resize(nlocal * f);
    st.dot.resize(nlocal * f);
    z_.resize(nlocal * 2 * f);
    for (int64_t i = 0; i < nlocal; ++i) {
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
    st.gate_hidden.resize(nlocal * f);
    st.gate.resize(nlocal * f3);
    gemm(nlocal, f, 2 * f, z_.data(), 2 * f, ptr(o + GATE_IN_T), st.gate_hidden.data(), f, ptr(o + GATE_IN_B), false);
    for (int64_t k = 0; k < nlocal * f; ++k) act_[k] = silu(st.gate_hidden[k]);
    gemm(nlocal, f3, f, act_.data(), f, ptr(o + GATE_OUT_T), st.gate.data(), f3, ptr(o + GATE_OUT_B), false);
    for (int64_t i = 0; i < nlocal; ++i) {
      const T* g = st.gate.data() + i * f3;
      T* out = x_out + i * wd;
      for (int64_t q = 0; q < f; ++q) out[q] = s1_[i * f + q] + g[f + q] * st.dot[i * f + q] + g[2 * f + q];
      for (int c = 0; c < 3; ++c)
        for (int64_t q = 0; q < f; ++q)
          out[f + c * f + q] = v1_[i * f3 + c * f + q] + g[q] * st.u_v[i * f3 + c * f + q];
    }
  }

  // Energies (eV) of the nlocal atoms from their final feature rows x, and g_x (nlocal x width),
  // the gradient of their sum with respect to x.
  void readout(int64_t nlocal, const int64_t* species, const T* x, T* energies, T* g_x) {
    const T* w2 = ptr(readout_ + 3);
    const T b2 = ptr(readout_ + 4)[0];
    const T scale = ptr(readout_ + 5)[0];
    const T* reference = ptr(readout_ + 6);
    readout_hidden_.resize(nlocal * h_);
    gemm(nlocal, h_, f_, x, width(), ptr(readout_), readout_hidden_.data(), h_, ptr(readout_ + 1), false);
    for (int64_t i = 0; i < nlocal; ++i) {
      T out = b2;
      for (int64_t q = 0; q < h_; ++q) {
        T& x_q = readout_hidden_[i * h_ + q];
        out += silu(x_q) * w2[q];
        x_q = silu_slope(x_q) * w2[q] * scale;  // now the gradient on the hidden layer
      }
      energies[i] = out * scale + reference[species[i]];
    }
    std::fill(g_x, g_x + nlocal * width(), T(0));
    gemm(nlocal, f_, h_, readout_hidden_.data(), h_, ptr(readout_ + 2), g_x, width(), nullptr, true);
  }

  // Reverse of layer l: from g_out (nlocal rows, width apart), the gradient of the energy with
  // respect to the layer's output, accumulate the edges' geometry gradients and write g_in
  // (n rows), the gradient with respect to its input rows; g_in = nullptr (the first layer, whose
  // input is constant) skips it.
  void reverse(int64_t l, const T* g_out, T* g_in) {
    TORCH_CHECK((g_in != nullptr) == (l > 0), "mlffd: every layer but the first (whose input is constant) gives g_in");
    const int64_t o = offset(l), f = f_, f3 = 3 * f_, wd = width();
    const Layer& st = state_[l];
    const int64_t n = st.n, nlocal = st.nlocal;
    const T* uv = st.u_v.data();
    const T* vv = st.v_v.data();
    const T* gt = st.gate.data();
    // update: s2 = s1 + asv * dot + ass, v2 = v1 + avv * u_v
    g_gate_.resize(nlocal * f3);
    for (int64_t i = 0; i < nlocal; ++i) {
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
    g_gh_.resize(nlocal * f);
    gemm(nlocal, f, f3, g_gate_.data(), f3, ptr(o + GATE_OUT), g_gh_.data(), f, nullptr, false);
    for (int64_t k = 0; k < nlocal * f; ++k) g_gh_[k] *= silu_slope(st.gate_hidden[k]);
    g_z_.resize(nlocal * 2 * f);
    gemm(nlocal, 2 * f, f, g_gh_.data(), f, ptr(o + GATE_IN), g_z_.data(), 2 * f, nullptr, false);
    g_s1_.resize(nlocal * f);
    g_v1_.resize(nlocal * f3);
    g_u_.resize(nlocal * f3);
    g_vv_.resize(nlocal * f3);
    for (int64_t i = 0; i < nlocal; ++i) {
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
    gemm(3 * nlocal, f, f, g_u_.data(), f, ptr(o + MIX_U), g_v1_.data(), f, nullptr, true);
    gemm(3 * nlocal, f, f, g_vv_.data(), f, ptr(o + MIX_V), g_v1_.data(), f, nullptr, true);
    // messages; s1 and v1 also pass their gradients straight to the input's s and v
    if (g_in) {
      std::fill(g_in, g_in + n * wd, T(0));
      for (int64_t i = 0; i < nlocal; ++i) {
        std::copy(g_s1_.data() + i * f, g_s1_.data() + (i + 1) * f, g_in + i * wd);
        std::copy(g_v1_.data() + i * f3, g_v1_.data() + (i + 1) * f3, g_in + i * wd + f);
      }
      g_ctx_.assign(n * f3, T(0));
    }
    const T* ctx = st.context.data();
    const T* x_in = st.x_in;
    g_message_.resize(f3);
    T* g_message = g_message_.data();
    for (int64_t a = 0; a < rows_; a += chunk_) {
      const int64_t len = std::min(chunk_, rows_ - a);
      const T* filters = chunk_filters(l, a, len, false);
      for (int64_t edge = 0; edge < edges_in_rows(a, len); ++edge) {
        const int64_t row = row_of(a, edge), k = edge_of(a, edge);
        const bool first_of_row = k == first_edge(row);
        const int64_t i = src_[k], j = dst_[k];
        const T* filt = filters + (row - a) * f3;
        T* g_filter = g_filters_.data() + (row - a) * f3;  // summed over the row's edges
        const T* cj = ctx + j * f3;
        const T* gvi = g_v1_.data() + i * f3;  // gradient of the vector message into atom i
        const T* gsi = g_s1_.data() + i * f;
        const T u0 = unit_[3 * k], u1 = unit_[3 * k + 1], u2 = unit_[3 * k + 2];
        T gu0 = T(0), gu1 = T(0), gu2 = T(0);
#pragma omp simd reduction(+ : gu0, gu1, gu2)
        for (int64_t q = 0; q < f; ++q) {
          const T mvs = cj[2 * f + q] * filt[2 * f + q];
          gu0 += gvi[q] * mvs;
          gu1 += gvi[f + q] * mvs;
          gu2 += gvi[2 * f + q] * mvs;
          g_message[q] = gsi[q];
          g_message[2 * f + q] = gvi[q] * u0 + gvi[f + q] * u1 + gvi[2 * f + q] * u2;
        }
        g_unit_[3 * k] += gu0;
        g_unit_[3 * k + 1] += gu1;
        g_unit_[3 * k + 2] += gu2;
        if (l > 0) {
          const T* vj = x_in + j * wd + f;
          T* gvj = g_in + j * wd + f;
          for (int64_t q = 0; q < f; ++q) {
            const T mvv = cj[f + q] * filt[f + q];
            g_message[f + q] = gvi[q] * vj[q] + gvi[f + q] * vj[f + q] + gvi[2 * f + q] * vj[2 * f + q];
            gvj[q] += mvv * gvi[q];
            gvj[f + q] += mvv * gvi[f + q];
            gvj[2 * f + q] += mvv * gvi[2 * f + q];
          }
        } else {
          for (int64_t q = 0; q < f; ++q) g_message[f + q] = T(0);
        }
        if (g_in) {
          T* gcj = g_ctx_.data() + j * f3;
          for (int64_t q = 0; q < f3; ++q) gcj[q] += g_message[q] * filt[q];
        }
        if (first_of_row) {
          for (int64_t q = 0; q < f3; ++q) g_filter[q] = g_message[q] * cj[q];
        } else {
          for (int64_t q = 0; q < f3; ++q) g_filter[q] += g_message[q] * cj[q];
        }
      }
      // d E / d radial features of the chunk: (len, 3F) x (3F, R + 1)
      gemm(len, r1_, f3, g_filters_.data(), f3, filter_back_[l].data_ptr<T>(), g_radial_.data() + a * r1_, r1_,
           nullptr, true);
    }
    if (!g_in) return;
    // context = silu(s W_in^T + b_in) W_out^T + b_out, over all n atoms
    g_h_.resize(n * f);
    gemm(n, f, f3, g_ctx_.data(), f3, ptr(o + CONTEXT_OUT), g_h_.data(), f, nullptr, false);
    for (int64_t k = 0; k < n * f; ++k) g_h_[k] *= silu_slope(st.hidden[k]);
    gemm(n, f, f, g_h_.data(), f, ptr(o + CONTEXT_IN), g_in, wd, nullptr, true);
  }

  // d E / d (x[dst] - x[src]) of every edge (E x 3), after reverse(0).
  void edge_gradients(T* g_vectors) const {
    for (int64_t k = 0; k < e_; ++k) {
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
      for (int c = 0; c < 3; ++c) g_vectors[3 * k + c] = (gu[c] - radial_part * u[c]) / distance_[k] + g_distance * u[c];
    }
  }

 private:
  struct Layer {
    int64_t n = 0, nlocal = 0;
    const T* x_in = nullptr;
    std::vector<T> hidden, context, u_v, v_v, norm, dot, gate_hidden, gate;
  };

  int64_t offset(int64_t l) const { return LEADING_WEIGHTS + l * LAYER_WEIGHTS; }

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
  const T* ptr(int64_t index) const { return w_[index].data_ptr<T>(); }

  // The envelope-weighted filters (len x 3F) of rows a .. a + len - 1 in layer l: computed (when
  // kept, in the forward pass only) or read back.
  const T* chunk_filters(int64_t l, int64_t a, int64_t len, bool forward) {
    const int64_t f3 = 3 * f_;
    T* out = filters_.data() + (keep_filters_ ? (l * rows_ + a) * f3 : 0);
    if (forward || !keep_filters_)
      gemm(len, f3, r1_, radial_.data() + a * r1_, r1_, ptr(offset(l) + FILTER_T), out, f3, nullptr, false);
    return out;
  }

  std::vector<at::Tensor> w_, filter_back_;
  int64_t layers_ = 0, f_ = 0, r1_ = 0, h_ = 0, readout_ = 0;
  T cutoff_ = T(0), norm_epsilon_ = T(0);
  // edges
  int64_t e_ = 0, rows_ = 0, pairs_ = 0, chunk_ = 1;
  bool keep_filters_ = false;
  const int64_t* src_ = nullptr;
  const int64_t* dst_ = nullptr;
  const int64_t* species_ = nullptr;  // of the atoms embed() was given
  std::vector<T> species_context_;    // the first layer's context of each species
  std::vector<T> distance_, unit_, radial_, radial_slope_, g_radial_, g_unit_, filters_, g_filters_;
  // per layer, and scratch
  std::vector<Layer> state_;
  std::vector<T> act_, s1_, v1_, z_, readout_hidden_, g_gate_, g_gh_, g_z_, g_s1_, g_v1_, g_u_, g_vv_, g_ctx_, g_h_,
      g_message_;
};

}  // namespace mlffd
