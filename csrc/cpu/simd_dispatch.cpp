// Run-time choice of the SIMD level (simd.h), and the one place that asks the CPU (and OS)
// what it supports: the levels this build and CPU can run, the names behind the `simd`
// argument, each level's block kernel, and the guard that pins the floating-point mode while
// a kernel runs. The per-ISA kernels are in their own translation units (block_max_<isa>.cpp,
// prune_filter_avx512.cpp), each built with its own flags; this file needs none.
#include <stdexcept>
#include <string>

#include "cpu/simd.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <xmmintrin.h>
#define JSMA_X86 1
#endif

namespace jsma::cpu {

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512: return "avx512";
    case SimdLevel::kAvx2: return "avx2";
    default: return "scalar";
  }
}

static bool cpu_supports(SimdLevel level) {
  if (level == SimdLevel::kScalar) return true;
#if defined(JSMA_FAST_HAVE_X86_KERNELS)
  __builtin_cpu_init();
  if (level == SimdLevel::kAvx2) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }
  if (level == SimdLevel::kAvx512) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  }
#endif
  return false;
}

bool simd_level_runnable(SimdLevel level) { return cpu_supports(level); }

SimdLevel best_simd_level() {
  static const SimdLevel best = [] {
    if (cpu_supports(SimdLevel::kAvx512)) return SimdLevel::kAvx512;
    if (cpu_supports(SimdLevel::kAvx2)) return SimdLevel::kAvx2;
    return SimdLevel::kScalar;
  }();
  return best;
}

SimdLevel resolve_simd_level(const std::string& name) {
  if (name == "auto") return best_simd_level();
  SimdLevel level;
  if (name == "scalar") {
    level = SimdLevel::kScalar;
  } else if (name == "avx2") {
    level = SimdLevel::kAvx2;
  } else if (name == "avx512") {
    level = SimdLevel::kAvx512;
  } else {
    throw std::invalid_argument("simd must be one of 'auto', 'scalar', 'avx2', 'avx512', got '" +
                                name + "'");
  }
  if (!cpu_supports(level)) {
    throw std::invalid_argument(std::string("simd='") + name +
                                "' is not available: this build or CPU supports up to '" +
                                simd_level_name(best_simd_level()) + "'");
  }
  return level;
}

BlockKernel block_kernel(SimdLevel level) {
  switch (level) {
#if defined(JSMA_FAST_HAVE_X86_KERNELS)
    case SimdLevel::kAvx512: return {level, 8, 16, &avx512::block_max};
    case SimdLevel::kAvx2: return {level, 4, 8, &avx2::block_max};
#endif
    default: return {SimdLevel::kScalar, 4, 1, &scalar::block_max};
  }
}

#if defined(JSMA_X86)
IeeeModeGuard::IeeeModeGuard() : saved_(_mm_getcsr()) {
  constexpr unsigned int kFlushToZero = 1u << 15;
  constexpr unsigned int kDenormalsAreZero = 1u << 6;
  _mm_setcsr(saved_ & ~(kFlushToZero | kDenormalsAreZero));
}
IeeeModeGuard::~IeeeModeGuard() { _mm_setcsr(saved_); }
#else
IeeeModeGuard::IeeeModeGuard() : saved_(0) {}
IeeeModeGuard::~IeeeModeGuard() {}
#endif

}  // namespace jsma::cpu
