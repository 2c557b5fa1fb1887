// AVX-512 passes of the pruned pair search (prune_filter.h): 16 features per step, masked
// loads for the tail, mask registers for the domain and NaN tests. Compiled with AVX-512
// flags only; called only when the CPU supports AVX-512 F/DQ/BW/VL.
#include <immintrin.h>

#include <cmath>

#include "cpu/prune_filter.h"

namespace jsma::cpu::avx512 {
namespace {

constexpr int kWidth = 16;

struct Lanes {
  __m512 a;
  __m512 n;
  __mmask16 usable;
};

__mmask16 live_mask(int64_t left) {
  return left >= kWidth ? static_cast<__mmask16>(0xFFFF)
                        : static_cast<__mmask16>((1u << left) - 1u);
}

Lanes load(const SampleView& s, int64_t i) {
  const __mmask16 live = live_mask(s.m - i);
  const __m512 alpha = _mm512_maskz_loadu_ps(live, s.alpha + i);
  const __m512 beta = _mm512_maskz_loadu_ps(live, s.beta + i);
  __mmask16 usable = _mm512_mask_cmp_ps_mask(live, alpha, beta, _CMP_ORD_Q);  // no NaN
  if (s.domain != nullptr) {
    const __m128i d = _mm_maskz_loadu_epi8(live, s.domain + i);
    usable &= _mm_test_epi8_mask(d, d);
  }
  // Multiplying by +-1 is exact: n = beta * (-sign) equals -(sign * beta) bit for bit.
  return {_mm512_mul_ps(alpha, _mm512_set1_ps(s.sign)),
          _mm512_mul_ps(beta, _mm512_set1_ps(-s.sign)), usable};
}

// Second largest value (with multiplicity) of the multiset kept by the lanes, where each
// lane holds its largest value in top1 and its second largest in top2 (<= top1): one copy
// of the overall maximum is removed, from one lane that holds it; the answer is the largest
// of what remains. Branch-free: a scalar scan of the 32 values mispredicts heavily.
float second_largest_of_lanes(__m512 top1, __m512 top2) {
  const float max1 = _mm512_reduce_max_ps(top1);
  const __mmask16 at_max = _mm512_cmp_ps_mask(top1, _mm512_set1_ps(max1), _CMP_EQ_OQ);
  const float other_top1 =
      __builtin_popcount(at_max) >= 2
          ? max1
          : _mm512_reduce_max_ps(_mm512_mask_blend_ps(at_max, top1, _mm512_set1_ps(-INFINITY)));
  const float any_top2 = _mm512_reduce_max_ps(top2);
  return other_top1 > any_top2 ? other_top1 : any_top2;
}

}  // namespace

UsableStats prune_stats(const SampleView& s) {
  __m512 max_a = _mm512_set1_ps(-INFINITY);
  __m512 max_n = _mm512_set1_ps(-INFINITY);
  int64_t count = 0;
  for (int64_t i = 0; i < s.m; i += kWidth) {
    const Lanes l = load(s, i);
    max_a = _mm512_mask_max_ps(max_a, l.usable, max_a, l.a);
    max_n = _mm512_mask_max_ps(max_n, l.usable, max_n, l.n);
    count += __builtin_popcount(l.usable);
  }
  return {count, _mm512_reduce_max_ps(max_a), _mm512_reduce_max_ps(max_n)};
}

void prune_thresholds(const SampleView& s, PruneBoxes* boxes) {
  __m512 sa[kPruneDirections], sn[kPruneDirections], top1[kPruneDirections],
      top2[kPruneDirections];
  for (int d = 0; d < kPruneDirections; ++d) {
    sa[d] = _mm512_set1_ps(boxes->scale_a[d]);
    sn[d] = _mm512_set1_ps(boxes->scale_n[d]);
    top1[d] = top2[d] = _mm512_set1_ps(-INFINITY);
  }
  for (int64_t i = 0; i < s.m; i += kWidth) {
    const Lanes l = load(s, i);
    for (int d = 0; d < kPruneDirections; ++d) {
      const __m512 v = _mm512_min_ps(_mm512_mul_ps(l.a, sa[d]), _mm512_mul_ps(l.n, sn[d]));
      // Per lane: top2 = max(top2, min(top1, v)), then top1 = max(top1, v).
      top2[d] = _mm512_mask_max_ps(top2[d], l.usable, top2[d], _mm512_min_ps(top1[d], v));
      top1[d] = _mm512_mask_max_ps(top1[d], l.usable, top1[d], v);
    }
  }
  for (int d = 0; d < kPruneDirections; ++d) {
    boxes->threshold[d] = second_largest_of_lanes(top1[d], top2[d]);
  }
}

int64_t prune_collect(const SampleView& s, const PruneBoxes& boxes, int64_t* out) {
  __m512 sa[kPruneDirections], sn[kPruneDirections], t[kPruneDirections];
  for (int d = 0; d < kPruneDirections; ++d) {
    sa[d] = _mm512_set1_ps(boxes.scale_a[d]);
    sn[d] = _mm512_set1_ps(boxes.scale_n[d]);
    t[d] = _mm512_set1_ps(boxes.threshold[d]);
  }
  int64_t count = 0;
  for (int64_t i = 0; i < s.m; i += kWidth) {
    const Lanes l = load(s, i);
    __mmask16 drop = 0;
    for (int d = 0; d < kPruneDirections; ++d) {
      const __mmask16 low_a = _mm512_cmp_ps_mask(_mm512_mul_ps(l.a, sa[d]), t[d], _CMP_LT_OQ);
      drop |= _mm512_mask_cmp_ps_mask(low_a, _mm512_mul_ps(l.n, sn[d]), t[d], _CMP_LT_OQ);
    }
    for (unsigned keep = l.usable & ~drop & 0xFFFFu; keep != 0; keep &= keep - 1) {
      out[count++] = i + __builtin_ctz(keep);
    }
  }
  return count;
}

}  // namespace jsma::cpu::avx512
