// The paper's single-feature saliency map S(x, t) and its arg-max on the CPU. Memory-bound
// and linear in m: a plain loop per sample (per_sample.h).
#include "cpu/per_sample.h"
#include "cpu/search.h"

namespace jsma::cpu {
namespace {

float sample_feature_score(const SearchInputs& in, int64_t b, int64_t i, float sign) {
  const int64_t k = b * in.m + i;
  if (in.domain != nullptr && in.domain[k] == 0) return 0.0f;
  return feature_score(sign * in.alpha[k], -(sign * in.beta[k]));
}

}  // namespace

void feature_search(const SearchInputs& in, const FeatureOutputs& out, int num_threads) {
  const float sign = mode_sign(in.mode);
  for_each_sample(in, num_threads, [&](int64_t b) {
    float best = 0.0f;
    int64_t best_index = -1;
    for (int64_t i = 0; i < in.m; ++i) {
      const float s = sample_feature_score(in, b, i, sign);
      if (s > best) {  // strict: ties keep the smaller index
        best = s;
        best_index = i;
      }
    }
    out.index[b] = best_index;
    out.score[b] = best;
    out.valid[b] = best > 0.0f ? 1 : 0;
  });
}

void saliency_map(const SearchInputs& in, float* map, int num_threads) {
  const float sign = mode_sign(in.mode);
  for_each_sample(in, num_threads, [&](int64_t b) {
    for (int64_t i = 0; i < in.m; ++i) map[b * in.m + i] = sample_feature_score(in, b, i, sign);
  });
}

}  // namespace jsma::cpu
