// mlffd::painn_forces: a student's per-atom energies and forces in one C++ call, from its edges;
// mlffd::painn_all_pairs_forces: the same for a small system (in vacuum or in a periodic cell of any
// shape), from its positions.
//
// The same arithmetic as mlff_distiller/models/forces.py (StudentForces): PaiNN forward over
// the edges, then the hand-written reverse pass, but as loops over atoms and edges instead of
// ~300 tensor operations. On a small molecule those operations cost far more than their
// arithmetic (dispatch, allocation, strided index_add); here each edge's messages and their
// gradients are formed, used and accumulated in one pass while they are in cache. The few
// products big enough to profit from BLAS (the edges' filters, the linear maps of large
// students) go to at::mm. Single-threaded apart from BLAS: one call per MD step on one core.
//
// Layouts: scalar features s are (N, F) row-major; vector features v are (N, 3, F) (atom-major,
// unlike the (3, N, F) of the Python modules). Weights arrive pre-arranged by
// mlff_distiller/models/fused.py (kernel_weights): W^T (in x out) for forward products written
// as y[n, :] += x[n, i] W^T[i, :], and W (out x in) for the reverse products, so that the inner
// loops run over contiguous memory and vectorise.
//
// Built on first use by mlff_distiller/models/kernel/__init__.py; registered as torch.ops.mlffd.

#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

namespace {

template <typename T>
inline T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }

template <typename T>
inline T silu(T x) { return x * sigmoid(x); }

template <typename T>
inline T silu_slope(T x) {
  T sg = sigmoid(x);
  return sg * (T(1) + x * (T(1) - sg));
}

// Products with at least this many multiply-adds go to BLAS; smaller ones are cheaper as loops.
constexpr int64_t BLAS_MIN_MACS = 1 << 16;

// A (rows x cols) view of a buffer, for at::mm (no copy).
template <typename T>
at::Tensor view(T* data, int64_t rows, int64_t cols, const at::TensorOptions& options) {
  return at::from_blob(data, {rows, cols}, options);
}

// y (n x out) = x (n x in) W^T (in x out) [+ b (out)]; wt is W^T, contiguous
template <typename T>
void linear(const T* x, int64_t n, const at::Tensor& wt, const at::Tensor* b, T* y) {
  const int64_t in = wt.size(0), out = wt.size(1);
  if (n * in * out >= BLAS_MIN_MACS) {
    at::Tensor y_t = view(y, n, out, wt.options());
    at::Tensor x_t = view(const_cast<T*>(x), n, in, wt.options());
    if (b) at::addmm_out(y_t, *b, x_t, wt);
    else at::mm_out(y_t, x_t, wt);
    return;
  }
  const T* w = wt.data_ptr<T>();
  const T* bias = b ? b->data_ptr<T>() : nullptr;
  for (int64_t r = 0; r < n; ++r) {
    T* yr = y + r * out;
    for (int64_t o = 0; o < out; ++o) yr[o] = bias ? bias[o] : T(0);
    const T* xr = x + r * in;
    for (int64_t i = 0; i < in; ++i) {
      const T xi = xr[i];
      const T* wi = w + i * out;
      for (int64_t o = 0; o < out; ++o) yr[o] += xi * wi[o];
    }
  }
}

// g_x (n x in) += g_y (n x out) W (out x in), the reverse of linear(); w is W, contiguous
template <typename T>
void linear_back(const T* gy, int64_t n, const at::Tensor& w_t, T* gx) {
  const int64_t out = w_t.size(0), in = w_t.size(1);
  if (n * in * out >= BLAS_MIN_MACS) {
    view(gx, n, in, w_t.options()).addmm_(view(const_cast<T*>(gy), n, out, w_t.options()), w_t);
    return;
  }
  const T* w = w_t.data_ptr<T>();
  for (int64_t r = 0; r < n; ++r) {
    T* gxr = gx + r * in;
    const T* gyr = gy + r * out;
    for (int64_t o = 0; o < out; ++o) {
      const T g = gyr[o];
      const T* wo = w + o * in;
      for (int64_t i = 0; i < in; ++i) gxr[i] += g * wo[i];
    }
  }
}

// Per-layer tensors in the weight list (see kernel_weights in fused.py), in this order.
enum LayerWeight {
  CONTEXT_IN_T, CONTEXT_IN_B, CONTEXT_IN, CONTEXT_OUT_T, CONTEXT_OUT_B, CONTEXT_OUT,
  FILTER_T, MIX_U_T, MIX_U, MIX_V_T, MIX_V,
  GATE_IN_T, GATE_IN_B, GATE_IN, GATE_OUT_T, GATE_OUT_B, GATE_OUT, LAYER_WEIGHTS
};
// Tensors before the layers (embedding, basis frequencies) and after them (readout).
constexpr int64_t LEADING_WEIGHTS = 2;
constexpr int64_t READOUT_WEIGHTS = 7;

// paired: edge k + E/2 is edge k reversed (same atoms swapped, vector negated), as the package's
// neighbour searches return them. The two then share their distance, hence their radial features
// and filters, which are computed (forward) and differentiated (reverse) once per pair.
template <typename T>
std::tuple<at::Tensor, at::Tensor> run(const at::Tensor& species_t, const at::Tensor& src_t, const at::Tensor& dst_t,
                                       const at::Tensor& vectors_t, const std::vector<at::Tensor>& w, int64_t layers,
                                       double cutoff_d, double norm_epsilon_d, bool paired) {
  const T cutoff = T(cutoff_d);
  const T norm_epsilon = T(norm_epsilon_d);
  const T pi = T(M_PI);
  const at::TensorOptions options = vectors_t.options();
  const int64_t n = species_t.size(0);
  const int64_t e = src_t.size(0);
  const int64_t f = w[0].size(1);
  const int64_t f3 = 3 * f;
  const int64_t r1 = w[1].size(0) + 1;  // radial features: n_rbf basis functions and the envelope
  const int64_t base = LEADING_WEIGHTS + layers * LAYER_WEIGHTS;
  const int64_t h = w[base + 1].size(0);  // readout hidden width
  const int64_t* species = species_t.data_ptr<int64_t>();
  const int64_t* src = src_t.data_ptr<int64_t>();
  const int64_t* dst = dst_t.data_ptr<int64_t>();
  const T* vectors = vectors_t.data_ptr<T>();
  const T* embedding = w[0].data_ptr<T>();
  const T* frequencies = w[1].data_ptr<T>();
  for (int64_t i = 0; i < n; ++i)
    TORCH_CHECK(species[i] >= 0 && species[i] < w[0].size(0), "mlffd: species index ", species[i], " out of range");
  for (int64_t k = 0; k < e; ++k)
    TORCH_CHECK(src[k] >= 0 && src[k] < n && dst[k] >= 0 && dst[k] < n, "mlffd: edge ", k, " names an atom out of range");

  // Rows: one per distinct distance (a pair of edges when paired, else an edge). Row r holds the
  // edges r and, when paired, r + rows.
  const int64_t rows = paired ? e / 2 : e;
  const int64_t per_row = paired ? 2 : 1;

  // edge geometry: unit vectors per edge; radial features and their derivatives with respect to
  // the distance per row
  at::Tensor radial_t = at::empty({rows, r1}, options);
  T* radial = radial_t.data_ptr<T>();
  std::vector<T> distance(e), unit(3 * e), radial_slope(rows * r1);
  for (int64_t k = 0; k < e; ++k) {
    const T* x = vectors + 3 * k;
    distance[k] = std::sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]);
    for (int c = 0; c < 3; ++c) unit[3 * k + c] = x[c] / distance[k];
  }
  for (int64_t k = 0; k < rows; ++k) {
    const T d = distance[k];
    T env = T(0), env_slope = T(0);
    if (d < cutoff) {
      const T phase = d * (pi / cutoff);
      env = T(0.5) * (std::cos(phase) + T(1));
      env_slope = T(-0.5) * (pi / cutoff) * std::sin(phase);
    }
    T* rad = radial + k * r1;
    T* slope = radial_slope.data() + k * r1;
    for (int64_t b = 0; b + 1 < r1; ++b) {
      const T angle = d * frequencies[b];
      const T basis = std::sin(angle) / d;
      rad[b] = basis * env;
      slope[b] = (frequencies[b] * std::cos(angle) - basis) / d * env + basis * env_slope;
    }
    rad[r1 - 1] = env;
    slope[r1 - 1] = env_slope;
  }
  // edges go in chunks whose (chunk, 3F) filter matrix stays in cache (about 1 MB)
  const int64_t chunk = std::max<int64_t>(256, (int64_t(1) << 20) / (f3 * int64_t(sizeof(T))));
  at::Tensor filters_t = at::empty({std::max<int64_t>(std::min(chunk, rows), 1), f3}, options);
  T* filters = filters_t.data_ptr<T>();
  // the envelope-weighted filters of rows a .. a + len - 1 of block o into filters_t, (len, 3F)
  auto chunk_filters = [&](int64_t o, int64_t a, int64_t len) {
    at::Tensor out = filters_t.narrow(0, 0, len);
    at::mm_out(out, radial_t.narrow(0, a, len), w[o + FILTER_T]);
  };

  // forward, keeping the per-atom tensors of every layer
  std::vector<T> s(n * f), v(n * f3, T(0));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t q = 0; q < f; ++q) s[i * f + q] = embedding[species[i] * f + q];
  std::vector<std::vector<T>> hidden(layers), context(layers), v_in(layers), u_v(layers), v_v(layers), norm(layers),
      gate_hidden(layers), gate(layers), dot(layers);
  std::vector<T> z(n * 2 * f), act(n * f);
  for (int64_t l = 0; l < layers; ++l) {
    const int64_t o = LEADING_WEIGHTS + l * LAYER_WEIGHTS;
    hidden[l].resize(n * f);
    context[l].resize(n * f3);
    linear(s.data(), n, w[o + CONTEXT_IN_T], &w[o + CONTEXT_IN_B], hidden[l].data());
    for (int64_t k = 0; k < n * f; ++k) act[k] = silu(hidden[l][k]);
    linear(act.data(), n, w[o + CONTEXT_OUT_T], &w[o + CONTEXT_OUT_B], context[l].data());
    v_in[l] = v;
    const T* ctx = context[l].data();
    const T* vin = v_in[l].data();
    for (int64_t a = 0; a < rows; a += chunk) {
      const int64_t len = std::min(chunk, rows - a);
      chunk_filters(o, a, len);
      for (int64_t edge = 0; edge < len * per_row; ++edge) {
        const int64_t row = a + edge / per_row;
        const int64_t k = row + (edge % per_row) * rows;
        const int64_t i = src[k], j = dst[k];
        const T* filt = filters + (row - a) * f3;
        const T* cj = ctx + j * f3;
        T* si = s.data() + i * f;
        for (int64_t q = 0; q < f; ++q) si[q] += cj[q] * filt[q];
        for (int c = 0; c < 3; ++c) {
          const T uc = unit[3 * k + c];
          T* vi = v.data() + i * f3 + c * f;
          if (l > 0) {
            const T* vj = vin + j * f3 + c * f;
            for (int64_t q = 0; q < f; ++q)
              vi[q] += cj[2 * f + q] * filt[2 * f + q] * uc + cj[f + q] * filt[f + q] * vj[q];
          } else {
            for (int64_t q = 0; q < f; ++q) vi[q] += cj[2 * f + q] * filt[2 * f + q] * uc;
          }
        }
      }
    }
    u_v[l].resize(n * f3);
    v_v[l].resize(n * f3);
    linear(v.data(), 3 * n, w[o + MIX_U_T], nullptr, u_v[l].data());
    linear(v.data(), 3 * n, w[o + MIX_V_T], nullptr, v_v[l].data());
    norm[l].resize(n * f);
    dot[l].resize(n * f);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t q = 0; q < f; ++q) {
        T sq = norm_epsilon, dt = T(0);
        for (int c = 0; c < 3; ++c) {
          const T vv = v_v[l][i * f3 + c * f + q];
          sq += vv * vv;
          dt += u_v[l][i * f3 + c * f + q] * vv;
        }
        norm[l][i * f + q] = std::sqrt(sq);
        dot[l][i * f + q] = dt;
        z[i * 2 * f + q] = s[i * f + q];
        z[i * 2 * f + f + q] = norm[l][i * f + q];
      }
    }
    gate_hidden[l].resize(n * f);
    gate[l].resize(n * f3);
    linear(z.data(), n, w[o + GATE_IN_T], &w[o + GATE_IN_B], gate_hidden[l].data());
    for (int64_t k = 0; k < n * f; ++k) act[k] = silu(gate_hidden[l][k]);
    linear(act.data(), n, w[o + GATE_OUT_T], &w[o + GATE_OUT_B], gate[l].data());
    for (int64_t i = 0; i < n; ++i) {
      const T* g = gate[l].data() + i * f3;
      for (int c = 0; c < 3; ++c)
        for (int64_t q = 0; q < f; ++q) v[i * f3 + c * f + q] += g[q] * u_v[l][i * f3 + c * f + q];
      for (int64_t q = 0; q < f; ++q) s[i * f + q] += g[f + q] * dot[l][i * f + q] + g[2 * f + q];
    }
  }

  // readout: energy = (silu(s W1^T + b1) w2 + b2) scale + reference[species]
  const T* readout_out = w[base + 3].data_ptr<T>();
  const T readout_out_b = w[base + 4].data_ptr<T>()[0];
  const T scale = w[base + 5].data_ptr<T>()[0];
  const T* reference = w[base + 6].data_ptr<T>();
  std::vector<T> readout_hidden(n * h);
  linear(s.data(), n, w[base], &w[base + 1], readout_hidden.data());
  at::Tensor energies_t = at::empty({n}, options);
  T* energies = energies_t.data_ptr<T>();
  std::vector<T> g_hidden(n * h);
  for (int64_t i = 0; i < n; ++i) {
    T out = readout_out_b;
    for (int64_t q = 0; q < h; ++q) {
      const T x = readout_hidden[i * h + q];
      out += silu(x) * readout_out[q];
      g_hidden[i * h + q] = silu_slope(x) * readout_out[q] * scale;
    }
    energies[i] = out * scale + reference[species[i]];
  }

  // reverse pass: gradients of the total energy
  std::vector<T> g_s(n * f, T(0)), g_v(n * f3, T(0));
  linear_back(g_hidden.data(), n, w[base + 2], g_s.data());
  at::Tensor g_radial_t = at::zeros({rows, r1}, options);
  at::Tensor g_filters_t = at::empty_like(filters_t);
  T* g_filters = g_filters_t.data_ptr<T>();
  std::vector<T> g_unit(3 * e, T(0));
  std::vector<T> g_gate(n * f3), g_gh(n * f), g_z(n * 2 * f), g_u(n * f3), g_vv(n * f3), g_ctx(n * f3), g_h(n * f);
  std::vector<T> g_message(f3);
  for (int64_t l = layers - 1; l >= 0; --l) {
    const int64_t o = LEADING_WEIGHTS + l * LAYER_WEIGHTS;
    const T* uv = u_v[l].data();
    const T* vv = v_v[l].data();
    const T* gt = gate[l].data();
    // update: s2 = s1 + asv * dot + ass, v2 = v1 + avv * u_v
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t q = 0; q < f; ++q) {
        T gav = T(0);
        for (int c = 0; c < 3; ++c) gav += g_v[i * f3 + c * f + q] * uv[i * f3 + c * f + q];
        g_gate[i * f3 + q] = gav;
        g_gate[i * f3 + f + q] = g_s[i * f + q] * dot[l][i * f + q];
        g_gate[i * f3 + 2 * f + q] = g_s[i * f + q];
      }
    }
    std::fill(g_gh.begin(), g_gh.end(), T(0));
    linear_back(g_gate.data(), n, w[o + GATE_OUT], g_gh.data());
    for (int64_t k = 0; k < n * f; ++k) g_gh[k] *= silu_slope(gate_hidden[l][k]);
    std::fill(g_z.begin(), g_z.end(), T(0));
    linear_back(g_gh.data(), n, w[o + GATE_IN], g_z.data());
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t q = 0; q < f; ++q) {
        const T avv = gt[i * f3 + q];
        const T g_dot = g_s[i * f + q] * gt[i * f3 + f + q];
        const T g_norm = g_z[i * 2 * f + f + q] / norm[l][i * f + q];
        for (int c = 0; c < 3; ++c) {
          const int64_t p = i * f3 + c * f + q;
          g_u[p] = avv * g_v[p] + g_dot * vv[p];
          g_vv[p] = g_dot * uv[p] + g_norm * vv[p];
        }
        g_s[i * f + q] += g_z[i * 2 * f + q];
      }
    }
    linear_back(g_u.data(), 3 * n, w[o + MIX_U], g_v.data());
    linear_back(g_vv.data(), 3 * n, w[o + MIX_V], g_v.data());
    // messages: s1 = s + sum ms, v1 = v + sum (mvs unit + mvv v[dst]); g_v1 also flows to v directly
    std::vector<T> g_v_in(g_v);
    std::fill(g_ctx.begin(), g_ctx.end(), T(0));
    const T* ctx = context[l].data();
    const T* vin = v_in[l].data();
    for (int64_t a = 0; a < rows; a += chunk) {
      const int64_t len = std::min(chunk, rows - a);
      chunk_filters(o, a, len);
      for (int64_t edge = 0; edge < len * per_row; ++edge) {
        const int64_t row = a + edge / per_row;
        const bool first_of_row = edge % per_row == 0;
        const int64_t k = row + (edge % per_row) * rows;
        const int64_t i = src[k], j = dst[k];
        const T* filt = filters + (row - a) * f3;
        T* g_filter = g_filters + (row - a) * f3;  // summed over the row's edges
        const T* cj = ctx + j * f3;
        const T* gvi = g_v.data() + i * f3;  // gradient of the vector message into atom i
        const T* gsi = g_s.data() + i * f;
        const T u0 = unit[3 * k], u1 = unit[3 * k + 1], u2 = unit[3 * k + 2];
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
        g_unit[3 * k] += gu0;
        g_unit[3 * k + 1] += gu1;
        g_unit[3 * k + 2] += gu2;
        if (l > 0) {
          const T* vj = vin + j * f3;
          T* gvj = g_v_in.data() + j * f3;
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
        T* gcj = g_ctx.data() + j * f3;
        for (int64_t q = 0; q < f3; ++q) gcj[q] += g_message[q] * filt[q];
        if (first_of_row) {
          for (int64_t q = 0; q < f3; ++q) g_filter[q] = g_message[q] * cj[q];
        } else {
          for (int64_t q = 0; q < f3; ++q) g_filter[q] += g_message[q] * cj[q];
        }
      }
      // d E / d radial features of the chunk: (len, 3F) x (3F, R + 1)
      g_radial_t.narrow(0, a, len).addmm_(g_filters_t.narrow(0, 0, len), w[o + FILTER_T].t());
    }
    g_v.swap(g_v_in);
    // context = silu(s W_in^T + b_in) W_out^T + b_out
    std::fill(g_h.begin(), g_h.end(), T(0));
    linear_back(g_ctx.data(), n, w[o + CONTEXT_OUT], g_h.data());
    for (int64_t k = 0; k < n * f; ++k) g_h[k] *= silu_slope(hidden[l][k]);
    linear_back(g_h.data(), n, w[o + CONTEXT_IN], g_s.data());
  }

  // geometry: d E / d(edge vector), then forces = -(sum over edges into dst - sum over edges from src)
  at::Tensor forces_t = at::zeros({n, 3}, options);
  T* forces = forces_t.data_ptr<T>();
  const T* g_radial = g_radial_t.data_ptr<T>();
  for (int64_t k = 0; k < e; ++k) {
    // the derivative with respect to a row's distance goes to its first edge: a distance moves the
    // two atoms of both edges alike
    T g_distance = T(0);
    if (k < rows) {
      const T* grad = g_radial + k * r1;
      const T* slope = radial_slope.data() + k * r1;
      for (int64_t b = 0; b < r1; ++b) g_distance += grad[b] * slope[b];
    }
    const T* u = unit.data() + 3 * k;
    const T* gu = g_unit.data() + 3 * k;
    const T radial_part = gu[0] * u[0] + gu[1] * u[1] + gu[2] * u[2];
    const T d = distance[k];
    for (int c = 0; c < 3; ++c) {
      const T edge_gradient = (gu[c] - radial_part * u[c]) / d + g_distance * u[c];
      forces[3 * dst[k] + c] -= edge_gradient;
      forces[3 * src[k] + c] += edge_gradient;
    }
  }
  return {energies_t, forces_t};
}

std::vector<at::Tensor> checked_weights(at::TensorList weights, int64_t layers, at::ScalarType dtype) {
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

template <typename T>
bool is_paired(const at::Tensor& src_t, const at::Tensor& dst_t, const at::Tensor& vectors_t) {
  const int64_t e = src_t.size(0), h = e / 2;
  if (e == 0 || e % 2) return false;
  const int64_t* src = src_t.data_ptr<int64_t>();
  const int64_t* dst = dst_t.data_ptr<int64_t>();
  const T* x = vectors_t.data_ptr<T>();
  for (int64_t k = 0; k < h; ++k) {
    if (src[k] != dst[k + h] || dst[k] != src[k + h]) return false;
    for (int c = 0; c < 3; ++c)
      if (x[3 * k + c] != -x[3 * (k + h) + c]) return false;
  }
  return true;
}

std::tuple<at::Tensor, at::Tensor> painn_forces(const at::Tensor& species, const at::Tensor& src, const at::Tensor& dst,
                                                const at::Tensor& vectors, at::TensorList weights, int64_t layers,
                                                double cutoff, double norm_epsilon) {
  TORCH_CHECK(vectors.device().is_cpu(), "mlffd::painn_forces runs on the CPU only");
  TORCH_CHECK(vectors.dim() == 2 && vectors.size(1) == 3, "mlffd::painn_forces: vectors must be (E, 3)");
  TORCH_CHECK(src.numel() == vectors.size(0) && dst.numel() == vectors.size(0),
              "mlffd::painn_forces: src, dst and vectors differ in length");
  std::vector<at::Tensor> w = checked_weights(weights, layers, vectors.scalar_type());
  at::Tensor sp = species.to(at::kLong).contiguous(), s = src.to(at::kLong).contiguous();
  at::Tensor d = dst.to(at::kLong).contiguous(), x = vectors.contiguous();
  if (x.scalar_type() == at::kDouble)
    return run<double>(sp, s, d, x, w, layers, cutoff, norm_epsilon, is_paired<double>(s, d, x));
  TORCH_CHECK(x.scalar_type() == at::kFloat, "mlffd::painn_forces: float32 or float64 only");
  return run<float>(sp, s, d, x, w, layers, cutoff, norm_epsilon, is_paired<float>(s, d, x));
}

// Every pair closer than the cutoff, found here: in vacuum N^2 / 2 distance checks, in a fully
// periodic cell of any shape and size the same over every lattice translation that can come within
// the cutoff (an atom may meet several images of a neighbour, or its own). Cheaper than the tensor
// operations of a search for the systems of up to a few hundred atoms this is meant for. Each pair
// is kept once (i < j, or i == j with the translation's first non-zero index positive), and the
// edges are the pairs followed by their reverses.
template <typename T>
std::tuple<at::Tensor, at::Tensor> all_pairs(const at::Tensor& species, const at::Tensor& positions_t,
                                             const c10::optional<at::Tensor>& cell_t, const std::vector<at::Tensor>& w,
                                             int64_t layers, double cutoff, double norm_epsilon) {
  const int64_t n = positions_t.size(0);
  const T* pos = positions_t.data_ptr<T>();
  const double cutoff_sq = cutoff * cutoff;
  // lattice translations (Å, rows of the cell times integers) and wrapped positions
  std::vector<double> wrapped(3 * n);
  for (int64_t k = 0; k < 3 * n; ++k) wrapped[k] = double(pos[k]);
  std::vector<std::array<double, 3>> shifts{{0.0, 0.0, 0.0}};
  std::vector<bool> forward_shift{false};  // the translation's first non-zero index is positive
  if (cell_t) {
    at::Tensor cell64 = cell_t->to(at::kDouble).contiguous();
    const double* c = cell64.data_ptr<double>();
    double inverse[9];
    const double det = c[0] * (c[4] * c[8] - c[5] * c[7]) - c[1] * (c[3] * c[8] - c[5] * c[6]) +
                       c[2] * (c[3] * c[7] - c[4] * c[6]);
    TORCH_CHECK(std::abs(det) > 1e-12, "mlffd: the periodic cell has no volume");
    inverse[0] = (c[4] * c[8] - c[5] * c[7]) / det;
    inverse[1] = (c[2] * c[7] - c[1] * c[8]) / det;
    inverse[2] = (c[1] * c[5] - c[2] * c[4]) / det;
    inverse[3] = (c[5] * c[6] - c[3] * c[8]) / det;
    inverse[4] = (c[0] * c[8] - c[2] * c[6]) / det;
    inverse[5] = (c[2] * c[3] - c[0] * c[5]) / det;
    inverse[6] = (c[3] * c[7] - c[4] * c[6]) / det;
    inverse[7] = (c[1] * c[6] - c[0] * c[7]) / det;
    inverse[8] = (c[0] * c[4] - c[1] * c[3]) / det;
    // wrap into the cell: wrapped = x - floor(x C^-1) C
    for (int64_t i = 0; i < n; ++i) {
      double frac[3];
      for (int a = 0; a < 3; ++a)
        frac[a] = std::floor(wrapped[3 * i] * inverse[a] + wrapped[3 * i + 1] * inverse[3 + a] + wrapped[3 * i + 2] * inverse[6 + a]);
      for (int b = 0; b < 3; ++b)
        wrapped[3 * i + b] -= frac[0] * c[b] + frac[1] * c[3 + b] + frac[2] * c[6 + b];
    }
    // translations up to ceil(cutoff / plane spacing) cells along each lattice direction
    int counts[3];
    for (int a = 0; a < 3; ++a) {
      // the spacing of the planes spanned by the other two rows is 1 / |row a of C^-T|
      const double g0 = inverse[a], g1 = inverse[3 + a], g2 = inverse[6 + a];
      counts[a] = int(std::ceil(cutoff * std::sqrt(g0 * g0 + g1 * g1 + g2 * g2)));
    }
    shifts.clear();
    forward_shift.clear();
    for (int x = -counts[0]; x <= counts[0]; ++x)
      for (int y = -counts[1]; y <= counts[1]; ++y)
        for (int z = -counts[2]; z <= counts[2]; ++z) {
          shifts.push_back({x * c[0] + y * c[3] + z * c[6], x * c[1] + y * c[4] + z * c[7], x * c[2] + y * c[5] + z * c[8]});
          forward_shift.push_back(x > 0 || (x == 0 && (y > 0 || (y == 0 && z > 0))));
        }
  }
  std::vector<int64_t> first, second;
  std::vector<T> offsets;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i; j < n; ++j) {
      const double dx = wrapped[3 * j] - wrapped[3 * i], dy = wrapped[3 * j + 1] - wrapped[3 * i + 1];
      const double dz = wrapped[3 * j + 2] - wrapped[3 * i + 2];
      for (size_t m = 0; m < shifts.size(); ++m) {
        if (i == j && !forward_shift[m]) continue;  // itself, or the other half of an image pair
        const double x = dx + shifts[m][0], y = dy + shifts[m][1], z = dz + shifts[m][2];
        if (x * x + y * y + z * z < cutoff_sq) {
          first.push_back(i);
          second.push_back(j);
          offsets.insert(offsets.end(), {T(x), T(y), T(z)});
        }
      }
    }
  }
  const int64_t h = static_cast<int64_t>(first.size());
  at::Tensor src = at::empty({2 * h}, at::kLong), dst = at::empty({2 * h}, at::kLong);
  at::Tensor vectors = at::empty({2 * h, 3}, positions_t.options());
  int64_t* s = src.data_ptr<int64_t>();
  int64_t* d = dst.data_ptr<int64_t>();
  T* x = vectors.data_ptr<T>();
  for (int64_t k = 0; k < h; ++k) {
    s[k] = d[k + h] = first[k];
    d[k] = s[k + h] = second[k];
    for (int c = 0; c < 3; ++c) {
      x[3 * k + c] = offsets[3 * k + c];
      x[3 * (k + h) + c] = -offsets[3 * k + c];
    }
  }
  return run<T>(species, src, dst, vectors, w, layers, cutoff, norm_epsilon, h > 0);
}

std::tuple<at::Tensor, at::Tensor> painn_all_pairs_forces(const at::Tensor& species, const at::Tensor& positions,
                                                          const c10::optional<at::Tensor>& cell, at::TensorList weights,
                                                          int64_t layers, double cutoff, double norm_epsilon) {
  TORCH_CHECK(positions.device().is_cpu(), "mlffd::painn_all_pairs_forces runs on the CPU only");
  TORCH_CHECK(positions.dim() == 2 && positions.size(1) == 3, "mlffd::painn_all_pairs_forces: positions must be (N, 3)");
  TORCH_CHECK(species.numel() == positions.size(0), "mlffd::painn_all_pairs_forces: species and positions differ in length");
  TORCH_CHECK(!cell || (cell->dim() == 2 && cell->size(0) == 3 && cell->size(1) == 3),
              "mlffd::painn_all_pairs_forces: the cell must be (3, 3)");
  std::vector<at::Tensor> w = checked_weights(weights, layers, positions.scalar_type());
  at::Tensor sp = species.to(at::kLong).contiguous(), x = positions.contiguous();
  if (x.scalar_type() == at::kDouble) return all_pairs<double>(sp, x, cell, w, layers, cutoff, norm_epsilon);
  TORCH_CHECK(x.scalar_type() == at::kFloat, "mlffd::painn_all_pairs_forces: float32 or float64 only");
  return all_pairs<float>(sp, x, cell, w, layers, cutoff, norm_epsilon);
}

}  // namespace

TORCH_LIBRARY(mlffd, m) {
  m.def("painn_forces(Tensor species, Tensor src, Tensor dst, Tensor vectors, Tensor[] weights, int layers, "
        "float cutoff, float norm_epsilon) -> (Tensor, Tensor)");
  m.def("painn_all_pairs_forces(Tensor species, Tensor positions, Tensor? cell, Tensor[] weights, int layers, "
        "float cutoff, float norm_epsilon) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(mlffd, CPU, m) {
  m.impl("painn_forces", painn_forces);
  m.impl("painn_all_pairs_forces", painn_all_pairs_forces);
}
