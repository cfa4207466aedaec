// How the fused PaiNN (painn.h, painn_reverse.h) splits its work over threads: a range of atoms,
// edges or edge rows is cut into at most `threads` contiguous blocks, block b always the same part
// of the range, and the blocks run in parallel under OpenMP where the including file is compiled
// with it (the torch operators: -fopenmp, see models/kernel/__init__.py), one after the other
// otherwise (the LAMMPS pair style runs one thread per MPI rank, and its driver one block).
//
// A block that scatters (edges into atoms) accumulates into its own buffer, and the buffers are
// summed in block order: results depend on the number of blocks (the order of a few sums), never
// on which thread ran which block or when.

#pragma once

#include <algorithm>
#include <cstdint>

namespace mlffd {

// The largest thread count the kernel accepts (more only oversubscribes the cores).
constexpr int MAX_THREADS = 1024;

// Part b of [0, count) cut into `blocks` contiguous parts whose sizes differ by at most one.
struct Span {
  int64_t begin, end;
};
inline Span block_span(int64_t count, int blocks, int b) {
  const int64_t base = count / blocks, extra = count % blocks;
  const int64_t begin = b * base + std::min<int64_t>(b, extra);
  return {begin, begin + base + (b < extra ? 1 : 0)};
}

// How many blocks `threads` threads make of count items, each block at least grain items (at least
// one block): small ranges stay on one thread, where starting others costs more than they save.
inline int block_count(int threads, int64_t count, int64_t grain) {
  return int(std::max<int64_t>(1, std::min<int64_t>(threads, count / grain)));
}

// Calls body(b) for every block b < blocks, in parallel when compiled with OpenMP. body must not
// throw (checks belong before the call).
template <typename Body>
void parallel_blocks(int blocks, const Body& body) {
  if (blocks <= 1) {
    body(0);
    return;
  }
#pragma omp parallel for num_threads(blocks) schedule(static, 1)
  for (int b = 0; b < blocks; ++b) body(b);
}

// Calls body(begin, end) on each block of [0, count) (see block_count), in parallel.
template <typename Body>
void parallel_ranges(int threads, int64_t count, int64_t grain, const Body& body) {
  const int blocks = block_count(threads, count, grain);
  parallel_blocks(blocks, [&](int b) {
    const Span span = block_span(count, blocks, b);
    body(span.begin, span.end);
  });
}

}  // namespace mlffd
