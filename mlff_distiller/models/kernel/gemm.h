// Small matrix products C (m x n, row stride ldc) = init + A (m x k, row stride lda) B (k x n,
// row-major), for the fused PaiNN of painn.h.
//
// Products with few rows (a molecule's atoms) run on the register-tiled loops below: a BLAS call
// repacks its B matrix every time, which costs as much as the product when there are only a few
// dozen rows. Larger products go to BLAS (at::mm), except double ones in the LAMMPS plugin (see
// blas_allowed), and those of a block running beside others (threads.h) unless that BLAS is MKL,
// which can be held to the block's thread.

#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "threads.h"

namespace mlffd {

// Products with at least this many rows go to BLAS, which then amortises its repacking of B.
constexpr int64_t BLAS_MIN_ROWS = 256;

// Bytes of the vector registers the loops below compute in: AVX-512's where the compiler may use
// them (twice the multiply-adds per instruction of AVX2's), else 256-bit ones.
#ifdef __AVX512F__
constexpr int VECTOR_BYTES = 64;
#else
constexpr int VECTOR_BYTES = 32;
#endif

// Whether products in T may go to BLAS: not double ones in the LAMMPS plugin (built with
// MLFFD_NO_DOUBLE_BLAS). liblammps exports its own reference BLAS (dgemm_, no sgemm_), to which
// the dynamic linker binds torch's double-precision products inside lmp: 2-3x slower than the
// loops below on a 192-atom water box.
template <typename T>
constexpr bool blas_allowed() {
#ifdef MLFFD_NO_DOUBLE_BLAS
  return !std::is_same<T, double>::value;
#else
  return true;
#endif
}

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
  if (blas_allowed<T>() && m >= BLAS_MIN_ROWS && (MKL_Set_Num_Threads_Local || !detail::in_shared_work())) {
    const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
    at::Tensor a_t = at::from_blob(const_cast<T*>(a), {m, k}, {lda, 1}, options);
    at::Tensor b_t = at::from_blob(const_cast<T*>(b), {k, n}, options);
    at::Tensor c_t = at::from_blob(c, {m, n}, {ldc, 1}, options);
    if (bias) c_t.copy_(at::from_blob(const_cast<T*>(bias), {n}, options).expand({m, n}));
    if (bias || accumulate) c_t.addmm_(a_t, b_t);
    else at::mm_out(c_t, a_t, b_t);
    return;
  }
  typedef T V __attribute__((vector_size(VECTOR_BYTES)));
  constexpr int W = VECTOR_BYTES / sizeof(T);
  const int64_t ldi = bias ? 0 : ldc;
  const T* init = bias ? bias : accumulate ? c : nullptr;
  auto from = [&](int64_t j) { return init ? init + j : nullptr; };
  // column panels two registers wide; the last, narrower one on a zero-padded copy
  int64_t j = 0;
  for (; j + 2 * W <= n; j += 2 * W) column_panel<T, V, 2>(m, n, k, a, lda, b + j, c + j, ldc, from(j), ldi);
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
  if (width == W) column_panel<T, V, 1>(m, width, k, a, lda, b_pad.data(), c_pad.data(), width, pad_init, width);
  else column_panel<T, V, 2>(m, width, k, a, lda, b_pad.data(), c_pad.data(), width, pad_init, width);
  for (int64_t i = 0; i < m; ++i) std::copy(c_pad.data() + i * width, c_pad.data() + i * width + rest, c + i * ldc + j);
}

}  // namespace mlffd
