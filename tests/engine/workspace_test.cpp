// tests/engine/workspace_test.cpp — kernel scratch ownership (engine/workspace.h), the rule the CUDA
// backend's captured step relies on, checked on the CPU: a step that installed its own workspace
// keeps the same block while other users of the backend make the shared one grow (and release its
// old block), so the addresses a captured CUDA graph recorded stay allocated; and no workspace grows
// while a capture is in progress.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "engine/workspace.h"

namespace ferry {
namespace {

// Host memory that remembers what it gave out and took back.
class RecordingBackend final : public Backend {
 public:
  Device device() const override { return Device::CPU; }
  std::string name() const override { return "recording"; }
  void* allocate(size_t bytes) override {
    void* p = std::malloc(bytes);
    allocated.push_back(p);
    return p;
  }
  void release(void* p) override {
    released.push_back(p);
    std::free(p);
  }
  void upload(void* d, const void* s, size_t n) override { std::memcpy(d, s, n); }
  void download(void* d, const void* s, size_t n) override { std::memcpy(d, s, n); }
  void zero(void* p, size_t n) override { std::memset(p, 0, n); }
  size_t capacity() const override { return size_t(1) << 40; }
  bool was_released(void* p) const { return std::find(released.begin(), released.end(), p) != released.end(); }
  std::vector<void*> allocated, released;
};

constexpr size_t kMiB = size_t(1) << 20;

TEST(Workspace, ACapturedStepKeepsItsScratchWhileOthersGrowTheSharedOne) {
  RecordingBackend backend;
  WorkspaceRouter router(backend);
  Workspace step_scratch(backend);
  void* recorded = nullptr;
  {
    // The step's eager warm-up sizes its scratch, then its capture records the address.
    const WorkspaceScope scope(router, step_scratch);
    recorded = router.get(3 * kMiB);
    router.set_capturing(true);
    EXPECT_EQ(router.get(kMiB), recorded);
    router.set_capturing(false);
  }
  // Evaluation, inference or another executor on the same backend, between two replays.
  void* small = router.get(kMiB);
  void* large = router.get(64 * kMiB);
  EXPECT_NE(large, recorded);
  EXPECT_TRUE(backend.was_released(small)) << "the shared block grows by releasing the old one";
  EXPECT_FALSE(backend.was_released(recorded)) << "memory a captured step points at was freed";
  {
    const WorkspaceScope scope(router, step_scratch);
    router.set_capturing(true);  // a re-capture finds the same block
    EXPECT_EQ(router.get(3 * kMiB), recorded);
    router.set_capturing(false);
  }
  EXPECT_EQ(step_scratch.data(), recorded);
  EXPECT_EQ(step_scratch.bytes(), 3 * kMiB);
}

TEST(Workspace, NoWorkspaceGrowsDuringACapture) {
  RecordingBackend backend;
  WorkspaceRouter router(backend);
  Workspace step_scratch(backend);
  const WorkspaceScope scope(router, step_scratch);
  router.get(kMiB);
  router.set_capturing(true);
  try {
    router.get(2 * kMiB);
    FAIL() << "a workspace grew during capture";
  } catch (const InternalError& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(2 * kMiB) + " bytes"), std::string::npos) << e.what();
  }
  EXPECT_EQ(backend.released.size(), 0u);
}

TEST(Workspace, ScopesNestAndRestoreTheSharedWorkspace) {
  RecordingBackend backend;
  WorkspaceRouter router(backend);
  Workspace a(backend), b(backend);
  void* shared = router.get(kMiB);
  {
    const WorkspaceScope outer(router, a);
    void* in_a = router.get(kMiB);
    EXPECT_NE(in_a, shared);
    {
      const WorkspaceScope inner(router, b);
      EXPECT_NE(router.get(kMiB), in_a);
      EXPECT_EQ(router.get(kMiB), b.data());
    }
    EXPECT_EQ(router.get(kMiB), in_a);
  }
  EXPECT_EQ(router.get(kMiB), shared);
  EXPECT_EQ(router.shared().data(), shared);
  router.release_shared();
  EXPECT_TRUE(backend.was_released(shared));
}

}  // namespace
}  // namespace ferry
