// The loop of the linear searches (feature_search.cpp, top2_search.cpp): one plain pass per
// sample, samples spread over threads.
#pragma once

#include <cstdint>

#include "cpu/parallel.h"
#include "cpu/simd.h"
#include "search_api.h"

namespace jsma::cpu {

// Calls fn(b) for every sample b with the IEEE mode pinned (denormals-are-zero would make
// distinct subnormals compare equal). At a few ns per feature, only millions of features
// repay waking threads, so smaller batches run on the calling thread.
template <typename Fn>
void for_each_sample(const SearchInputs& in, int num_threads, const Fn& fn) {
  const int threads = clamp_threads(num_threads);
  const bool parallel = threads > 1 && in.batch > 1 && in.batch * in.m > (int64_t{1} << 21);
  JSMA_PRAGMA(omp parallel num_threads(threads) if (parallel))
  {
    IeeeModeGuard ieee;
    JSMA_PRAGMA(omp for schedule(static))
    for (int64_t b = 0; b < in.batch; ++b) fn(b);
  }
}

}  // namespace jsma::cpu
