// The block search that both CPU pair searches run: pair_search.cpp over every usable
// feature, pruned_search.cpp over the features that survive the pruning.
//   1. Compact the features into increase-form arrays alpha and nb = -beta, padded with NaN
//      so that the SIMD kernels may read past the end (Compacted).
//   2. Cut the upper triangle of pairs into blocks of `rows` consecutive rows and compute
//      each block's maximum score (block_max): the SIMD kernel, with no indices in the hot
//      loop, for the columns right of the block, pair by pair for the block's own triangle.
//   3. The best score G is the largest block maximum; the answer is the first pair scoring G
//      in row-major order, found by rescanning only the first block whose maximum is G
//      (first_best_pair).
// Block maxima are exact (max does not depend on the order of non-NaN values) and the rescan
// is sequential, so the answer depends neither on the SIMD level nor on how the blocks were
// spread over threads.
//
// Only the searches include this header: a per-ISA translation unit (block_max_<isa>.cpp)
// must not, or the linker could keep its copy of these inline functions, built with flags
// the CPU may not support.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "contract.h"
#include "cpu/simd.h"
#include "search_api.h"

namespace jsma::cpu {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Whether feature i of a sample can take part in a pair: in the domain (null: all) and not NaN.
inline bool usable_feature(const float* alpha, const float* beta, const uint8_t* domain,
                           int64_t i) {
  return (domain == nullptr || domain[i] != 0) && !std::isnan(alpha[i]) && !std::isnan(beta[i]);
}

// Writes compacted features one after the other into arrays of at least (features +
// kKernelPadding) entries; pad() ends the list.
struct Compacted {
  float* alpha;
  float* nb;
  int64_t* index;  // the feature's index in the sample
  int64_t n = 0;

  void push(float alpha_i, float nb_i, int64_t i) {
    alpha[n] = alpha_i;
    nb[n] = nb_i;
    index[n] = i;
    ++n;
  }
  // Writes the NaN padding after the last feature; returns how many features there are.
  int64_t pad() {
    std::fill(alpha + n, alpha + n + kKernelPadding, NAN);
    std::fill(nb + n, nb + n + kKernelPadding, NAN);
    return n;
  }
};

// Maximum score among the pairs whose rows both lie in [p_begin, p_end).
inline float triangle_max(const float* alpha, const float* nb, int64_t p_begin, int64_t p_end) {
  float best = 0.0f;
  for (int64_t p = p_begin; p < p_end; ++p) {
    for (int64_t q = p + 1; q < p_end; ++q) {
      best = std::max(best, pair_score(alpha[p], alpha[q], nb[p], nb[q]));
    }
  }
  return best;
}

// Maximum score of block `blk` among n compacted features: the pairs p < q < n whose row p
// lies in [blk * rows, (blk + 1) * rows). 0 when none qualifies.
inline float block_max(const float* alpha, const float* nb, int64_t n, int64_t blk,
                       const BlockKernel& kernel) {
  const int64_t p0 = blk * kernel.rows;
  const int64_t q_begin = p0 + kernel.rows;
  float best = triangle_max(alpha, nb, p0, std::min(q_begin, n));
  if (q_begin < n) best = std::max(best, kernel.fn(alpha, nb, p0, q_begin, n));
  return best;
}

struct BestPair {
  int64_t p = -1;  // positions in the compacted arrays; -1 when no pair qualifies
  int64_t q = -1;
  float score = 0.0f;
};

// The first pair in row-major order scoring the largest of the ceil_div(n, rows) block
// maxima of n compacted features; none when that maximum is not > 0.
inline BestPair first_best_pair(const float* alpha, const float* nb, int64_t n,
                                const float* maxima, int64_t rows) {
  const int64_t blocks = ceil_div(n, rows);
  float best = 0.0f;
  for (int64_t blk = 0; blk < blocks; ++blk) best = std::max(best, maxima[blk]);
  if (!(best > 0.0f)) return {};
  const int64_t blk = std::find(maxima, maxima + blocks, best) - maxima;
  const int64_t p_end = std::min((blk + 1) * rows, n);
  for (int64_t p = blk * rows; p < p_end; ++p) {
    for (int64_t q = p + 1; q < n; ++q) {
      if (pair_score(alpha[p], alpha[q], nb[p], nb[q]) == best) return {p, q, best};
    }
  }
  return {};  // not reached: some pair of the block scores `best`
}

// Writes sample b's answer, its positions mapped back to the features' indices.
inline void write_pair(const PairOutputs& out, int64_t b, const BestPair& best,
                       const int64_t* index) {
  const bool valid = best.p >= 0;
  out.p[b] = valid ? index[best.p] : -1;
  out.q[b] = valid ? index[best.q] : -1;
  out.score[b] = best.score;
  out.valid[b] = valid ? 1 : 0;
}

}  // namespace jsma::cpu
