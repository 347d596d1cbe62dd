// parallel/watchdog.cpp
#include "parallel/watchdog.h"

#include <vector>

#include "base/error.h"
#include "parallel/failure.h"

namespace ferry::parallel {

CollectiveWatchdog::CollectiveWatchdog(Options options) : options_(std::move(options)) {
  FERRY_CHECK(options_.timeout.count() > 0 && options_.poll_interval.count() > 0, "watchdog timeout ",
              options_.timeout.count(), " ms, poll ", options_.poll_interval.count(), " ms");
  if (!options_.on_expire) options_.on_expire = [](const std::string& why) { abort_world(why); };
  thread_ = std::thread([this] { run(); });
}

CollectiveWatchdog::~CollectiveWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

CollectiveWatchdog::Guard::~Guard() {
  if (dog_) dog_->remove(id_);
}

CollectiveWatchdog::Guard CollectiveWatchdog::watch(std::string what) { return Guard(this, add(std::move(what), {})); }

void CollectiveWatchdog::watch_async(std::string what, DoneCheck done) {
  FERRY_CHECK(static_cast<bool>(done), "watch_async needs a completion check");
  add(std::move(what), std::move(done));
}

bool CollectiveWatchdog::fired() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return fired_;
}

uint64_t CollectiveWatchdog::add(std::string what, DoneCheck done) {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t id = next_id_++;
  pending_.emplace(id, Pending{std::move(what), Clock::now() + options_.timeout, std::move(done)});
  return id;
}

void CollectiveWatchdog::remove(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  pending_.erase(id);
}

std::optional<std::string> CollectiveWatchdog::check(Clock::time_point now) {
  if (options_.health) {
    if (auto problem = options_.health()) return *problem;
  }
  for (auto it = pending_.begin(); it != pending_.end();) {
    Pending& p = it->second;
    if (p.done && p.done()) {
      it = pending_.erase(it);
      continue;
    }
    if (now >= p.deadline) {
      const double seconds = std::chrono::duration<double>(options_.timeout).count();
      return str_cat(p.what, " did not complete within ", seconds, " s (a peer rank is hung or dead)");
    }
    ++it;
  }
  return std::nullopt;
}

void CollectiveWatchdog::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, options_.poll_interval, [this] { return stopping_; });
    if (stopping_ || fired_) continue;
    if (auto why = check(Clock::now())) {
      fired_ = true;
      // on_expire usually never returns (abort_world); unlock so a test's callback may inspect us.
      lock.unlock();
      options_.on_expire(*why);
      lock.lock();
    }
  }
}

}  // namespace ferry::parallel
