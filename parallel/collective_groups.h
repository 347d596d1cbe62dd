// parallel/collective_groups.h — how a collective node in a graph finds its communicator.
//
// Graph nodes are plain data (an op name and numeric attributes), so a collective node names its
// group by a number, attr "group". A step runner registers the sub-communicators it made from the
// rank grid for as long as it lives (a GroupRegistration), and the kernels look them up here.
// Graphs built only to be planned (`ferry plan`) carry group numbers that were never registered.
#pragma once
#include "parallel/communicator.h"

namespace ferry::parallel {

// Looks up a registered group; FERRY_CHECK when the number is unknown (a graph run without its runner).
Communicator& collective_group(int id);

class GroupRegistration {
 public:
  explicit GroupRegistration(Communicator& comm);
  ~GroupRegistration();
  GroupRegistration(const GroupRegistration&) = delete;
  GroupRegistration& operator=(const GroupRegistration&) = delete;
  int id() const { return id_; }

 private:
  int id_;
};

}  // namespace ferry::parallel
