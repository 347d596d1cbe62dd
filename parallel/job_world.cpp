// parallel/job_world.cpp
#include "parallel/job_world.h"

namespace ferry::parallel {
namespace {
std::unique_ptr<Communicator>& slot() {
  static std::unique_ptr<Communicator> world;
  return world;
}
}  // namespace

Communicator& job_world() {
  if (!slot()) slot() = make_single_communicator();
  return *slot();
}

void set_job_world(std::unique_ptr<Communicator> world) { slot() = std::move(world); }

}  // namespace ferry::parallel
