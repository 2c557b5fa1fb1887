// Exhaustive pair search on the CPU.
//
// Per sample: (1) compact the features that can take part in a pair (in the domain, not
// NaN) into increase-form arrays alpha and nb = -beta, padded with NaN; (2) cut the upper
// triangle of pairs into blocks of `rows` consecutive rows and compute each block's maximum
// score with the SIMD kernel (no indices in the hot loop); (3) the best score G is the
// maximum over blocks, and the answer is the first pair scoring G in row-major order, found
// by rescanning only the first block whose maximum is G. Blocks of all samples are spread
// over the threads, so one large sample and many small ones both use every core. The result
// does not depend on the thread count: block maxima are exact and the rescan is sequential.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/parallel.h"
#include "cpu/search.h"

namespace jsma::cpu {
namespace {

// Writes the sample's usable features in increase form, followed by kKernelPadding NaNs;
// returns how many there are. Multiplying by sign = +-1 and negating are exact.
int64_t compact_sample(const float* alpha, const float* beta, const uint8_t* domain, int64_t m,
                       float sign, float* out_alpha, float* out_nb, int64_t* out_index) {
  int64_t n = 0;
  for (int64_t i = 0; i < m; ++i) {
    const bool in_domain = domain == nullptr || domain[i] != 0;
    if (in_domain && !std::isnan(alpha[i]) && !std::isnan(beta[i])) {
      out_alpha[n] = sign * alpha[i];
      out_nb[n] = -(sign * beta[i]);
      out_index[n] = i;
      ++n;
    }
  }
  std::fill(out_alpha + n, out_alpha + n + kKernelPadding, NAN);
  std::fill(out_nb + n, out_nb + n + kKernelPadding, NAN);
  return n;
}

// Maximum score among the pairs whose rows both lie in [p_begin, p_end).
float triangle_max(const float* alpha, const float* nb, int64_t p_begin, int64_t p_end) {
  float best = 0.0f;
  for (int64_t p = p_begin; p < p_end; ++p) {
    for (int64_t q = p + 1; q < p_end; ++q) {
      best = std::max(best, pair_score(alpha[p], alpha[q], nb[p], nb[q]));
    }
  }
  return best;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Task {
  int64_t sample;
  int64_t block_begin;
  int64_t block_end;
};

// Groups consecutive blocks of each sample into tasks of at least `target_pairs` pairs, so
// the scheduling cost stays small next to the work.
std::vector<Task> make_tasks(const std::vector<int64_t>& count, int64_t rows,
                             int64_t target_pairs) {
  std::vector<Task> tasks;
  for (int64_t b = 0; b < static_cast<int64_t>(count.size()); ++b) {
    const int64_t n = count[b];
    const int64_t blocks = ceil_div(n, rows);
    int64_t begin = 0;
    int64_t pairs = 0;
    for (int64_t blk = 0; blk < blocks; ++blk) {
      pairs += rows * (n - blk * rows);
      if (pairs >= target_pairs || blk + 1 == blocks) {
        tasks.push_back({b, begin, blk + 1});
        begin = blk + 1;
        pairs = 0;
      }
    }
  }
  return tasks;
}

}  // namespace

void pair_search_exact(const SearchInputs& in, const PairOutputs& out, int num_threads,
                       SimdLevel simd) {
  const int64_t batch = in.batch;
  const int64_t m = in.m;
  if (batch <= 0) return;
  const BlockKernel kernel = block_kernel(simd);
  const int64_t rows = kernel.rows;
  const int threads = clamp_threads(num_threads);
  const float sign = mode_sign(in.mode);
  const int64_t stride = m + kKernelPadding;
  const int64_t max_blocks = ceil_div(m, rows);
  // Below ~4M pairs (~0.2 ms on one core) waking a second thread costs more than it saves,
  // and far more when the other cores are busy.
  const bool parallel = threads > 1 && batch * m * m / 2 > (int64_t{1} << 22);

  std::vector<float> alpha_c(static_cast<size_t>(batch * stride));
  std::vector<float> nb_c(static_cast<size_t>(batch * stride));
  std::vector<int64_t> index_c(static_cast<size_t>(batch * std::max<int64_t>(m, 1)));
  std::vector<int64_t> count(static_cast<size_t>(batch));
  std::vector<float> block_max(static_cast<size_t>(batch * std::max<int64_t>(max_blocks, 1)));
  std::vector<Task> tasks;

  JSMA_PRAGMA(omp parallel num_threads(threads) if (parallel))
  {
    IeeeModeGuard ieee;

    JSMA_PRAGMA(omp for schedule(static))
    for (int64_t b = 0; b < batch; ++b) {
      const size_t off = static_cast<size_t>(b * stride);
      count[b] = compact_sample(in.alpha + b * m, in.beta + b * m,
                                in.domain ? in.domain + b * m : nullptr, m, sign,
                                alpha_c.data() + off, nb_c.data() + off,
                                index_c.data() + b * m);
    }

    JSMA_PRAGMA(omp single)
    {
      int64_t total_pairs = 0;
      for (int64_t n : count) total_pairs += n * (n - 1) / 2;
      const int64_t target = std::max<int64_t>(int64_t{1} << 18, total_pairs / (threads * 16));
      tasks = make_tasks(count, rows, target);
    }

    JSMA_PRAGMA(omp for schedule(dynamic, 1))
    for (int64_t t = 0; t < static_cast<int64_t>(tasks.size()); ++t) {
      const Task task = tasks[t];
      const int64_t n = count[task.sample];
      const float* a = alpha_c.data() + task.sample * stride;
      const float* nb = nb_c.data() + task.sample * stride;
      float* maxima = block_max.data() + task.sample * max_blocks;
      for (int64_t blk = task.block_begin; blk < task.block_end; ++blk) {
        const int64_t p0 = blk * rows;
        const int64_t q_begin = p0 + rows;
        float best = triangle_max(a, nb, p0, std::min(q_begin, n));
        if (q_begin < n) best = std::max(best, kernel.fn(a, nb, p0, q_begin, n));
        maxima[blk] = best;
      }
    }

    JSMA_PRAGMA(omp for schedule(dynamic, 1))
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t n = count[b];
      const float* a = alpha_c.data() + b * stride;
      const float* nb = nb_c.data() + b * stride;
      const float* maxima = block_max.data() + b * max_blocks;
      const int64_t blocks = ceil_div(n, rows);
      float best = 0.0f;
      for (int64_t blk = 0; blk < blocks; ++blk) best = std::max(best, maxima[blk]);
      out.p[b] = -1;
      out.q[b] = -1;
      out.score[b] = 0.0f;
      out.valid[b] = 0;
      if (!(best > 0.0f)) continue;
      const int64_t blk = std::find(maxima, maxima + blocks, best) - maxima;
      const int64_t p_end = std::min((blk + 1) * rows, n);
      for (int64_t p = blk * rows; p < p_end && !out.valid[b]; ++p) {
        for (int64_t q = p + 1; q < n; ++q) {
          if (pair_score(a[p], a[q], nb[p], nb[q]) == best) {
            out.p[b] = index_c[b * m + p];
            out.q[b] = index_c[b * m + q];
            out.score[b] = best;
            out.valid[b] = 1;
            break;
          }
        }
      }
    }
  }
}

}  // namespace jsma::cpu
