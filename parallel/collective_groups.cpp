// parallel/collective_groups.cpp
#include "parallel/collective_groups.h"

#include <map>
#include <mutex>

#include "base/error.h"

namespace ferry::parallel {
namespace {
std::mutex g_mutex;
std::map<int, Communicator*>& table() {
  static std::map<int, Communicator*> t;
  return t;
}
int g_next = 1;
}  // namespace

Communicator& collective_group(int id) {
  std::lock_guard lock(g_mutex);
  auto it = table().find(id);
  FERRY_CHECK(it != table().end(), "collective group ", id, " is not registered (graph run without its runner?)");
  return *it->second;
}

GroupRegistration::GroupRegistration(Communicator& comm) {
  std::lock_guard lock(g_mutex);
  id_ = g_next++;
  table()[id_] = &comm;
}

GroupRegistration::~GroupRegistration() {
  std::lock_guard lock(g_mutex);
  table().erase(id_);
}

}  // namespace ferry::parallel
