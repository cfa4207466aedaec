// One evaluation of a student's network: embed -> layers -> readout -> reverse -> edge gradients,
// the single loop both callers run. The torch operators (painn_forces.cpp) give it every atom and
// exchange nothing between layers (NoExchange); the LAMMPS pair style (plugin/lammps/pair_mlffd.cpp)
// gives it its local and ghost atoms and, between layers, copies the owners' new feature rows
// onto their ghosts (forward) and sums the gradient rows of ghosts onto their owners (reverse).
// Each caller turns the energies and edge gradients into forces (and, in LAMMPS, the virial).
// The work is split over set_threads threads (threads.h); LAMMPS keeps the default, one.

#pragma once

#include <ATen/ATen.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <vector>

#include "painn.h"
#include "weights.h"

namespace mlffd {

// The between-layers hook of a Driver::run, for callers that hold every atom themselves.
struct NoExchange {
  // feature rows (n x width) that layer l wrote for the local atoms, before layer l + 1 reads them
  template <typename T>
  void features(T*) {}
  // gradient rows (n x width) that reverse(l) wrote, before reverse(l - 1) reads them
  template <typename T>
  void gradients(T*) {}
};

// The network and every buffer of an evaluation, kept from call to call (an MD step calls again
// with the same sizes, and allocates nothing new).
template <typename T>
class Driver {
 public:
  Driver() = default;
  Driver(Weights weights, double cutoff, double norm_epsilon) { set_weights(std::move(weights), cutoff, norm_epsilon); }

  // The network to evaluate (see PaiNN::set_weights).
  void set_weights(Weights weights, double cutoff, double norm_epsilon) {
    network_.set_weights(std::move(weights), cutoff, norm_epsilon);
    features_.resize(network_.layers() + 1);
  }

  // Threads each evaluation splits its work over, from 1 (the default) to MAX_THREADS (threads.h).
  void set_threads(int threads) { network_.set_threads(threads); }

  const PaiNN<T>& network() const { return network_; }

  // Evaluates the energies of the nlocal first of n atoms (species indices, checked) from the
  // edges: count of them, receiving atom src (local), neighbour dst (any of the n), vectors
  // x[dst] - x[src] (Å, count x 3), the first 2 x pairs of them in pairs (see PaiNN::set_edges).
  // exchange.features / exchange.gradients are called between layers (see NoExchange), the same
  // number of times whatever n is: n = 0 (an MPI rank that owns no atoms and sees no ghosts) and
  // count = 0 are valid, and such a rank still takes part in every exchange, which is collective
  // in LAMMPS. The arrays must stay unchanged until the call returns.
  template <typename Exchange>
  void run(int64_t n, int64_t nlocal, const int64_t* species, int64_t count, const int64_t* src, const int64_t* dst,
           const T* vectors, int64_t pairs, Exchange& exchange) {
    const auto start = std::chrono::steady_clock::now();
    TORCH_CHECK(nlocal >= 0 && nlocal <= n, "mlffd: more local atoms than atoms");
    for (int64_t i = 0; i < n; ++i)
      TORCH_CHECK(species[i] >= 0 && species[i] < network_.species_count(), "mlffd: species index ", species[i],
                  " out of range");
    for (int64_t k = 0; k < count; ++k)
      TORCH_CHECK(src[k] >= 0 && src[k] < nlocal && dst[k] >= 0 && dst[k] < n, "mlffd: edge ", k,
                  " names an atom out of range");
    const int64_t layers = network_.layers(), width = network_.width();
    network_.set_edges(count, src, dst, vectors, pairs);
    for (auto& rows : features_) rows.resize(n * width);
    network_.embed(n, species, features_[0].data());
    const auto geometry = std::chrono::steady_clock::now();
    for (int64_t l = 0; l < layers; ++l) {
      network_.forward(l, n, nlocal, features_[l].data(), features_[l + 1].data());
      if (l + 1 < layers) exchange.features(features_[l + 1].data());
    }
    energies_.resize(nlocal);
    g_out_.resize(n * width);
    g_in_.resize(n * width);
    network_.readout(nlocal, species, features_[layers].data(), energies_.data(), g_out_.data());
    const auto forward = std::chrono::steady_clock::now();
    for (int64_t l = layers - 1; l >= 0; --l) {
      network_.reverse(l, g_out_.data(), l > 0 ? g_in_.data() : nullptr);
      if (l > 0) {
        exchange.gradients(g_in_.data());
        g_out_.swap(g_in_);
      }
    }
    g_vectors_.resize(3 * count);
    network_.edge_gradients(g_vectors_.data());
    const auto reverse = std::chrono::steady_clock::now();
    seconds_ = {seconds(geometry - start), seconds(forward - geometry), seconds(reverse - forward)};
  }

  // After run: the energy of each local atom (eV), and d E / d vector of each edge (eV/Å, count x
  // 3), E the sum of the energies.
  const std::vector<T>& energies() const { return energies_; }
  const std::vector<T>& edge_gradients() const { return g_vectors_; }
  // After run: seconds it spent checking its input and on the edges' geometry, radial features and
  // embedding; forward (the layers, exchanges included, and the readout); and reverse (the layers
  // back and the edge gradients).
  const std::array<double, 3>& phase_seconds() const { return seconds_; }

 private:
  static double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

  PaiNN<T> network_;
  std::vector<std::vector<T>> features_;  // rows of all atoms before each layer, and after the last
  std::vector<T> g_out_, g_in_, energies_, g_vectors_;
  std::array<double, 3> seconds_{};
};

}  // namespace mlffd
