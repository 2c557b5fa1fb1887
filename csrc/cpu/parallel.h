// Thin OpenMP helpers; without OpenMP everything runs on the calling thread.
#pragma once

#if defined(_OPENMP)
#include <omp.h>
#define JSMA_PRAGMA(x) _Pragma(#x)
#else
#define JSMA_PRAGMA(x)
#endif

namespace jsma::cpu {

// Most threads a kernel may ask for. The Python layer refuses larger values with a clear
// error; this bound only keeps a direct call from asking the OpenMP runtime for a team it
// cannot create (libgomp crashes instead of failing at ~100,000 threads).
inline constexpr int kMaxThreads = 1024;

// True in a forked child (see parallel.cpp): there, GNU OpenMP's thread pool is a copy of the
// parent's bookkeeping without its threads, and a multi-threaded region would wait for them
// forever.
bool openmp_unusable_after_fork();

// The team size a kernel uses: the request clamped to [1, kMaxThreads], and 1 where a
// multi-threaded region could hang (a forked child). Results never depend on it.
inline int clamp_threads(int requested) {
  if (requested < 1 || openmp_unusable_after_fork()) return 1;
  return requested > kMaxThreads ? kMaxThreads : requested;
}

}  // namespace jsma::cpu
