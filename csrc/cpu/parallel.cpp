// Fork safety of the CPU kernels.
//
// GNU OpenMP (libgomp, also the runtime PyTorch's wheels load) keeps a pool of worker threads
// per master thread and has no fork handling: after fork() the child has only the forking
// thread, yet the copied pool still lists the parent's workers, so the child's first
// multi-threaded parallel region waits for threads that do not exist (a hang, e.g. in a
// multiprocessing "fork" Pool or a DataLoader worker). A single-thread region does not use
// the pool and is safe.
//
// Options considered (docs/reliability.md): the LLVM runtime (libomp re-initialises itself in
// the child, but it would be a second OpenMP runtime beside torch's libgomp in one process,
// and wheels would have to bundle it); a thread pool of our own (fork-aware, but it replaces
// OpenMP's scheduling in every kernel); an at-fork handler after which the child's kernels
// run on one thread. We use the handler: a few lines, no cost per call in the parent, and
// forked workers usually run one per core anyway. Every forked child is treated so: whether
// the parent's OpenMP pool has workers cannot be asked (and the parent is practically never
// single-threaded: NumPy's BLAS starts its threads at import).
#include "cpu/parallel.h"

#include <atomic>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define JSMA_ATFORK 1
#endif

namespace jsma::cpu {
namespace {

// Set in the child of a fork; a grandchild inherits it with the stale pool it guards against.
std::atomic<bool> g_forked{false};

#if defined(JSMA_ATFORK)
void in_child() { g_forked.store(true, std::memory_order_relaxed); }

// Registered when the module is loaded, so that every later fork is seen, including forks
// after multi-threaded work of other libraries on the same OpenMP runtime (PyTorch).
[[maybe_unused]] const bool g_registered = pthread_atfork(nullptr, nullptr, &in_child) == 0;
#endif

}  // namespace

bool openmp_unusable_after_fork() { return g_forked.load(std::memory_order_relaxed); }

}  // namespace jsma::cpu
