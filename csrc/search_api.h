// What every search takes and writes, on the CPU (cpu/search.h) and on the GPU
// (cuda/cuda_api.h): the same structs and the same function names on both sides; only where
// the memory lives and how the work runs (threads and SIMD, or device and stream) differ.
//
// Arrays are row-major (batch, m); `domain` is (batch, m) bytes, nonzero for features in the
// search domain, or null for "all features". Outputs are (batch,) arrays the caller owns.
#pragma once

#include <cstdint>

#include "contract.h"

namespace jsma {

struct SearchInputs {
  const float* alpha;
  const float* beta;      // null for the top-2 rule, which reads alpha only
  const uint8_t* domain;  // may be null
  int64_t batch;
  int64_t m;
  Mode mode;
};

struct PairOutputs {
  int64_t* p;      // -1 when invalid
  int64_t* q;      // -1 when invalid; p < q otherwise
  float* score;    // 0 when invalid
  uint8_t* valid;
};

struct FeatureOutputs {
  int64_t* index;  // -1 when invalid
  float* score;    // 0 when invalid
  uint8_t* valid;
};

}  // namespace jsma
