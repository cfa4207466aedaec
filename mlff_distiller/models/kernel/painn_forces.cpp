// mlffd::painn_forces: a student's per-atom energies and forces in one C++ call, from its edges;
// mlffd::painn_all_pairs_forces: the same for a small system (in vacuum or in a periodic cell of any
// shape), from its positions; mlffd::phase_seconds: where the last of these calls on the calling
// thread spent its time.
//
// The network (painn.h), its named weights (weights.h) and the loop over its layers (driver.h) are
// shared with the LAMMPS pair style; this file runs all layers in one call, with no exchange
// between them, and finds the pairs of small systems. The network's work is split over the
// operators' `threads` argument (0: torch's intra-op thread count, at::get_num_threads()) on the
// calling thread and workers it keeps (threads.h).
//
// Built on first use by mlff_distiller/models/kernel/__init__.py; registered as torch.ops.mlffd.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <vector>

#include "driver.h"
#include "threads.h"
#include "weights.h"

namespace {

// Fewest edges per block of the force sums (a few additions each).
constexpr int64_t EDGE_GRAIN = 4096;

// The phases of an operator call, in order, as phase_seconds reports them: reading and checking
// the weights and inputs, finding the pairs (painn_all_pairs_forces only), the edges' geometry and
// radial features, the layers forward with the readout, the reverse pass with the edge gradients,
// and the sums of the forces.
enum Phase { SETUP, PAIRS, GEOMETRY, FORWARD, REVERSE, FORCES, PHASES };
using Clock = std::chrono::steady_clock;
// Seconds of each phase in the last call on this thread, and when the phase under way began.
thread_local std::array<double, PHASES> phase_times{};
thread_local Clock::time_point phase_start;

void start_phases() {
  phase_times.fill(0.0);
  phase_start = Clock::now();
}

// Ends `phase` now and starts the next.
void end_phase(Phase phase) {
  const Clock::time_point now = Clock::now();
  phase_times[phase] = std::chrono::duration<double>(now - phase_start).count();
  phase_start = now;
}

// The thread count an operator was given: 0 is torch's intra-op count; checked.
int thread_count(int64_t threads) {
  TORCH_CHECK(threads >= 0 && threads <= mlffd::MAX_THREADS, "mlffd: threads must be from 1 to ", mlffd::MAX_THREADS,
              " (or 0: torch's intra-op thread count), not ", threads);
  return threads > 0 ? int(threads) : std::min(at::get_num_threads(), mlffd::MAX_THREADS);
}

// Per-atom energies (N) and forces (N x 3) of all N atoms, every edge's receiver among them, the
// work split over `threads` threads.
template <typename T>
std::tuple<at::Tensor, at::Tensor> run(const at::Tensor& species_t, const at::Tensor& src_t, const at::Tensor& dst_t,
                                       const at::Tensor& vectors_t, mlffd::Weights weights, double cutoff,
                                       double norm_epsilon, bool paired, int threads) {
  const at::TensorOptions options = vectors_t.options();
  const int64_t n = species_t.size(0);
  const int64_t e = src_t.size(0);
  const int64_t* src = src_t.data_ptr<int64_t>();
  const int64_t* dst = dst_t.data_ptr<int64_t>();
  // one driver (network and buffers) per thread, kept between calls
  thread_local mlffd::Driver<T> driver;
  mlffd::NoExchange nothing;
  driver.set_weights(std::move(weights), cutoff, norm_epsilon);
  driver.set_threads(threads);
  driver.run(n, n, species_t.data_ptr<int64_t>(), e, src, dst, vectors_t.data_ptr<T>(), paired ? e / 2 : 0, nothing);
  std::copy(driver.phase_seconds().begin(), driver.phase_seconds().end(), phase_times.begin() + GEOMETRY);
  phase_start = Clock::now();
  at::Tensor energies_t = at::empty({n}, options);
  std::copy(driver.energies().begin(), driver.energies().end(), energies_t.data_ptr<T>());
  // forces = -(sum of d E / d vector over edges into an atom - over edges out of it), each block
  // of edges summing into its own forces, added up in block order
  const T* g_vectors = driver.edge_gradients().data();
  const int blocks = mlffd::block_count(threads, e, EDGE_GRAIN);
  at::Tensor sums_t = at::zeros({blocks, n, 3}, options);
  T* sums = sums_t.data_ptr<T>();
  mlffd::parallel_blocks(blocks, [&](int b) {
    T* forces = sums + b * n * 3;
    const mlffd::Span edges = mlffd::block_span(e, blocks, b);
    for (int64_t k = edges.begin; k < edges.end; ++k)
      for (int c = 0; c < 3; ++c) {
        forces[3 * dst[k] + c] -= g_vectors[3 * k + c];
        forces[3 * src[k] + c] += g_vectors[3 * k + c];
      }
  });
  at::Tensor forces_t = sums_t[0];
  for (int b = 1; b < blocks; ++b) forces_t += sums_t[b];
  end_phase(FORCES);
  return {energies_t, forces_t};
}

// The weights of the dictionary an operator is given, read and checked by read_weights (weights.h),
// or those of the last call on this thread when the dictionary is the very same one, unchanged: a
// module passes its constant weights at every call, and reading and checking some sixty names
// costs a few percent of a small molecule's step. Unchanged means every entry the same tensor
// object with the same data, dtype, shape and strides, all contiguous: the weights read then alias
// the dictionary's tensors, whose values they always see.
mlffd::Weights checked_weights(const mlffd::NamedTensors& named, int64_t layers, at::ScalarType dtype) {
  thread_local c10::optional<mlffd::NamedTensors> source;  // kept alive: its identity stays unique
  thread_local std::vector<int64_t> seen, fingerprint;
  thread_local mlffd::Weights weights;
  fingerprint.assign({layers, int64_t(dtype), int64_t(named.size())});
  bool contiguous = true;
  for (const auto& entry : named) {
    const at::Tensor& t = entry.value();
    contiguous = contiguous && t.is_contiguous();
    fingerprint.insert(fingerprint.end(), {reinterpret_cast<int64_t>(t.unsafeGetTensorImpl()),
                                           reinterpret_cast<int64_t>(t.data_ptr()), int64_t(t.scalar_type()),
                                           int64_t(t.device().type()), t.dim()});
    fingerprint.insert(fingerprint.end(), t.sizes().begin(), t.sizes().end());
    fingerprint.insert(fingerprint.end(), t.strides().begin(), t.strides().end());
  }
  if (source && source->is(named) && fingerprint == seen) return weights;
  mlffd::Weights read = mlffd::read_weights(named, layers, dtype);  // throws for a bad set
  source.reset();
  if (contiguous) {
    weights = read;
    source = named;
    seen.swap(fingerprint);
  }
  return read;
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
                                                const at::Tensor& vectors, const mlffd::NamedTensors& weights,
                                                int64_t layers, double cutoff, double norm_epsilon, int64_t threads) {
  start_phases();
  TORCH_CHECK(vectors.device().is_cpu(), "mlffd::painn_forces runs on the CPU only");
  TORCH_CHECK(vectors.dim() == 2 && vectors.size(1) == 3, "mlffd::painn_forces: vectors must be (E, 3)");
  TORCH_CHECK(src.numel() == vectors.size(0) && dst.numel() == vectors.size(0),
              "mlffd::painn_forces: src, dst and vectors differ in length");
  TORCH_CHECK(vectors.scalar_type() == at::kDouble || vectors.scalar_type() == at::kFloat,
              "mlffd::painn_forces: float32 or float64 only");
  const int t = thread_count(threads);
  mlffd::Weights w = checked_weights(weights, layers, vectors.scalar_type());
  at::Tensor sp = species.to(at::kLong).contiguous(), s = src.to(at::kLong).contiguous();
  at::Tensor d = dst.to(at::kLong).contiguous(), x = vectors.contiguous();
  if (x.scalar_type() == at::kDouble) {
    const bool paired = is_paired<double>(s, d, x);
    end_phase(SETUP);
    return run<double>(sp, s, d, x, std::move(w), cutoff, norm_epsilon, paired, t);
  }
  const bool paired = is_paired<float>(s, d, x);
  end_phase(SETUP);
  return run<float>(sp, s, d, x, std::move(w), cutoff, norm_epsilon, paired, t);
}

// The pairs closer than the cutoff of atoms binned in fractional coordinates frac (n x 3, in [0, 1)),
// nb[a] bins along axis a, each at least a cutoff wide: an atom's neighbours lie in the 27 bins
// around its own. periodic: bins wrap around, shifting the neighbour by a cell row (cell, 3 x 3),
// which needs nb[a] >= 3 so that no bin is met twice; otherwise bins beyond the edges are empty.
// Each pair is kept once (i < j): there are no self-images in cells this wide.
template <typename T>
void binned_pairs(const std::vector<double>& wrapped, const std::vector<double>& frac, const int nb[3],
                  const double* cell, double cutoff_sq, std::vector<int64_t>& first, std::vector<int64_t>& second,
                  std::vector<T>& offsets) {
  const int64_t n = static_cast<int64_t>(wrapped.size() / 3);
  const int64_t bins = int64_t(nb[0]) * nb[1] * nb[2];
  std::vector<int64_t> bin_of(n), start(bins + 1, 0), order(n);
  for (int64_t i = 0; i < n; ++i) {
    int64_t b[3];
    for (int a = 0; a < 3; ++a) b[a] = std::min<int64_t>(nb[a] - 1, std::max<int64_t>(0, int64_t(frac[3 * i + a] * nb[a])));
    bin_of[i] = (b[0] * nb[1] + b[1]) * nb[2] + b[2];
    ++start[bin_of[i] + 1];
  }
  for (int64_t b = 0; b < bins; ++b) start[b + 1] += start[b];
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t i = 0; i < n; ++i) order[fill[bin_of[i]]++] = i;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t own = bin_of[i];
    const int64_t home[3] = {own / (int64_t(nb[1]) * nb[2]), (own / nb[2]) % nb[1], own % nb[2]};
    for (int dx = -1; dx <= 1; ++dx)
      for (int dy = -1; dy <= 1; ++dy)
        for (int dz = -1; dz <= 1; ++dz) {
          const int d[3] = {dx, dy, dz};
          int64_t b[3];
          double shift[3] = {0.0, 0.0, 0.0};
          bool inside = true;
          for (int a = 0; a < 3; ++a) {
            b[a] = home[a] + d[a];
            int wrap = b[a] < 0 ? -1 : b[a] >= nb[a] ? 1 : 0;
            if (wrap && !cell) inside = false;
            b[a] -= wrap * nb[a];
            if (wrap && cell)
              for (int c = 0; c < 3; ++c) shift[c] += wrap * cell[3 * a + c];
          }
          if (!inside) continue;
          const int64_t other = (b[0] * nb[1] + b[1]) * nb[2] + b[2];
          for (int64_t m = start[other]; m < start[other + 1]; ++m) {
            const int64_t j = order[m];
            if (j <= i) continue;
            const double x = wrapped[3 * j] + shift[0] - wrapped[3 * i];
            const double y = wrapped[3 * j + 1] + shift[1] - wrapped[3 * i + 1];
            const double z = wrapped[3 * j + 2] + shift[2] - wrapped[3 * i + 2];
            if (x * x + y * y + z * z < cutoff_sq) {
              first.push_back(i);
              second.push_back(j);
              offsets.insert(offsets.end(), {T(x), T(y), T(z)});
            }
          }
        }
  }
}

// Every pair closer than the cutoff, found here, in vacuum or in a fully periodic cell of any shape
// and size. A cell at least three cutoffs wide along each lattice direction, or a molecule or
// cluster of more than 64 atoms, goes to a cell list (binned_pairs); a smaller cell is searched
// over every lattice translation that can come within the cutoff (an atom may meet several images
// of a neighbour, or its own), a small molecule by N^2 / 2 checks. Each pair is kept once (i < j,
// or i == j with the translation's first non-zero index positive), and the edges are the pairs
// followed by their reverses.
template <typename T>
std::tuple<at::Tensor, at::Tensor> all_pairs(const at::Tensor& species, const at::Tensor& positions_t,
                                             const c10::optional<at::Tensor>& cell_t, mlffd::Weights w, double cutoff,
                                             double norm_epsilon, int threads) {
  const int64_t n = positions_t.size(0);
  const T* pos = positions_t.data_ptr<T>();
  const double cutoff_sq = cutoff * cutoff;
  // lattice translations (Å, rows of the cell times integers) and wrapped positions
  // buffers kept per thread between calls, as the network's are (see run)
  thread_local std::vector<double> wrapped, frac;  // frac: fractional coordinates for the cell list, in [0, 1)
  thread_local std::vector<int64_t> first, second, src, dst;
  thread_local std::vector<T> offsets, vectors;
  wrapped.resize(3 * n);
  for (int64_t k = 0; k < 3 * n; ++k) wrapped[k] = double(pos[k]);
  std::vector<std::array<double, 3>> shifts{{0.0, 0.0, 0.0}};
  std::vector<bool> forward_shift{false};  // the translation's first non-zero index is positive
  bool binned = false;
  int nb[3] = {1, 1, 1};
  at::Tensor cell64;
  if (!cell_t && n > 64) {  // bins of the bounding box
    binned = true;
    frac.resize(3 * n);
    for (int a = 0; a < 3; ++a) {
      double lo = wrapped[a], hi = wrapped[a];
      for (int64_t i = 0; i < n; ++i) {
        lo = std::min(lo, wrapped[3 * i + a]);
        hi = std::max(hi, wrapped[3 * i + a]);
      }
      const double extent = hi - lo;
      nb[a] = int(std::max(1.0, std::min(1024.0, std::floor(extent / cutoff))));
      for (int64_t i = 0; i < n; ++i) frac[3 * i + a] = extent > 0 ? (wrapped[3 * i + a] - lo) / extent : 0.0;
    }
  }
  if (cell_t) {
    cell64 = cell_t->to(at::kDouble).contiguous();
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
      nb[a] = int(std::min(1024.0, std::floor(1.0 / (cutoff * std::sqrt(g0 * g0 + g1 * g1 + g2 * g2)))));
    }
    binned = nb[0] >= 3 && nb[1] >= 3 && nb[2] >= 3;
    if (binned) {
      frac.resize(3 * n);
      for (int64_t i = 0; i < n; ++i)
        for (int a = 0; a < 3; ++a) {
          const double f = wrapped[3 * i] * inverse[a] + wrapped[3 * i + 1] * inverse[3 + a] + wrapped[3 * i + 2] * inverse[6 + a];
          frac[3 * i + a] = f - std::floor(f);
        }
      // positions from the same fractional coordinates, so that an atom and its bin always agree
      for (int64_t i = 0; i < n; ++i)
        for (int b = 0; b < 3; ++b)
          wrapped[3 * i + b] = frac[3 * i] * c[b] + frac[3 * i + 1] * c[3 + b] + frac[3 * i + 2] * c[6 + b];
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
  first.clear();
  second.clear();
  offsets.clear();
  if (binned) {
    binned_pairs<T>(wrapped, frac, nb, cell_t ? cell64.data_ptr<double>() : nullptr, cutoff_sq, first, second, offsets);
  } else {
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
  }
  const int64_t h = static_cast<int64_t>(first.size());
  src.resize(2 * h);
  dst.resize(2 * h);
  vectors.resize(6 * h);
  int64_t* s = src.data();
  int64_t* d = dst.data();
  T* x = vectors.data();
  for (int64_t k = 0; k < h; ++k) {
    s[k] = d[k + h] = first[k];
    d[k] = s[k + h] = second[k];
    for (int c = 0; c < 3; ++c) {
      x[3 * k + c] = offsets[3 * k + c];
      x[3 * (k + h) + c] = -offsets[3 * k + c];
    }
  }
  end_phase(PAIRS);
  return run<T>(species, at::from_blob(s, {2 * h}, at::kLong), at::from_blob(d, {2 * h}, at::kLong),
                at::from_blob(x, {2 * h, 3}, positions_t.options()), std::move(w), cutoff, norm_epsilon, h > 0, threads);
}

std::tuple<at::Tensor, at::Tensor> painn_all_pairs_forces(const at::Tensor& species, const at::Tensor& positions,
                                                          const c10::optional<at::Tensor>& cell,
                                                          const mlffd::NamedTensors& weights, int64_t layers, double cutoff,
                                                          double norm_epsilon, int64_t threads) {
  start_phases();
  TORCH_CHECK(positions.device().is_cpu(), "mlffd::painn_all_pairs_forces runs on the CPU only");
  TORCH_CHECK(positions.dim() == 2 && positions.size(1) == 3, "mlffd::painn_all_pairs_forces: positions must be (N, 3)");
  TORCH_CHECK(species.numel() == positions.size(0), "mlffd::painn_all_pairs_forces: species and positions differ in length");
  TORCH_CHECK(!cell || (cell->dim() == 2 && cell->size(0) == 3 && cell->size(1) == 3),
              "mlffd::painn_all_pairs_forces: the cell must be (3, 3)");
  TORCH_CHECK(positions.scalar_type() == at::kDouble || positions.scalar_type() == at::kFloat,
              "mlffd::painn_all_pairs_forces: float32 or float64 only");
  const int t = thread_count(threads);
  mlffd::Weights w = checked_weights(weights, layers, positions.scalar_type());
  at::Tensor sp = species.to(at::kLong).contiguous(), x = positions.contiguous();
  end_phase(SETUP);
  if (x.scalar_type() == at::kDouble) return all_pairs<double>(sp, x, cell, std::move(w), cutoff, norm_epsilon, t);
  return all_pairs<float>(sp, x, cell, std::move(w), cutoff, norm_epsilon, t);
}

// Seconds (float64, one per Phase) that the last painn_forces or painn_all_pairs_forces call on
// this thread spent in each phase; zeros before the first.
at::Tensor phase_seconds() {
  at::Tensor out = at::empty({PHASES}, at::kDouble);
  std::copy(phase_times.begin(), phase_times.end(), out.data_ptr<double>());
  return out;
}

}  // namespace

TORCH_LIBRARY(mlffd, m) {
  // threads: 0 (the default, which files exported before the argument existed get) is torch's
  // intra-op thread count
  m.def("painn_forces(Tensor species, Tensor src, Tensor dst, Tensor vectors, Dict(str, Tensor) weights, int layers, "
        "float cutoff, float norm_epsilon, int threads=0) -> (Tensor, Tensor)");
  m.def("painn_all_pairs_forces(Tensor species, Tensor positions, Tensor? cell, Dict(str, Tensor) weights, int layers, "
        "float cutoff, float norm_epsilon, int threads=0) -> (Tensor, Tensor)");
  // setup, pairs, geometry, forward, reverse and forces of the last call on this thread (seconds)
  m.def("phase_seconds() -> Tensor", &phase_seconds);
}

TORCH_LIBRARY_IMPL(mlffd, CPU, m) {
  m.impl("painn_forces", painn_forces);
  m.impl("painn_all_pairs_forces", painn_all_pairs_forces);
}
