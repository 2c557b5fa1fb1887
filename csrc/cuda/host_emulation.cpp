// The GPU pair search run on the host: the same decomposition, per-lane and per-thread code
// (pair_tiles.h) as search_kernels.cu, with the warp and block reductions written as loops.
// What it cannot check is what only a GPU has (shared memory, shuffles, barriers, launches);
// everything else the kernels compute is computed here by the same functions, so the CPU
// tests can hold it to the naive reference. Plain C++, built with or without CUDA.
#include <algorithm>
#include <vector>

#include "cpu/simd.h"
#include "cuda/host_emulation.h"
#include "cuda/pair_tiles.h"

namespace jsma::cuda {

void emulate_pair_search(const SearchInputs& in, const PairOutputs& out) {
  cpu::IeeeModeGuard ieee;  // the GPU does not flush subnormals either
  const float sign = mode_sign(in.mode);
  const int64_t m = in.m;
  const int64_t strips = strip_count(m);
  const int64_t max_segments = max_segment_count(m);
  std::vector<float> strip_max(static_cast<size_t>(strips));
  std::vector<float> segment_max(static_cast<size_t>(strips * max_segments));
  Feature rows[kStripRows];

  for (int64_t b = 0; b < in.batch; ++b) {
    const float* a = in.alpha + b * m;
    const float* be = in.beta + b * m;
    const uint8_t* d = in.domain != nullptr ? in.domain + b * m : nullptr;

    // Pass 1 (pair_strip_max_kernel): every warp of every strip block.
    for (int64_t s = 0; s < strips; ++s) {
      const int64_t p0 = s * kStripRows;
      for (int r = 0; r < kStripRows; ++r) {
        rows[r] = load_feature_or_excluded(a, be, d, p0 + r, m, sign);
      }
      float best = 0.0f;
      for (int64_t g = 0; g < segment_count(m, s); ++g) {
        float v = 0.0f;
        for (int lane = 0; lane < kWarp; ++lane) {
          Feature cols[kColsPerLane];
          for (int k = 0; k < kColsPerLane; ++k) {
            cols[k] = load_feature_or_excluded(a, be, d, p0 + g * kSegmentCols + lane + kWarp * k,
                                               m, sign);
          }
          v = fmaxf(v, g == 0 ? lane_max<true>(rows, cols, lane)
                              : lane_max<false>(rows, cols, lane));
        }
        segment_max[s * max_segments + g] = v;
        best = fmaxf(best, v);
      }
      strip_max[s] = best;
    }

    // Pass 2 (pair_locate_kernel): the first strip with the best score, then its columns.
    Best top{0.0f, INT64_MAX};
    for (int64_t s = 0; s < strips; ++s) top = pick_better(top, Best{strip_max[s], s});
    Best winner{0.0f, INT64_MAX};
    if (top.score > 0.0f) {
      for (int r = 0; r < kStripRows; ++r) {
        rows[r] = load_feature_or_excluded(a, be, d, top.index * kStripRows + r, m, sign);
      }
      for (int j = 0; j < kLocateThreads; ++j) {
        const int64_t found =
            locate_in_columns(rows, segment_max.data() + top.index * max_segments, top.index,
                              m, top.score, a, be, d, sign, j);
        winner = pick_better(winner, Best{top.score, found});
      }
    }
    const bool valid = top.score > 0.0f && winner.index != INT64_MAX;
    out.p[b] = valid ? winner.index / m : -1;
    out.q[b] = valid ? winner.index % m : -1;
    out.score[b] = valid ? top.score : 0.0f;
    out.valid[b] = valid ? 1 : 0;
  }
}

}  // namespace jsma::cuda
