// AVX-512 block kernel: 8 rows x 16 columns of pairs per step, five vector instructions per
// 16 pairs. Compiled with AVX-512 flags only; called only when the CPU supports AVX-512
// F/DQ/BW/VL (simd_dispatch.cpp).
#include <immintrin.h>

#include "cpu/simd.h"

namespace jsma::cpu::avx512 {

float block_max(const float* alpha, const float* nb, int64_t p0, int64_t q_begin,
                int64_t q_end) {
  constexpr int kRows = 8;
  constexpr int kWidth = 16;
  const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  __m512 ap[kRows], bp[kRows], acc[kRows];
  for (int r = 0; r < kRows; ++r) {
    ap[r] = _mm512_set1_ps(alpha[p0 + r]);
    bp[r] = _mm512_set1_ps(nb[p0 + r]);
    acc[r] = _mm512_setzero_ps();
  }
  for (int64_t q = q_begin; q < q_end; q += kWidth) {
    const __m512 aq = _mm512_loadu_ps(alpha + q);
    const __m512 bq = _mm512_loadu_ps(nb + q);
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const __m512 a = _mm512_add_ps(ap[r], aq);
      const __m512 n = _mm512_add_ps(bp[r], bq);
      // c = (A*N) | (A & sign) in one ternary-logic op: a pair with A <= 0 scores <= 0 (or
      // NaN), as does one with N <= 0; max(c, acc) keeps acc when c is NaN.
      const __m512i c = _mm512_ternarylogic_epi32(_mm512_castps_si512(_mm512_mul_ps(a, n)),
                                                  _mm512_castps_si512(a), sign, 0xF8);
      acc[r] = _mm512_max_ps(_mm512_castsi512_ps(c), acc[r]);
    }
  }
  __m512 m = acc[0];
  for (int r = 1; r < kRows; ++r) m = _mm512_max_ps(acc[r], m);
  return _mm512_reduce_max_ps(m);
}

}  // namespace jsma::cpu::avx512
