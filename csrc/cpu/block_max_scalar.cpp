// Portable block kernel: the reference shape of the vector kernels, one pair at a time.
#include "contract.h"
#include "cpu/simd.h"

namespace jsma::cpu::scalar {

float block_max(const float* alpha, const float* nb, int64_t p0, int64_t q_begin,
                int64_t q_end) {
  constexpr int kRows = 4;
  float best = 0.0f;
  for (int r = 0; r < kRows; ++r) {
    const float ap = alpha[p0 + r];
    const float bp = nb[p0 + r];
    for (int64_t q = q_begin; q < q_end; ++q) {
      const float s = pair_score(ap, alpha[q], bp, nb[q]);
      best = s > best ? s : best;
    }
  }
  return best;
}

}  // namespace jsma::cpu::scalar
