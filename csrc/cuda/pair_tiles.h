// How the GPU cuts the pair search into work, as host-and-device functions.
//
// The kernels in search_kernels.cu only add what is CUDA-specific (shared memory, shuffles,
// barriers, launches); the per-lane loops and all index math live here, so that
// host_emulation.cpp can run the very same code on the CPU, where the tests check it against
// the naive reference without a GPU.
//
// Decomposition of one sample (m features, pairs p < q):
//   strip s        rows [s * kStripRows, (s + 1) * kStripRows), one thread block;
//   segment g      columns [p0 + g * kSegmentCols, p0 + (g + 1) * kSegmentCols) of strip s
//                  (p0 = the strip's first row), one warp; lane l holds the columns
//                  l, l + 32, ..., l + 32 * (kColsPerLane - 1) of it in registers.
// Columns start at p0, so segment 0 holds the diagonal (q <= p, masked) and every other
// segment lies right of every row of the strip. Pass 1 stores the maximum of every segment
// and strip; pass 2 takes the best score G and the first strip reaching it (all pairs of a
// strip come before those of the next one in row-major order) and rescans only the segments
// of that strip whose maximum is G for the first pair scoring G. This is the CPU search's
// "block maxima, then first-occurrence rescan" with strips for blocks.
#pragma once

#include <cmath>
#include <cstdint>

#include "contract.h"

#if defined(__CUDACC__)
#define JSMA_PRAGMA_STRING(x) _Pragma(#x)
#define JSMA_UNROLL(n) JSMA_PRAGMA_STRING(unroll n)
#else
#define JSMA_UNROLL(n)
#endif

namespace jsma::cuda {

constexpr int kWarp = 32;
constexpr int kStripRows = 64;                          // rows of pairs per thread block
constexpr int kColsPerLane = 8;                         // columns a lane keeps in registers
constexpr int kSegmentCols = kWarp * kColsPerLane;      // 256 columns per warp at a time
constexpr int kMaxWarps = 8;                            // warps per block in pass 1
constexpr int kLocateThreads = kSegmentCols;            // pass 2: one thread per segment column
// In segment 0, column offset lane + 32 * k can be at or left of a row r < kStripRows only
// for k < kDiagonalColsPerLane; those are the only columns that need the q > p mask.
constexpr int kDiagonalColsPerLane = kStripRows / kWarp;
static_assert(kStripRows % kWarp == 0 && kStripRows <= kSegmentCols,
              "the diagonal must lie inside segment 0");

// A feature in increase form: alpha and nb = -beta (contract.h).
struct alignas(8) Feature {
  float a;
  float nb;
};

// Best (score, index) so far, ordered by contract.h's better().
struct Best {
  float score;
  int64_t index;
};

JSMA_HD int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

JSMA_HD bool is_nan(float x) { return x != x; }

// A feature that takes part in no pair: every comparison with NaN is false.
JSMA_HD Feature excluded_feature() { return {NAN, NAN}; }

// Feature k as every search sees it: increase form, or excluded when it is outside the domain
// or NaN. The same expressions as compact_sample() on the CPU, so the same float32 values.
JSMA_HD Feature load_feature(const float* alpha, const float* beta, const uint8_t* domain,
                             int64_t k, float sign) {
  const float a = alpha[k];
  const float b = beta[k];
  if ((domain != nullptr && domain[k] == 0) || is_nan(a) || is_nan(b)) return excluded_feature();
  return {sign * a, -(sign * b)};
}

// Feature k, or excluded past the end: tails need no bounds checks in the pair loops.
JSMA_HD Feature load_feature_or_excluded(const float* alpha, const float* beta,
                                         const uint8_t* domain, int64_t k, int64_t m,
                                         float sign) {
  return k < m ? load_feature(alpha, beta, domain, k, sign) : excluded_feature();
}

// The pass-1 value of a pair, for maxima only: max(A, 0) * nb. It equals pair_score() whenever
// either is > 0: v > 0 needs max(A, 0) > 0, so A > 0 (a NaN A gives 0), then nb > 0, and then
// v = A * nb; conversely pair_score() > 0 means A > 0 and nb > 0, so v = A * nb. Otherwise v is
// 0, -0 or NaN (0 * inf, NaN nb), and fmaxf, which drops NaN, never lets those beat a positive
// maximum. One compare-and-select fewer per pair than pair_score(); pass 2 finds the winning
// pair with pair_score() itself.
JSMA_HD float pair_value_for_max(float alpha_p, float alpha_q, float nb_p, float nb_q) {
  const float a = alpha_p + alpha_q;
  const float nb = nb_p + nb_q;
  return fmaxf(a, 0.0f) * nb;
}

// Strips of one sample, and the most segments any strip has (strip 0: columns [0, m)).
JSMA_HD int64_t strip_count(int64_t m) { return ceil_div(m, kStripRows); }
JSMA_HD int64_t max_segment_count(int64_t m) { return ceil_div(m, kSegmentCols); }

// Segments of strip s: its columns run from its first row p0 to m.
JSMA_HD int64_t segment_count(int64_t m, int64_t s) {
  return ceil_div(m - s * kStripRows, kSegmentCols);
}

// Pass 1, one lane: the maximum pair value between the strip's rows (NaN past m) and the
// lane's columns q = segment start + lane + kWarp * k (NaN past m). In the diagonal segment
// only pairs with q > p count, i.e. column offset lane + kWarp * k > row offset r.
template <bool kDiagonal>
JSMA_HD float lane_max(const Feature* rows, const Feature (&cols)[kColsPerLane], int lane) {
  float best[kColsPerLane];  // one per column: independent chains keep the pipeline full
  JSMA_UNROLL()
  for (int k = 0; k < kColsPerLane; ++k) best[k] = 0.0f;
  JSMA_UNROLL(4)
  for (int r = 0; r < kStripRows; ++r) {
    const Feature row = rows[r];
    JSMA_UNROLL()
    for (int k = 0; k < kColsPerLane; ++k) {
      float v = pair_value_for_max(row.a, cols[k].a, row.nb, cols[k].nb);
      if (kDiagonal && k < kDiagonalColsPerLane && lane + kWarp * k <= r) v = 0.0f;
      best[k] = fmaxf(best[k], v);
    }
  }
  float out = best[0];
  JSMA_UNROLL()
  for (int k = 1; k < kColsPerLane; ++k) out = fmaxf(out, best[k]);
  return out;
}

// Pass 2, thread j of the locate block: the smallest linear index p * m + q scoring exactly
// `best` (> 0) among the pairs of strip `s` whose column is q = p0 + g * kSegmentCols + j for
// a segment g with maximum `best`; INT64_MAX when there is none. Rows are scanned upwards, so
// the first hit in a column is its smallest p; a later segment (larger q) can only win with a
// smaller row, so each hit narrows the rows still worth scanning.
JSMA_HD int64_t locate_in_columns(const Feature* rows, const float* segment_max, int64_t s,
                                  int64_t m, float best, const float* alpha, const float* beta,
                                  const uint8_t* domain, float sign, int j) {
  const int64_t p0 = s * kStripRows;
  const int64_t segments = segment_count(m, s);
  int64_t row_end = m - p0 < kStripRows ? m - p0 : kStripRows;
  int64_t found = INT64_MAX;
  for (int64_t g = 0; g < segments && row_end > 0; ++g) {
    if (!(segment_max[g] == best)) continue;
    const int64_t q = p0 + g * kSegmentCols + j;
    if (q >= m) continue;
    const Feature col = load_feature(alpha, beta, domain, q, sign);
    for (int64_t r = 0; r < row_end && p0 + r < q; ++r) {
      if (pair_score(rows[r].a, col.a, rows[r].nb, col.nb) == best) {
        found = (p0 + r) * m + q;
        row_end = r;
        break;
      }
    }
  }
  return found;
}

// Deterministic merge of two candidates: the order does not matter, better() is a total order.
JSMA_HD Best pick_better(Best x, Best y) {
  return better(y.score, y.index, x.score, x.index) ? y : x;
}

// Pair-search scratch of one sample, in floats: strip maxima, then segment maxima
// (strip_count x max_segment_count, row-major; strip s uses its first segment_count entries).
JSMA_HD int64_t pair_scratch_floats(int64_t m) {
  return strip_count(m) * (1 + max_segment_count(m));
}

}  // namespace jsma::cuda
