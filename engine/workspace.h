// engine/workspace.h — scratch memory that kernels borrow for one launch, and who owns it.
//
// Kernels that need scratch (attention backward's row sums, embedding backward's sort, layernorm
// backward's partials, cross-entropy's 1/n_valid) run one after another on a backend's queue, so
// one block serves them all; it grows to the largest request, and growing releases the old block.
// That is only safe while no recorded work still points at the old block: a CUDA graph captured
// from a training step keeps the addresses its kernels were given, and replays them later. So a
// captured step owns its workspace: it installs its own (WorkspaceScope) around the work it
// captures, sized by its eager warm-up step, and other users of the backend (evaluation, inference,
// another step) get the backend's shared workspace, which may move whenever they need more.
// While a capture is in progress no workspace may grow (growing frees memory, which a capture
// cannot record): the request is an internal error naming the bytes.
//
// Device-agnostic (memory comes from a Backend), so the ownership rules are tested on the CPU.
#pragma once
#include <cstddef>

#include "engine/backend.h"

namespace ferry {

class Workspace {
 public:
  explicit Workspace(Backend& backend) : backend_(&backend) {}
  size_t bytes() const { return block_.size(); }
  void* data() const { return block_.data(); }

 private:
  friend class WorkspaceRouter;
  // At least `bytes`, rounded up to whole MiB; the block moves when it grows.
  void* get(size_t bytes, bool capturing);
  Backend* backend_;
  DeviceBuffer block_;
};

// What a backend's kernels ask for their scratch: the workspace installed by the innermost
// WorkspaceScope, else the backend's shared one.
class WorkspaceRouter {
 public:
  explicit WorkspaceRouter(Backend& backend) : shared_(backend) {}
  void* get(size_t bytes) { return (active_ ? active_ : &shared_)->get(bytes, capturing_); }
  void set_capturing(bool on) { capturing_ = on; }
  bool capturing() const { return capturing_; }
  const Workspace& shared() const { return shared_; }
  // Frees the shared block (a backend does this before it tears down its queue).
  void release_shared() { shared_.block_ = DeviceBuffer(); }

 private:
  friend class WorkspaceScope;
  Workspace shared_;
  Workspace* active_ = nullptr;
  bool capturing_ = false;
};

// Installs `own` as the workspace of every kernel that runs while it lives; restores the previous
// one after.
class WorkspaceScope {
 public:
  WorkspaceScope(WorkspaceRouter& router, Workspace& own) : router_(router), previous_(router.active_) {
    router.active_ = &own;
  }
  ~WorkspaceScope() { router_.active_ = previous_; }
  WorkspaceScope(const WorkspaceScope&) = delete;
  WorkspaceScope& operator=(const WorkspaceScope&) = delete;

 private:
  WorkspaceRouter& router_;
  Workspace* previous_;
};

}  // namespace ferry
