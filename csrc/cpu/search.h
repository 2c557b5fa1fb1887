// CPU searches of the kernel contract (contract.h) over a batch of samples.
//
// Inputs are row-major (batch, m) float32 arrays; `domain` is (batch, m) bytes, nonzero for
// features in the search domain, or null for "all features". Nothing of size m*m is
// allocated; all indices are 64-bit.
#pragma once

#include <cstdint>

#include "contract.h"
#include "cpu/simd.h"

namespace jsma::cpu {

struct SearchInputs {
  const float* alpha;
  const float* beta;
  const uint8_t* domain;  // may be null
  int64_t batch;
  int64_t m;
  Mode mode;
};

struct PairOutputs {
  int64_t* p;      // (batch,), -1 when invalid
  int64_t* q;      // (batch,), -1 when invalid; p < q otherwise
  float* score;    // (batch,), 0 when invalid
  uint8_t* valid;  // (batch,)
};

struct FeatureOutputs {
  int64_t* index;  // (batch,), -1 when invalid
  float* score;    // (batch,), 0 when invalid
  uint8_t* valid;  // (batch,)
};

// Exhaustive search over all pairs p < q of every sample; ties go to the smallest (p, q).
void pair_search_exact(const SearchInputs& in, const PairOutputs& out, int num_threads,
                       SimdLevel simd);

// Same maximal score as pair_search_exact, searching only the pairs among the features
// dominated by fewer than two others (docs/pruned-search.md); the pair differs from the
// exhaustive one only when several pairs have exactly the maximal score. `candidates`
// (may be null) receives per sample how many features the pair search ran over.
void pair_search_pruned(const SearchInputs& in, const PairOutputs& out, int64_t* candidates,
                        int num_threads, SimdLevel simd);

// The top-2 rule: the two in-domain, non-NaN features with the largest alpha in increase form
// (decrease: the smallest), ties to the smaller index, no condition on beta (which may be
// null) or on signs. p < q; score = the increase-form sum of the two alphas; valid when the
// domain holds at least two usable features.
void top2_search(const SearchInputs& in, const PairOutputs& out, int num_threads);

// Arg-max of the single-feature map; ties go to the smallest index.
void feature_search(const SearchInputs& in, const FeatureOutputs& out, int num_threads);

// The single-feature map itself, (batch, m): the score of each qualifying feature, else 0.
void saliency_map(const SearchInputs& in, float* map, int num_threads);

}  // namespace jsma::cpu
