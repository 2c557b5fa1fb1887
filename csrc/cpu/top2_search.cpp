// The top-2 rule (ART's SaliencyMapMethod) on the CPU: per sample, the two features of the
// search domain with the largest alpha in increase form (decrease: the two smallest alpha),
// without any condition on beta or on the sign. Linear and memory-bound: one pass per sample
// (per_sample.h) keeping the two best (value, index) candidates.
#include <algorithm>
#include <cmath>

#include "cpu/per_sample.h"
#include "cpu/search.h"

namespace jsma::cpu {

void top2_search(const SearchInputs& in, const PairOutputs& out, int num_threads) {
  const float sign = mode_sign(in.mode);
  for_each_sample(in, num_threads, [&](int64_t b) {
    const float* alpha = in.alpha + b * in.m;
    const uint8_t* domain = in.domain ? in.domain + b * in.m : nullptr;
    float first = 0.0f, second = 0.0f;
    int64_t first_index = -1, second_index = -1;
    for (int64_t i = 0; i < in.m; ++i) {
      const float value = sign * alpha[i];  // exact: increase form
      if ((domain != nullptr && domain[i] == 0) || std::isnan(value)) continue;
      // Strict comparisons: of equal values the earlier (smaller) index ranks first.
      if (first_index < 0 || value > first) {
        second = first;
        second_index = first_index;
        first = value;
        first_index = i;
      } else if (second_index < 0 || value > second) {
        second = value;
        second_index = i;
      }
    }
    const bool found = second_index >= 0;
    out.p[b] = found ? std::min(first_index, second_index) : -1;
    out.q[b] = found ? std::max(first_index, second_index) : -1;
    out.score[b] = found ? first + second : 0.0f;
    out.valid[b] = found ? 1 : 0;
  });
}

}  // namespace jsma::cpu
