// Host-side entry points of the CUDA part of the module. Compiled only when the build has
// CUDA (JSMA_FAST_WITH_CUDA); plain C++ types only, so the bindings need no CUDA headers.
//
// The searches take device pointers and the caller's stream, launch asynchronously on that
// stream and never synchronise; errors (bad pointers, failed launches, allocation failures)
// are thrown as std::runtime_error.
#pragma once

#include <cstdint>
#include <string>

namespace jsma::cuda {

// CUDA runtime version the module was linked with (e.g. 13000), statically.
int runtime_version();
// Latest CUDA version the installed driver supports (e.g. 12040); 0 without a driver.
int driver_version();
// Number of usable devices; 0 (and a reason in *why) when there is no driver or device.
int device_count(std::string* why);

// Row-major (batch, m) device arrays; `domain` may be null ("all features").
struct DeviceInputs {
  const float* alpha;
  const float* beta;
  const uint8_t* domain;
  int64_t batch;
  int64_t m;
  bool increase;
  int device;      // the CUDA device holding every array
  void* stream;    // cudaStream_t of the caller (0: the legacy default stream)
};

struct DevicePairOutputs {
  int64_t* p;      // (batch,), -1 when invalid
  int64_t* q;      // (batch,), -1 when invalid; p < q otherwise
  float* score;    // (batch,), 0 when invalid
  uint8_t* valid;  // (batch,)
};

struct DeviceFeatureOutputs {
  int64_t* index;  // (batch,), -1 when invalid
  float* score;    // (batch,), 0 when invalid
  uint8_t* valid;  // (batch,)
};

// Exhaustive pair search; the same results as jsma::cpu::pair_search_exact, bit for bit.
void pair_search(const DeviceInputs& in, const DevicePairOutputs& out);
// Single-feature arg-max; the same results as jsma::cpu::feature_search.
void feature_search(const DeviceInputs& in, const DeviceFeatureOutputs& out);
// Single-feature map (batch, m); the same values as jsma::cpu::saliency_map.
void saliency_map(const DeviceInputs& in, float* map);
// Device scratch that pair_search allocates (stream-ordered) for a call of this size.
int64_t pair_search_workspace_bytes(int64_t batch, int64_t m);

// The pair search's decomposition and per-lane code (pair_tiles.h) run on the host, for
// testing it without a GPU. Host arrays, same layout and results as pair_search.
void emulate_pair_search(const float* alpha, const float* beta, const uint8_t* domain,
                         int64_t batch, int64_t m, bool increase, int64_t* p, int64_t* q,
                         float* score, uint8_t* valid);

}  // namespace jsma::cuda
