// Short waits for GNU OpenMP's threads while the machine is busy.
//
// libgomp's threads spin (300,000 iterations by default) before they sleep, except while the
// runtime manages more threads than the CPUs available to the process: then they spin 100
// iterations (libgomp manual, GOMP_SPINCOUNT). The spin count is read once, when the runtime
// loads, so a program that imported torch first cannot choose it. Beside other busy
// processes the long spin takes cores from threads with work and every parallel region waits
// for its last, preempted, thread (docs/scaling.md). A ShortWaits holds a parked team of
// `spare` threads in a thread of its own, so the runtime counts more threads than CPUs and
// every team of the process (torch's and the searches') waits briefly; release() ends the
// parked thread, whose pool the runtime then frees, and the long spin returns. Results never
// depend on it: only how threads wait.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

namespace jsma::cpu {

class ShortWaits {
 public:
  // Starts the parked team (spare threads besides the parking thread) and returns once the
  // runtime counts them. Without OpenMP it does nothing.
  explicit ShortWaits(int spare);
  ShortWaits(const ShortWaits&) = delete;
  ShortWaits& operator=(const ShortWaits&) = delete;
  ~ShortWaits();

  // Ends the parked thread and waits for it; idempotent.
  void release();
  bool active() const { return thread_.joinable(); }
  // Threads of the parked team, the parking thread included (0 when none was started).
  int threads() const { return threads_; }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool parked_ = false;
  bool released_ = false;
  int threads_ = 0;
  std::thread thread_;
};

}  // namespace jsma::cpu
