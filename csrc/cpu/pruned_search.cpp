// Pruned exact pair search on the CPU (docs/pruned-search.md has the proof).
//
// In increase form (a, n = -beta) a feature dominated by two others can be dropped: some
// pair with the maximal score avoids it. Per sample:
//   1. three linear SIMD passes (prune_filter.h): the maxima of a and n, then for a few
//      directions the second largest of min(a * s_a, n * s_n), then the features outside
//      every "box" below two such features: the candidates C, a superset of the survivors;
//   2. sort only C by (a desc, n desc, index asc), a linear extension of the strict
//      domination order; a running top-2 of n keeps the survivors S (fewer than two
//      dominators); every dominator of a candidate is itself a candidate, so this is exact;
//   3. the block search (block_search.h) over the pairs of S, in index order.
// When C holds more than half of the usable features (or there are very few), pruning
// cannot pay: the sample goes to the exhaustive search (pair_search) unchanged.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "cpu/block_search.h"
#include "cpu/parallel.h"
#include "cpu/prune_filter.h"
#include "cpu/search.h"

namespace jsma::cpu {
namespace {

// Weights of the directions, relative to the sample's largest a and n.
constexpr float kWeights[kPruneDirections][2] = {
    {1.0f, 1.0f}, {1.0f, 0.5f}, {0.5f, 1.0f}, {1.0f, 0.25f}, {0.25f, 1.0f}};

// Below this many usable features the passes cost more than the exhaustive search saves.
constexpr int64_t kMinPrunedFeatures = 24;

// ------------------------------------------------------------------ scalar passes

struct Feature {
  float a, n;
  bool usable;
};

Feature read(const SampleView& s, int64_t i) {
  return {s.alpha[i] * s.sign, s.beta[i] * -s.sign, usable_feature(s.alpha, s.beta, s.domain, i)};
}

UsableStats scalar_stats(const SampleView& s) {
  UsableStats st{0, -INFINITY, -INFINITY};
  for (int64_t i = 0; i < s.m; ++i) {
    const Feature f = read(s, i);
    if (!f.usable) continue;
    ++st.count;
    st.max_a = std::max(st.max_a, f.a);
    st.max_n = std::max(st.max_n, f.n);
  }
  return st;
}

void scalar_thresholds(const SampleView& s, PruneBoxes* boxes) {
  float top[kPruneDirections][2];
  for (auto& t : top) t[0] = t[1] = -INFINITY;
  for (int64_t i = 0; i < s.m; ++i) {
    const Feature f = read(s, i);
    if (!f.usable) continue;
    for (int d = 0; d < kPruneDirections; ++d) {
      const float v = std::min(f.a * boxes->scale_a[d], f.n * boxes->scale_n[d]);
      top[d][1] = std::max(top[d][1], std::min(top[d][0], v));
      top[d][0] = std::max(top[d][0], v);
    }
  }
  for (int d = 0; d < kPruneDirections; ++d) boxes->threshold[d] = top[d][1];
}

int64_t scalar_collect(const SampleView& s, const PruneBoxes& boxes, int64_t* out) {
  int64_t count = 0;
  for (int64_t i = 0; i < s.m; ++i) {
    const Feature f = read(s, i);
    bool drop = !f.usable;
    for (int d = 0; d < kPruneDirections && !drop; ++d) {
      drop = f.a * boxes.scale_a[d] < boxes.threshold[d] &&
             f.n * boxes.scale_n[d] < boxes.threshold[d];
    }
    if (!drop) out[count++] = i;
  }
  return count;
}

// ------------------------------------------------------------------ per-sample steps

// Scales that bring the largest a and n near 1, so the directions fit any gradient scale.
// Any finite positive scale is correct; a degenerate maximum just falls back to 1.
PruneBoxes make_boxes(const UsableStats& st) {
  auto base = [](float max) {
    const float r = 1.0f / max;
    return (max > 0.0f && std::isfinite(r) && r > 0.0f) ? r : 1.0f;
  };
  const float ba = base(st.max_a), bn = base(st.max_n);
  PruneBoxes boxes{};
  for (int d = 0; d < kPruneDirections; ++d) {
    const float sa = ba * kWeights[d][0], sn = bn * kWeights[d][1];
    boxes.scale_a[d] = sa > 0.0f ? sa : 1.0f;  // guards underflow of a tiny base
    boxes.scale_n[d] = sn > 0.0f ? sn : 1.0f;
  }
  return boxes;
}

// Reusable per-thread buffers: no allocation per sample once they have grown.
struct Scratch {
  std::vector<int64_t> cand;   // candidate indices, ascending
  std::vector<float> a, n;     // their increase-form values
  std::vector<int64_t> order;  // positions in C sorted by the domination order
  std::vector<uint8_t> keep;
  std::vector<float> sa, sn;  // survivors, NaN-padded for the block kernel
  std::vector<int64_t> sidx;
  std::vector<float> maxima;  // block maxima of the survivors' pairs
};

Scratch& thread_scratch(int64_t m) {
  thread_local Scratch s;
  const size_t need = static_cast<size_t>(m);
  if (s.cand.size() < need) {
    s.cand.resize(need);
    s.a.resize(need);
    s.n.resize(need);
    s.order.resize(need);
    s.keep.resize(need);
    s.sa.resize(need + kKernelPadding);
    s.sn.resize(need + kKernelPadding);
    s.sidx.resize(need);
    s.maxima.resize(need);
  }
  return s;
}

// Flags the candidates with fewer than two dominators in the strict order "j dominates i
// when a_j >= a_i, n_j >= n_i and (a, n, index) differ with j first on exact ties".
void mark_survivors(Scratch& s, int64_t c) {
  const float* a = s.a.data();
  const float* n = s.n.data();
  int64_t* order = s.order.data();
  std::iota(order, order + c, int64_t{0});
  // Positions follow ascending feature index, so the last key is the index tie-break.
  std::sort(order, order + c, [a, n](int64_t x, int64_t y) {
    if (a[x] != a[y]) return a[x] > a[y];
    if (n[x] != n[y]) return n[x] > n[y];
    return x < y;
  });
  // Everything earlier in this order has a >= a_i; it dominates i iff its n >= n_i.
  float top1 = -INFINITY, top2 = -INFINITY;
  for (int64_t k = 0; k < c; ++k) {
    const int64_t i = order[k];
    const float v = n[i];
    s.keep[i] = k < 2 || v > top2;
    if (k == 0) {
      top1 = v;
    } else if (k == 1 || v > top2) {
      top2 = std::min(top1, v);
      top1 = std::max(top1, v);
    }
  }
}

// The block search over k survivors (compacted, NaN-padded): the first best pair.
BestPair best_pair(Scratch& s, int64_t k, const BlockKernel& kernel) {
  const int64_t blocks = ceil_div(k, kernel.rows);
  for (int64_t blk = 0; blk < blocks; ++blk) {
    s.maxima[blk] = block_max(s.sa.data(), s.sn.data(), k, blk, kernel);
  }
  return first_best_pair(s.sa.data(), s.sn.data(), k, s.maxima.data(), kernel.rows);
}

// Searches one sample; returns false when it should go to the exhaustive search instead.
bool search_sample(const SampleView& view, const PruneKernels& passes,
                   const BlockKernel& kernel, int64_t b, const PairOutputs& out,
                   int64_t* candidates) {
  const UsableStats st = passes.stats(view);
  if (candidates != nullptr) candidates[b] = st.count;
  if (st.count < kMinPrunedFeatures) return false;
  PruneBoxes boxes = make_boxes(st);
  passes.thresholds(view, &boxes);
  Scratch& s = thread_scratch(view.m);
  const int64_t c = passes.collect(view, boxes, s.cand.data());
  if (2 * c > st.count) return false;

  for (int64_t k = 0; k < c; ++k) {
    const int64_t i = s.cand[k];
    s.a[k] = view.alpha[i] * view.sign;
    s.n[k] = view.beta[i] * -view.sign;
  }
  mark_survivors(s, c);
  Compacted survivors{s.sa.data(), s.sn.data(), s.sidx.data()};
  for (int64_t k = 0; k < c; ++k) {
    if (s.keep[k]) survivors.push(s.a[k], s.n[k], s.cand[k]);
  }
  const int64_t k_s = survivors.pad();
  if (candidates != nullptr) candidates[b] = k_s;
  write_pair(out, b, best_pair(s, k_s, kernel), s.sidx.data());
  return true;
}

// Runs the exhaustive search on the listed samples, copied into one contiguous batch so
// that it spreads their pairs over all threads.
void exhaustive_subset(const SearchInputs& in, const PairOutputs& out,
                       const std::vector<int64_t>& samples, int num_threads, SimdLevel simd) {
  if (samples.empty()) return;
  if (static_cast<int64_t>(samples.size()) == in.batch) {
    pair_search(in, out, num_threads, simd);
    return;
  }
  const int64_t k = static_cast<int64_t>(samples.size());
  const int64_t m = in.m;
  std::vector<float> alpha(static_cast<size_t>(k * m)), beta(static_cast<size_t>(k * m));
  std::vector<uint8_t> domain(in.domain ? static_cast<size_t>(k * m) : 0);
  for (int64_t j = 0; j < k; ++j) {
    const int64_t b = samples[j];
    std::copy_n(in.alpha + b * m, m, alpha.data() + j * m);
    std::copy_n(in.beta + b * m, m, beta.data() + j * m);
    if (in.domain) std::copy_n(in.domain + b * m, m, domain.data() + j * m);
  }
  std::vector<int64_t> p(k), q(k);
  std::vector<float> score(k);
  std::vector<uint8_t> valid(k);
  const SearchInputs sub{alpha.data(), beta.data(), in.domain ? domain.data() : nullptr,
                         k, m, in.mode};
  pair_search(sub, {p.data(), q.data(), score.data(), valid.data()}, num_threads, simd);
  for (int64_t j = 0; j < k; ++j) {
    const int64_t b = samples[j];
    out.p[b] = p[j];
    out.q[b] = q[j];
    out.score[b] = score[j];
    out.valid[b] = valid[j];
  }
}

}  // namespace

PruneKernels prune_kernels(SimdLevel level) {
#if defined(JSMA_FAST_HAVE_X86_KERNELS)
  if (level == SimdLevel::kAvx512) {
    return {avx512::prune_stats, avx512::prune_thresholds, avx512::prune_collect};
  }
#endif
  (void)level;
  return {scalar_stats, scalar_thresholds, scalar_collect};
}

void pair_search_pruned(const SearchInputs& in, const PairOutputs& out, int64_t* candidates,
                        int num_threads, SimdLevel simd) {
  const int64_t batch = in.batch;
  const int64_t m = in.m;
  if (batch <= 0) return;
  const PruneKernels passes = prune_kernels(simd);
  const BlockKernel kernel = block_kernel(simd);
  const int threads = clamp_threads(num_threads);
  const float sign = mode_sign(in.mode);
  // A sample costs one to two microseconds per thousand features; below ~1M features in
  // total the work is too short to pay for waking threads (and a busy machine makes the
  // fork-join far dearer than the work).
  const bool parallel = threads > 1 && batch > 1 && batch * m > (int64_t{1} << 16);
  std::vector<uint8_t> exhaustive(static_cast<size_t>(batch), 0);

  JSMA_PRAGMA(omp parallel num_threads(threads) if (parallel))
  {
    IeeeModeGuard ieee;
    JSMA_PRAGMA(omp for schedule(dynamic, 8))
    for (int64_t b = 0; b < batch; ++b) {
      const SampleView view{in.alpha + b * m, in.beta + b * m,
                            in.domain ? in.domain + b * m : nullptr, m, sign};
      exhaustive[b] = !search_sample(view, passes, kernel, b, out, candidates);
    }
  }

  std::vector<int64_t> rest;
  for (int64_t b = 0; b < batch; ++b) {
    if (exhaustive[b]) rest.push_back(b);
  }
  exhaustive_subset(in, out, rest, threads, simd);
}

}  // namespace jsma::cpu
