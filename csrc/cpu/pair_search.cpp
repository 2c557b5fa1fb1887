// Exhaustive pair search on the CPU: the block search (block_search.h) over every usable
// feature of every sample. Blocks of all samples are spread over the threads, so one large
// sample and many small ones both use every core; the result does not depend on the thread
// count.
#include <algorithm>
#include <vector>

#include "cpu/block_search.h"
#include "cpu/parallel.h"
#include "cpu/search.h"

namespace jsma::cpu {
namespace {

// Compacts one sample's usable features in increase form; returns how many there are.
// Multiplying by sign = +-1 and negating are exact.
int64_t compact_sample(const float* alpha, const float* beta, const uint8_t* domain, int64_t m,
                       float sign, Compacted out) {
  for (int64_t i = 0; i < m; ++i) {
    if (usable_feature(alpha, beta, domain, i)) out.push(sign * alpha[i], -(sign * beta[i]), i);
  }
  return out.pad();
}

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

void pair_search(const SearchInputs& in, const PairOutputs& out, int num_threads,
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
  std::vector<float> block_max_c(static_cast<size_t>(batch * std::max<int64_t>(max_blocks, 1)));
  std::vector<Task> tasks;

  JSMA_PRAGMA(omp parallel num_threads(threads) if (parallel))
  {
    IeeeModeGuard ieee;

    JSMA_PRAGMA(omp for schedule(static))
    for (int64_t b = 0; b < batch; ++b) {
      const size_t off = static_cast<size_t>(b * stride);
      count[b] = compact_sample(in.alpha + b * m, in.beta + b * m,
                                in.domain ? in.domain + b * m : nullptr, m, sign,
                                {alpha_c.data() + off, nb_c.data() + off, index_c.data() + b * m});
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
      const float* a = alpha_c.data() + task.sample * stride;
      const float* nb = nb_c.data() + task.sample * stride;
      float* maxima = block_max_c.data() + task.sample * max_blocks;
      for (int64_t blk = task.block_begin; blk < task.block_end; ++blk) {
        maxima[blk] = block_max(a, nb, count[task.sample], blk, kernel);
      }
    }

    JSMA_PRAGMA(omp for schedule(dynamic, 1))
    for (int64_t b = 0; b < batch; ++b) {
      const float* a = alpha_c.data() + b * stride;
      const float* nb = nb_c.data() + b * stride;
      const BestPair best =
          first_best_pair(a, nb, count[b], block_max_c.data() + b * max_blocks, rows);
      write_pair(out, b, best, index_c.data() + b * m);
    }
  }
}

}  // namespace jsma::cpu
