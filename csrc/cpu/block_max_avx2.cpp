// AVX2 block kernel: 4 rows x 8 columns of pairs per step. Compiled with -mavx2 -mfma only;
// called only when the CPU supports AVX2 (simd_dispatch.cpp).
#include <immintrin.h>

#include "cpu/simd.h"

namespace jsma::cpu::avx2 {

float block_max(const float* alpha, const float* nb, int64_t p0, int64_t q_begin,
                int64_t q_end) {
  constexpr int kRows = 4;
  constexpr int kWidth = 8;
  const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)));
  __m256 ap[kRows], bp[kRows], acc[kRows];
  for (int r = 0; r < kRows; ++r) {
    ap[r] = _mm256_set1_ps(alpha[p0 + r]);
    bp[r] = _mm256_set1_ps(nb[p0 + r]);
    acc[r] = _mm256_setzero_ps();
  }
  for (int64_t q = q_begin; q < q_end; q += kWidth) {
    const __m256 aq = _mm256_loadu_ps(alpha + q);
    const __m256 bq = _mm256_loadu_ps(nb + q);
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      const __m256 a = _mm256_add_ps(ap[r], aq);
      const __m256 n = _mm256_add_ps(bp[r], bq);
      // Copying A's sign bit onto A*N makes every pair with A <= 0 score <= 0 (or NaN);
      // pairs with N <= 0 already do. max(c, acc) keeps acc when c is NaN.
      const __m256 c = _mm256_or_ps(_mm256_mul_ps(a, n), _mm256_and_ps(a, sign));
      acc[r] = _mm256_max_ps(c, acc[r]);
    }
  }
  __m256 m = _mm256_max_ps(_mm256_max_ps(acc[0], acc[1]), _mm256_max_ps(acc[2], acc[3]));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
  return _mm_cvtss_f32(h);
}

}  // namespace jsma::cpu::avx2
