// Exhaustive pair search and the single-feature map on the GPU.
//
// Reads side by side with csrc/cpu/block_search.h and feature_search.cpp: the same contract
// (contract.h), the same inputs and outputs (search_api.h), the same increase form, the same
// "block maxima, then first-occurrence rescan". The decomposition into strips and segments,
// and the per-lane loops, are in pair_tiles.h, shared with a host emulation that the CPU
// tests run.
//
// Pair search, per call (all on the caller's stream, no synchronisation):
//   pass 1  pair_strip_max_kernel   one block per (sample, strip): the strip's 64 rows sit in
//           shared memory, each warp takes 256-column segments, each lane 8 columns in
//           registers; writes every segment maximum and the strip maximum. No atomics.
//   pass 2  pair_locate_kernel      one block per sample: best score G and the first strip
//           reaching it, then the first pair scoring G in that strip's G-segments.
// Scratch is O(batch * strips * segments) floats (one float per 16,384 pairs), allocated
// stream-ordered and capped by running large batches in slices.
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <string>

#include "cuda/cuda_api.h"
#include "cuda/pair_tiles.h"

namespace jsma::cuda {
namespace {

// ----------------------------------------------------------------------------- errors

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so the next call starts clean
    throw std::runtime_error(std::string("jsma_fast CUDA error in ") + what + ": " +
                             cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
  }
}

void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

// Makes `device` current for this thread's runtime, and restores the previous one. The
// module's static runtime keeps its own current device, independent of the caller's (torch,
// CuPy), so every entry point sets it.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) : device_(device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device_) check(cudaSetDevice(device_), "cudaSetDevice");
  }
  ~DeviceGuard() {
    if (previous_ != device_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int device_;
  int previous_ = 0;
};

// Rejects host or foreign-device pointers before any kernel can fault on them.
void check_device_pointer(const void* ptr, int device, const char* name) {
  cudaPointerAttributes attr{};
  const cudaError_t err = cudaPointerGetAttributes(&attr, ptr);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(std::string(name) + " is not a CUDA pointer (" +
                             cudaGetErrorString(err) + ")");
  }
  if (attr.type == cudaMemoryTypeManaged) return;
  if (attr.type != cudaMemoryTypeDevice) {
    throw std::runtime_error(std::string(name) + " must be in CUDA device memory, got " +
                             (attr.type == cudaMemoryTypeHost ? "pinned host" : "host") +
                             " memory");
  }
  if (attr.device != device) {
    throw std::runtime_error(std::string(name) + " is on cuda:" + std::to_string(attr.device) +
                             ", expected cuda:" + std::to_string(device));
  }
}

void check_inputs(const SearchInputs& in, int device) {
  if (in.batch < 0 || in.m < 0) {
    throw std::invalid_argument("batch and m must be >= 0, got " + std::to_string(in.batch) +
                                " and " + std::to_string(in.m));
  }
  if (in.batch * in.m == 0) return;
  check_device_pointer(in.alpha, device, "alpha");
  check_device_pointer(in.beta, device, "beta");
  if (in.domain != nullptr) check_device_pointer(in.domain, device, "domain");
}

// Stream-ordered device scratch: freed on the stream after the kernels that use it, so no
// synchronisation. Devices without memory pools fall back to cudaMalloc / cudaFree.
class StreamScratch {
 public:
  StreamScratch(int64_t bytes, int device, cudaStream_t stream) : stream_(stream) {
    if (bytes == 0) return;
    int pools = 0;
    check(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device),
          "cudaDeviceGetAttribute");
    async_ = pools != 0;
    check(async_ ? cudaMallocAsync(&ptr_, static_cast<size_t>(bytes), stream_)
                 : cudaMalloc(&ptr_, static_cast<size_t>(bytes)),
          "allocating the pair-search scratch");
  }
  ~StreamScratch() {
    if (ptr_ != nullptr) async_ ? cudaFreeAsync(ptr_, stream_) : cudaFree(ptr_);
  }
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;
  float* floats() const { return static_cast<float*>(ptr_); }

 private:
  cudaStream_t stream_;
  void* ptr_ = nullptr;
  bool async_ = false;
};

unsigned int grid_size(int64_t blocks) {
  return static_cast<unsigned int>(std::min<int64_t>(blocks, INT_MAX));
}

// Scratch per launch stays below this; larger batches run in slices of samples.
constexpr int64_t kMaxScratchFloats = int64_t{64} << 20;  // 256 MiB

// ----------------------------------------------------------------------------- device helpers

__device__ float warp_max(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;
}

// Block-wide better() reduction; every thread gets the result. `shared` holds one entry per
// warp. Ends with a barrier, so `shared` may be reused right after.
__device__ Best block_best(Best mine, Best* shared) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const Best other{__shfl_xor_sync(0xffffffffu, mine.score, offset),
                     __shfl_xor_sync(0xffffffffu, mine.index, offset)};
    mine = pick_better(mine, other);
  }
  const int warps = blockDim.x / kWarp;
  if (threadIdx.x % kWarp == 0) shared[threadIdx.x / kWarp] = mine;
  __syncthreads();
  Best result = shared[0];
  for (int w = 1; w < warps; ++w) result = pick_better(result, shared[w]);
  __syncthreads();
  return result;
}

// Loads the strip's rows into shared memory (excluded past m). Caller synchronises.
__device__ void stage_rows(Feature* rows, const float* alpha, const float* beta,
                           const uint8_t* domain, int64_t p0, int64_t m, float sign) {
  for (int r = threadIdx.x; r < kStripRows; r += blockDim.x) {
    rows[r] = load_feature_or_excluded(alpha, beta, domain, p0 + r, m, sign);
  }
}

// ----------------------------------------------------------------------------- pair search

// Pass 1. Block = (sample, strip); blockDim.x = warps * 32, warps <= kMaxWarps.
__global__ void __launch_bounds__(kMaxWarps * kWarp)
pair_strip_max_kernel(const float* __restrict__ alpha, const float* __restrict__ beta,
                      const uint8_t* __restrict__ domain, int64_t batch, int64_t m, float sign,
                      float* __restrict__ strip_max, float* __restrict__ segment_max) {
  __shared__ Feature rows[kStripRows];
  __shared__ float warp_best[kMaxWarps];
  const int lane = threadIdx.x % kWarp;
  const int warp = threadIdx.x / kWarp;
  const int warps = blockDim.x / kWarp;
  const int64_t strips = strip_count(m);
  const int64_t max_segments = max_segment_count(m);

  for (int64_t item = blockIdx.x; item < batch * strips; item += gridDim.x) {
    const int64_t b = item / strips;
    const int64_t s = item % strips;
    const int64_t p0 = s * kStripRows;
    const float* a = alpha + b * m;
    const float* be = beta + b * m;
    const uint8_t* d = domain != nullptr ? domain + b * m : nullptr;

    stage_rows(rows, a, be, d, p0, m, sign);
    __syncthreads();

    // Warps run independently over their segments; lanes load their columns coalesced.
    const int64_t segments = segment_count(m, s);
    float best = 0.0f;
    for (int64_t g = warp; g < segments; g += warps) {
      Feature cols[kColsPerLane];
      const int64_t q0 = p0 + g * kSegmentCols + lane;
#pragma unroll
      for (int k = 0; k < kColsPerLane; ++k) {
        cols[k] = load_feature_or_excluded(a, be, d, q0 + int64_t{kWarp} * k, m, sign);
      }
      const float v = warp_max(g == 0 ? lane_max<true>(rows, cols, lane)
                                      : lane_max<false>(rows, cols, lane));
      if (lane == 0) segment_max[item * max_segments + g] = v;
      best = fmaxf(best, v);
    }
    if (lane == 0) warp_best[warp] = best;
    // Also ends every read of `rows` for this item before the next item overwrites it.
    __syncthreads();
    if (threadIdx.x == 0) {
      float v = warp_best[0];
      for (int w = 1; w < warps; ++w) v = fmaxf(v, warp_best[w]);
      strip_max[item] = v;
    }
    // warp_best is written again only after the next item's first barrier, which thread 0
    // reaches after reading it.
  }
}

// Pass 2. Block = sample; blockDim.x = kLocateThreads.
__global__ void __launch_bounds__(kLocateThreads)
pair_locate_kernel(const float* __restrict__ alpha, const float* __restrict__ beta,
                   const uint8_t* __restrict__ domain, int64_t batch, int64_t m, float sign,
                   const float* __restrict__ strip_max, const float* __restrict__ segment_max,
                   int64_t* __restrict__ out_p, int64_t* __restrict__ out_q,
                   float* __restrict__ out_score, uint8_t* __restrict__ out_valid) {
  __shared__ Feature rows[kStripRows];
  __shared__ Best shared[kLocateThreads / kWarp];
  const int64_t strips = strip_count(m);
  const int64_t max_segments = max_segment_count(m);

  for (int64_t b = blockIdx.x; b < batch; b += gridDim.x) {
    // The best score G and the first strip reaching it: (score, strip) under better().
    Best mine{0.0f, INT64_MAX};
    for (int64_t s = threadIdx.x; s < strips; s += blockDim.x) {
      mine = pick_better(mine, Best{strip_max[b * strips + s], s});
    }
    const Best top = block_best(mine, shared);

    Best winner{0.0f, INT64_MAX};
    if (top.score > 0.0f) {  // the same for every thread of the block
      const float* a = alpha + b * m;
      const float* be = beta + b * m;
      const uint8_t* d = domain != nullptr ? domain + b * m : nullptr;
      stage_rows(rows, a, be, d, top.index * kStripRows, m, sign);
      __syncthreads();
      const int64_t found =
          locate_in_columns(rows, segment_max + (b * strips + top.index) * max_segments,
                            top.index, m, top.score, a, be, d, sign, threadIdx.x);
      winner = block_best(Best{top.score, found}, shared);  // equal scores: smallest index
    }
    if (threadIdx.x == 0) {
      // A G-segment always holds a pair scoring G; the INT64_MAX guard never makes one up.
      const bool valid = top.score > 0.0f && winner.index != INT64_MAX;
      out_p[b] = valid ? winner.index / m : -1;
      out_q[b] = valid ? winner.index % m : -1;
      out_score[b] = valid ? top.score : 0.0f;
      out_valid[b] = valid ? 1 : 0;
    }
    // `rows` and `shared` are rewritten only after block_best's closing barrier.
  }
}

// ----------------------------------------------------------------------------- features

// Same expression as sample_feature_score() on the CPU.
__device__ float device_feature_score(const float* alpha, const float* beta,
                                      const uint8_t* domain, int64_t k, float sign) {
  if (domain != nullptr && domain[k] == 0) return 0.0f;
  return feature_score(sign * alpha[k], -(sign * beta[k]));
}

__global__ void saliency_map_kernel(const float* __restrict__ alpha,
                                    const float* __restrict__ beta,
                                    const uint8_t* __restrict__ domain, int64_t total,
                                    float sign, float* __restrict__ map) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t k = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; k < total; k += stride) {
    map[k] = device_feature_score(alpha, beta, domain, k, sign);
  }
}

constexpr int kFeatureThreads = 256;

// Block = sample. Each thread keeps the first maximum of its strided share (strictly greater
// updates), and better() merges them: ties go to the smallest index, as on the CPU.
__global__ void __launch_bounds__(kFeatureThreads)
feature_argmax_kernel(const float* __restrict__ alpha, const float* __restrict__ beta,
                      const uint8_t* __restrict__ domain, int64_t batch, int64_t m, float sign,
                      int64_t* __restrict__ out_index, float* __restrict__ out_score,
                      uint8_t* __restrict__ out_valid) {
  __shared__ Best shared[kFeatureThreads / kWarp];
  for (int64_t b = blockIdx.x; b < batch; b += gridDim.x) {
    const float* a = alpha + b * m;
    const float* be = beta + b * m;
    const uint8_t* d = domain != nullptr ? domain + b * m : nullptr;
    Best mine{0.0f, -1};
    for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
      const float s = device_feature_score(a, be, d, i, sign);
      if (s > mine.score) mine = Best{s, i};
    }
    const Best best = block_best(mine, shared);
    if (threadIdx.x == 0) {
      out_index[b] = best.index;  // -1 unless a score > 0 was seen
      out_score[b] = best.score;
      out_valid[b] = best.score > 0.0f ? 1 : 0;
    }
  }
}

}  // namespace

// ----------------------------------------------------------------------------- host entry points

int64_t pair_search_workspace_bytes(int64_t batch, int64_t m) {
  if (batch <= 0) return 0;
  const int64_t per_sample = pair_scratch_floats(m);
  if (per_sample == 0) return 0;
  const int64_t slice = std::min(batch, std::max<int64_t>(1, kMaxScratchFloats / per_sample));
  return slice * per_sample * static_cast<int64_t>(sizeof(float));
}

void pair_search(const SearchInputs& in, const PairOutputs& out, const DeviceStream& on) {
  check_inputs(in, on.device);
  if (in.batch == 0) return;
  DeviceGuard guard(on.device);
  check_device_pointer(out.p, on.device, "p");
  check_device_pointer(out.q, on.device, "q");
  check_device_pointer(out.score, on.device, "score");
  check_device_pointer(out.valid, on.device, "valid");
  const auto stream = static_cast<cudaStream_t>(on.stream);
  const float sign = mode_sign(in.mode);
  const int64_t m = in.m;
  const int64_t strips = strip_count(m);
  const int64_t per_sample = pair_scratch_floats(m);
  const int64_t slice =
      per_sample == 0 ? in.batch
                      : std::min(in.batch, std::max<int64_t>(1, kMaxScratchFloats / per_sample));
  // Enough warps for the longest strip, at most kMaxWarps: small m leaves no warp idle.
  const int warps = static_cast<int>(
      std::clamp<int64_t>(max_segment_count(m), 1, int64_t{kMaxWarps}));

  StreamScratch scratch(pair_search_workspace_bytes(in.batch, m), on.device, stream);
  float* strip_max = scratch.floats();
  float* segment_max = strip_max == nullptr ? nullptr : strip_max + slice * strips;

  for (int64_t b0 = 0; b0 < in.batch; b0 += slice) {
    const int64_t n = std::min(slice, in.batch - b0);
    const float* alpha = in.alpha + b0 * m;
    const float* beta = in.beta + b0 * m;
    const uint8_t* domain = in.domain != nullptr ? in.domain + b0 * m : nullptr;
    if (strips > 0) {
      pair_strip_max_kernel<<<grid_size(n * strips), warps * kWarp, 0, stream>>>(
          alpha, beta, domain, n, m, sign, strip_max, segment_max);
      check_launch("pair_strip_max_kernel");
    }
    pair_locate_kernel<<<grid_size(n), kLocateThreads, 0, stream>>>(
        alpha, beta, domain, n, m, sign, strip_max, segment_max, out.p + b0, out.q + b0,
        out.score + b0, out.valid + b0);
    check_launch("pair_locate_kernel");
  }
}

void feature_search(const SearchInputs& in, const FeatureOutputs& out, const DeviceStream& on) {
  check_inputs(in, on.device);
  if (in.batch == 0) return;
  DeviceGuard guard(on.device);
  check_device_pointer(out.index, on.device, "index");
  check_device_pointer(out.score, on.device, "score");
  check_device_pointer(out.valid, on.device, "valid");
  const auto stream = static_cast<cudaStream_t>(on.stream);
  const float sign = mode_sign(in.mode);
  feature_argmax_kernel<<<grid_size(in.batch), kFeatureThreads, 0, stream>>>(
      in.alpha, in.beta, in.domain, in.batch, in.m, sign, out.index, out.score, out.valid);
  check_launch("feature_argmax_kernel");
}

void saliency_map(const SearchInputs& in, float* map, const DeviceStream& on) {
  check_inputs(in, on.device);
  const int64_t total = in.batch * in.m;
  if (total == 0) return;
  DeviceGuard guard(on.device);
  check_device_pointer(map, on.device, "map");
  const auto stream = static_cast<cudaStream_t>(on.stream);
  const float sign = mode_sign(in.mode);
  constexpr int kThreads = 256;
  // A grid-stride loop: a few blocks per SM's worth is enough for a memory-bound map.
  const int64_t blocks = std::min<int64_t>(ceil_div(total, kThreads), int64_t{1} << 16);
  saliency_map_kernel<<<grid_size(blocks), kThreads, 0, stream>>>(in.alpha, in.beta, in.domain,
                                                                  total, sign, map);
  check_launch("saliency_map_kernel");
}

}  // namespace jsma::cuda
