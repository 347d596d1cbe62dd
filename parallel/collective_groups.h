// parallel/collective_groups.h — how a collective node in a graph finds its communicator and the
// queues its collectives are issued on.
//
// Graph nodes are plain data (an op name and numeric attributes), so a collective node names its
// group by a number, attr "group". A step runner registers the sub-communicators it made from the
// rank grid for as long as it lives (a GroupRegistration), and the kernels look them up here.
// A registration also holds the step's queues for its group (engine/train/step_queues.h), through
// which the kernels issue their collectives (parallel/device_collectives.h): ImmediateQueues until
// the runner sets others (on CUDA with a device communicator: the backend's stream and the
// communicator's, parallel/device_collectives.h: make_collective_queues), destroyed with the
// registration. Graphs built only to be planned (`ferry plan`) carry group numbers that were never
// registered.
#pragma once
#include <memory>

#include "engine/train/step_queues.h"
#include "parallel/communicator.h"

namespace ferry::parallel {

// Looks up a registered group; FERRY_CHECK when the number is unknown (a graph run without its runner).
Communicator& collective_group(int id);
StepQueues& collective_queues(int id);

class GroupRegistration {
 public:
  // `queues`: null gives ImmediateQueues.
  explicit GroupRegistration(Communicator& comm, std::unique_ptr<StepQueues> queues = nullptr);
  ~GroupRegistration();
  GroupRegistration(const GroupRegistration&) = delete;
  GroupRegistration& operator=(const GroupRegistration&) = delete;
  int id() const { return id_; }
  // Replaces the queues (the runner, once it knows its backend); not while a step runs.
  void set_queues(std::unique_ptr<StepQueues> queues);

 private:
  int id_;
  std::unique_ptr<StepQueues> queues_;
};

}  // namespace ferry::parallel
