// Run-time choice of the SIMD instruction set for the CPU pair search.
//
// Each instruction set is compiled in its own translation unit with its own flags
// (block_max_<isa>.cpp); nothing else in the build uses ISA-specific flags, so the module
// runs on any CPU of its architecture and uses the widest vectors the CPU and OS support.
#pragma once

#include <cstdint>
#include <string>

namespace jsma::cpu {

enum class SimdLevel : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

// Maximum pair score (contract.h) over rows [p0, p0 + rows) and columns [q_begin, q_end)
// of the compacted, NaN-padded arrays `alpha` and `nb` (= -beta, increase form). Kernels
// may read up to `rows` entries past p0 and `width - 1` entries past q_end, which must hold
// NaN padding. Returns 0 when no pair in the block qualifies.
using BlockMaxFn = float (*)(const float* alpha, const float* nb, int64_t p0, int64_t q_begin,
                             int64_t q_end);

struct BlockKernel {
  SimdLevel level;
  int rows;   // rows of pairs handled per call (register blocking)
  int width;  // vector width in floats
  BlockMaxFn fn;
};

// NaN padding (in floats) the kernels may read past the end of the compacted arrays.
constexpr int64_t kKernelPadding = 64;

const char* simd_level_name(SimdLevel level);
// Parses "scalar", "avx2", "avx512" or "auto" (the best this CPU supports); throws
// std::invalid_argument for other names or a level this build or CPU cannot run.
SimdLevel resolve_simd_level(const std::string& name);
SimdLevel best_simd_level();
bool simd_level_runnable(SimdLevel level);
BlockKernel block_kernel(SimdLevel level);

// Clears flush-to-zero / denormals-are-zero for the lifetime of the object, so results do
// not depend on the floating-point mode a host application left in the thread.
class IeeeModeGuard {
 public:
  IeeeModeGuard();
  ~IeeeModeGuard();
  IeeeModeGuard(const IeeeModeGuard&) = delete;
  IeeeModeGuard& operator=(const IeeeModeGuard&) = delete;

 private:
  unsigned int saved_;
};

namespace scalar { float block_max(const float*, const float*, int64_t, int64_t, int64_t); }
namespace avx2 { float block_max(const float*, const float*, int64_t, int64_t, int64_t); }
namespace avx512 { float block_max(const float*, const float*, int64_t, int64_t, int64_t); }

}  // namespace jsma::cpu
