// tests/parallel/watchdog_test.cpp — the collective watchdog fires once for an operation that
// outlives its deadline or for a failed health check, and never for work that finishes in time.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "parallel/watchdog.h"

using namespace ferry::parallel;
using namespace std::chrono_literals;

namespace {

struct Recorder {
  std::mutex mutex;
  std::vector<std::string> reasons;
  CollectiveWatchdog::Expired callback() {
    return [this](const std::string& why) {
      std::lock_guard<std::mutex> lock(mutex);
      reasons.push_back(why);
    };
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mutex);
    return reasons.size();
  }
};

CollectiveWatchdog::Options options(Recorder& r, std::chrono::milliseconds timeout) {
  CollectiveWatchdog::Options o;
  o.timeout = timeout;
  o.poll_interval = 5ms;
  o.on_expire = r.callback();
  return o;
}

}  // namespace

TEST(CollectiveWatchdog, OperationsThatFinishInTimeNeverFire) {
  Recorder r;
  {
    CollectiveWatchdog dog(options(r, 200ms));
    for (int i = 0; i < 20; ++i) {
      auto guard = dog.watch("quick all_reduce");
      std::this_thread::sleep_for(2ms);
    }
    std::this_thread::sleep_for(300ms);  // longer than the timeout, with nothing pending
    EXPECT_FALSE(dog.fired());
  }
  EXPECT_EQ(r.count(), 0u);
}

TEST(CollectiveWatchdog, AnOperationPastItsDeadlineFiresOnceNamingIt) {
  Recorder r;
  CollectiveWatchdog dog(options(r, 50ms));
  {
    auto guard = dog.watch("MPI all_reduce (rank 0 of 2)");
    std::this_thread::sleep_for(250ms);
  }
  EXPECT_TRUE(dog.fired());
  ASSERT_EQ(r.count(), 1u);
  EXPECT_NE(r.reasons[0].find("MPI all_reduce (rank 0 of 2) did not complete within 0.05 s"), std::string::npos)
      << r.reasons[0];
}

TEST(CollectiveWatchdog, AsyncOperationsCountUntilTheirCompletionCheckSaysDone) {
  Recorder r;
  CollectiveWatchdog dog(options(r, 100ms));
  std::atomic<bool> done{false};
  dog.watch_async("NCCL all_gather", [&] { return done.load(); });
  std::this_thread::sleep_for(30ms);
  done = true;
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(r.count(), 0u);
  dog.watch_async("NCCL send", [] { return false; });
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(r.count(), 1u);
  EXPECT_NE(r.reasons[0].find("NCCL send"), std::string::npos);
}

TEST(CollectiveWatchdog, AFailedHealthCheckFiresWithItsMessage) {
  Recorder r;
  std::atomic<bool> broken{false};
  CollectiveWatchdog::Options o = options(r, 10s);
  o.health = [&]() -> std::optional<std::string> {
    if (broken) return std::string("NCCL asynchronous error: remote process exited");
    return std::nullopt;
  };
  CollectiveWatchdog dog(o);
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(r.count(), 0u);
  broken = true;
  std::this_thread::sleep_for(100ms);
  ASSERT_EQ(r.count(), 1u);
  EXPECT_EQ(r.reasons[0], "NCCL asynchronous error: remote process exited");
}
