// engine/workspace.cpp
#include "engine/workspace.h"

#include "base/error.h"

namespace ferry {

void* Workspace::get(size_t bytes, bool capturing) {
  if (bytes <= block_.size()) return block_.data();
  FERRY_CHECK(!capturing, "kernel workspace must grow to ", bytes, " bytes during graph capture: the eager warm-up "
              "step should have sized it");
  constexpr size_t kMiB = size_t(1) << 20;
  block_ = DeviceBuffer();  // release first: the two blocks need not fit together
  block_ = DeviceBuffer(*backend_, (bytes + kMiB - 1) / kMiB * kMiB);
  return block_.data();
}

}  // namespace ferry
