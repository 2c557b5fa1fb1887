#include "cpu/short_waits.h"

#include "cpu/parallel.h"

namespace jsma::cpu {

ShortWaits::ShortWaits(int spare) {
#if defined(_OPENMP)
  const int team = clamp_threads(spare + 1);
  if (team < 2) return;  // one thread (or a forked child): no team to hold
  thread_ = std::thread([this, team] {
    // The team's threads join this thread's pool and stay in it, counted by the runtime,
    // until this thread ends.
    int joined = 0;
    JSMA_PRAGMA(omp parallel num_threads(team) reduction(+ : joined))
    { joined += 1; }
    std::unique_lock<std::mutex> lock(mutex_);
    threads_ = joined;
    parked_ = true;
    changed_.notify_all();
    changed_.wait(lock, [this] { return released_; });
  });
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return parked_; });
#else
  (void)spare;
#endif
}

void ShortWaits::release() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

ShortWaits::~ShortWaits() { release(); }

}  // namespace jsma::cpu
