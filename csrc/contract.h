// The scalar kernel contract shared by every search (CPU exact, CPU pruned, CUDA).
//
// All searches work in "increase form": for the decrease mode the caller negates alpha and
// beta, which is exact in IEEE arithmetic, so one code path serves both modes bit for bit.
//
// In increase form a pair (p, q), p != q, qualifies when A = alpha_p + alpha_q > 0 and
// B = beta_p + beta_q < 0; its score is -(A * B). The kernels store nb = -beta and compute
// A * (nb_p + nb_q), which is the same float32 value: negation commutes with IEEE rounding.
// A pair whose score rounds to 0 cannot win (the best score must be > 0), so "score 0" is
// used for "does not qualify". NaN never qualifies: every comparison with NaN is false.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define JSMA_HD __host__ __device__ __forceinline__
#else
#define JSMA_HD inline
#endif

namespace jsma {

enum class Mode : int { kIncrease = 0, kDecrease = 1 };

// Sign applied to alpha and beta to bring a mode into increase form.
static JSMA_HD float mode_sign(Mode mode) { return mode == Mode::kIncrease ? 1.0f : -1.0f; }

// Score of pair (p, q) in increase form, from alpha and nb = -beta; 0 when it does not qualify.
static JSMA_HD float pair_score(float alpha_p, float alpha_q, float nb_p, float nb_q) {
  const float a = alpha_p + alpha_q;
  const float nb = nb_p + nb_q;  // = -(beta_p + beta_q) exactly
  return (a > 0.0f && nb > 0.0f) ? a * nb : 0.0f;
}

// Score of a single feature in increase form (the paper's S(x, t)[i]); 0 when it does not
// qualify (alpha_i > 0 and beta_i < 0 are required).
static JSMA_HD float feature_score(float alpha_i, float nb_i) {
  return (alpha_i > 0.0f && nb_i > 0.0f) ? alpha_i * nb_i : 0.0f;
}

// Deterministic order of candidates: larger score first, then the smaller linear index
// (row-major p * M + q for pairs, i for features). Scores are never NaN here.
static JSMA_HD bool better(float score, int64_t index, float best_score, int64_t best_index) {
  return score > best_score || (score == best_score && index < best_index);
}

}  // namespace jsma
