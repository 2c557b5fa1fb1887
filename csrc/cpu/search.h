// CPU searches of the kernel contract (contract.h) over a batch of samples, on the shared
// inputs and outputs (search_api.h). Nothing of size m*m is allocated; all indices are
// 64-bit. `num_threads` and `simd` choose how the work runs, never what it returns.
#pragma once

#include <cstdint>

#include "cpu/simd.h"
#include "search_api.h"

namespace jsma::cpu {

// Exhaustive search over all pairs p < q of every sample; ties go to the smallest (p, q).
void pair_search(const SearchInputs& in, const PairOutputs& out, int num_threads,
                 SimdLevel simd);

// Same maximal score as pair_search, searching only the pairs among the features dominated
// by fewer than two others (docs/pruned-search.md); the pair differs from the exhaustive one
// only when several pairs have exactly the maximal score. `candidates` (may be null)
// receives per sample how many features the pair search ran over.
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
