// parallel/collective_groups.cpp
#include "parallel/collective_groups.h"

#include <map>
#include <mutex>

#include "base/error.h"

namespace ferry::parallel {
namespace {
struct Group {
  Communicator* comm = nullptr;
  StepQueues* queues = nullptr;
};
std::mutex g_mutex;
std::map<int, Group>& table() {
  static std::map<int, Group> t;
  return t;
}
int g_next = 1;

const Group& find(int id) {
  auto it = table().find(id);
  FERRY_CHECK(it != table().end(), "collective group ", id, " is not registered (graph run without its runner?)");
  return it->second;
}
}  // namespace

Communicator& collective_group(int id) {
  std::lock_guard lock(g_mutex);
  return *find(id).comm;
}

StepQueues& collective_queues(int id) {
  std::lock_guard lock(g_mutex);
  return *find(id).queues;
}

GroupRegistration::GroupRegistration(Communicator& comm, std::unique_ptr<StepQueues> queues)
    : queues_(queues ? std::move(queues) : std::make_unique<ImmediateQueues>()) {
  std::lock_guard lock(g_mutex);
  id_ = g_next++;
  table()[id_] = {&comm, queues_.get()};
}

GroupRegistration::~GroupRegistration() {
  std::lock_guard lock(g_mutex);
  table().erase(id_);
}

void GroupRegistration::set_queues(std::unique_ptr<StepQueues> queues) {
  FERRY_CHECK(queues != nullptr, "null queues for collective group ", id_);
  std::lock_guard lock(g_mutex);
  queues_ = std::move(queues);
  table()[id_].queues = queues_.get();
}

}  // namespace ferry::parallel
