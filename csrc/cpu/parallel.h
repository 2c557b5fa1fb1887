// Thin OpenMP helpers; without OpenMP everything runs on the calling thread.
#pragma once

#if defined(_OPENMP)
#include <omp.h>
#define JSMA_PRAGMA(x) _Pragma(#x)
#else
#define JSMA_PRAGMA(x)
#endif

namespace jsma::cpu {
inline int clamp_threads(int requested) { return requested < 1 ? 1 : requested; }
}  // namespace jsma::cpu
