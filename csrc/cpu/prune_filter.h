// The linear passes of the pruned pair search (pruned_search.cpp), per instruction set.
//
// Every pass reads one sample's raw inputs in increase form (a = sign * alpha, n = -(sign *
// beta)) and skips features that cannot take part in a pair (outside the domain or NaN).
// The passes only compare and multiply by positive constants, so every instruction set
// returns bit-identical results: the candidate set does not depend on the SIMD level.
#pragma once

#include <cstdint>

#include "cpu/simd.h"

namespace jsma::cpu {

struct SampleView {
  const float* alpha;
  const float* beta;
  const uint8_t* domain;  // may be null: all features
  int64_t m;
  float sign;  // +1 increase, -1 decrease
};

constexpr int kPruneDirections = 5;

// Feature i is discarded when, for some direction d, a_i * scale_a[d] < threshold[d] and
// n_i * scale_n[d] < threshold[d], where threshold[d] is the second largest value of
// min(a_k * scale_a[d], n_k * scale_n[d]) over the usable features k. Scales are finite and
// positive, so x -> fl(x * scale) is non-decreasing and the two features reaching the
// threshold have strictly larger a and n than every discarded feature.
struct PruneBoxes {
  float scale_a[kPruneDirections];
  float scale_n[kPruneDirections];
  float threshold[kPruneDirections];
};

struct UsableStats {
  int64_t count;  // usable features
  float max_a;    // over usable features; -inf when there are none
  float max_n;
};

struct PruneKernels {
  UsableStats (*stats)(const SampleView& s);
  void (*thresholds)(const SampleView& s, PruneBoxes* boxes);
  // Writes the indices of the usable, not discarded features in ascending order.
  int64_t (*collect)(const SampleView& s, const PruneBoxes& boxes, int64_t* out);
};

PruneKernels prune_kernels(SimdLevel level);

namespace avx512 {
UsableStats prune_stats(const SampleView& s);
void prune_thresholds(const SampleView& s, PruneBoxes* boxes);
int64_t prune_collect(const SampleView& s, const PruneBoxes& boxes, int64_t* out);
}  // namespace avx512

}  // namespace jsma::cpu
