// parallel/watchdog.h — a deadline on every collective, so that a hung peer ends the job.
//
// MPI notices a rank that died, but not one that hangs (a deadlock, a stuck GPU, a lost node that
// keeps its sockets open); NCCL kernels wait for a dead peer forever. A CollectiveWatchdog runs one
// thread that wakes every `poll_interval`, and fires `on_expire` once when
//   - an operation registered with watch() is still pending after `timeout`, or
//   - the optional health check returns an error (NCCL: ncclCommGetAsyncError).
// The default on_expire is abort_world(), which ends every rank.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace ferry::parallel {

class CollectiveWatchdog {
 public:
  using Clock = std::chrono::steady_clock;
  // Returns a description of the problem, or nothing when healthy.
  using HealthCheck = std::function<std::optional<std::string>()>;
  // Returns true once the operation has completed (for work the host does not wait on).
  using DoneCheck = std::function<bool()>;
  using Expired = std::function<void(const std::string& why)>;

  struct Options {
    std::chrono::milliseconds timeout{std::chrono::seconds(300)};
    std::chrono::milliseconds poll_interval{std::chrono::milliseconds(100)};
    HealthCheck health;  // optional
    Expired on_expire;   // default: abort_world
  };

  explicit CollectiveWatchdog(Options options);
  ~CollectiveWatchdog();
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

  // Marks a blocking operation for as long as the guard lives.
  class Guard {
   public:
    Guard(CollectiveWatchdog* dog, uint64_t id) : dog_(dog), id_(id) {}
    Guard(Guard&& o) noexcept : dog_(o.dog_), id_(o.id_) { o.dog_ = nullptr; }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard();

   private:
    CollectiveWatchdog* dog_;
    uint64_t id_;
  };
  [[nodiscard]] Guard watch(std::string what);

  // Registers an asynchronous operation (e.g. enqueued on a CUDA stream); it stops counting once
  // `done` returns true. `done` is called from the watchdog thread.
  void watch_async(std::string what, DoneCheck done);

  // True once on_expire has been called (it is called at most once).
  bool fired() const;
  std::chrono::milliseconds timeout() const { return options_.timeout; }

 private:
  struct Pending {
    std::string what;
    Clock::time_point deadline;
    DoneCheck done;  // empty for guards: they are removed by their destructor
  };
  uint64_t add(std::string what, DoneCheck done);
  void remove(uint64_t id);
  void run();
  // Returns why the watchdog should fire, or nothing.
  std::optional<std::string> check(Clock::time_point now);

  Options options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::map<uint64_t, Pending> pending_;
  uint64_t next_id_ = 0;
  bool stopping_ = false;
  bool fired_ = false;
  std::thread thread_;
};

}  // namespace ferry::parallel
