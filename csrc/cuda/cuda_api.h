// Host-side entry points of the CUDA part of the module. Compiled only when the build has
// CUDA (JSMA_FAST_WITH_CUDA); plain C++ types only, so the bindings need no CUDA headers.
//
// The searches take the shared inputs and outputs (search_api.h) as device pointers, and
// the device and the caller's stream; they launch asynchronously on that stream and never
// synchronise. Errors (bad pointers, failed launches, allocation failures) are thrown as
// std::runtime_error.
#pragma once

#include <cstdint>
#include <string>

#include "search_api.h"

namespace jsma::cuda {

// CUDA runtime version the module was linked with (e.g. 13000), statically.
int runtime_version();
// Latest CUDA version the installed driver supports (e.g. 12040); 0 without a driver.
int driver_version();
// Number of usable devices; 0 (and a reason in *why) when there is no driver or device.
int device_count(std::string* why);

// Where a search runs.
struct DeviceStream {
  int device;    // the CUDA device holding every array
  void* stream;  // cudaStream_t of the caller (0: the legacy default stream)
};

// Exhaustive pair search; the same results as jsma::cpu::pair_search, bit for bit.
void pair_search(const SearchInputs& in, const PairOutputs& out, const DeviceStream& on);
// Single-feature arg-max; the same results as jsma::cpu::feature_search.
void feature_search(const SearchInputs& in, const FeatureOutputs& out, const DeviceStream& on);
// Single-feature map (batch, m); the same values as jsma::cpu::saliency_map.
void saliency_map(const SearchInputs& in, float* map, const DeviceStream& on);
// Device scratch that pair_search allocates (stream-ordered) for a call of this size.
int64_t pair_search_workspace_bytes(int64_t batch, int64_t m);

}  // namespace jsma::cuda
