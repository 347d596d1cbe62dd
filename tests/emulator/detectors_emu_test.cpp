// tests/emulator/detectors_emu_test.cpp — each detector and model of the emulator, on the small
// kernels of detector_kernels.cu that are right or wrong in one known way: shared-memory races
// within a warp (ordered by __syncwarp), across warps (ordered only by __syncthreads) and
// write-after-read; uninitialized shared reads; cp.async bytes that land only at the wait_group
// that retires their group (wrong data when only modelled, a fault when checked) and copies that
// outlive their thread; divergent barriers, deadlocks and shuffles an exited lane misses; shuffle
// semantics; out-of-bounds device and shared accesses and host pointers; 16-byte accesses off the
// grid; the launch limits a GPU enforces; the bank-conflict count. Each fault names the kernel,
// the thread and the address.
#include <cmath>

#include "tests/emulator/detector_kernels.h"
#include "tests/emulator/emu_test_util.h"

namespace ferry::test {
namespace {

namespace k = ferry::emu_test;
using emu::FaultKind;

class Detectors : public Emulated {
 protected:
  static emu::Fault run(const std::function<void()>& f) {
    f();
    cudaGetLastError();
    emu::Fault fault = emu::last_fault();
    emu::reset();
    return fault;
  }
};

TEST_F(Detectors, SharedRaceWithinAWarpIsOrderedBySyncwarp) {
  DeviceBuffer<float> out(64);
  const auto race = run([&] { k::neighbour_exchange(out.get(), 0, 32); });
  EXPECT_EQ(race.kind, FaultKind::SharedRace) << race.message;
  EXPECT_NE(race.message.find("neighbour_exchange_kernel"), std::string::npos) << race.message;
  EXPECT_NE(race.message.find("thread (", race.message.find("thread (") + 1), std::string::npos)
      << "names both threads: " << race.message;
  EXPECT_NE(race.message.find("shared offset"), std::string::npos) << race.message;
  EXPECT_EQ(run([&] { k::neighbour_exchange(out.get(), 1, 32); }).kind, FaultKind::None);
  const auto v = out.download();
  for (int t = 0; t < 32; ++t) EXPECT_EQ(v[t], float((t + 1) % 32));
}

TEST_F(Detectors, SharedRaceAcrossWarpsNeedsTheBlockBarrier) {
  DeviceBuffer<float> out(64);
  EXPECT_EQ(run([&] { k::neighbour_exchange(out.get(), 3, 64); }).kind, FaultKind::SharedRace);
  EXPECT_EQ(run([&] { k::neighbour_exchange(out.get(), 2, 64); }).kind, FaultKind::None);
  const auto w = run([&] { k::write_after_read(out.get()); });
  EXPECT_EQ(w.kind, FaultKind::SharedRace) << w.message;
  EXPECT_NE(w.message.find("read by"), std::string::npos) << w.message;
}

TEST_F(Detectors, UninitializedSharedReadsFault) {
  DeviceBuffer<float> out(32);
  const auto f = run([&] { k::uninitialized(out.get()); });
  EXPECT_EQ(f.kind, FaultKind::UninitializedShared) << f.message;
  EXPECT_NE(f.message.find("which nothing in this block has written"), std::string::npos) << f.message;
}

TEST_F(Detectors, AsyncCopiesLandAtTheWaitThatRetiresTheirGroup) {
  std::vector<float> src(8);
  for (int i = 0; i < 8; ++i) src[i] = float(i + 1);
  DeviceBuffer<float> d_src(src), out(8);
  // wait_group 1 with two groups committed: the older has landed...
  EXPECT_EQ(run([&] { k::async_copy(out.get(), d_src.get(), 0); }).kind, FaultKind::None);
  auto v = out.download();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(v[i], float(i + 1));
  // ... the newer has not: reading it is a fault naming the in-flight copy,
  const auto f = run([&] { k::async_copy(out.get(), d_src.get(), 1); });
  EXPECT_EQ(f.kind, FaultKind::AsyncCopyInFlight) << f.message;
  // and, with the checks off, reads what shared memory held before (here: nothing written yet).
  emu::options().check_shared = false;
  out.poison();
  k::async_copy(out.get(), d_src.get(), 1);
  v = out.download();
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(std::isnan(v[i])) << "stale bytes, not the copy: " << v[i];
  emu::reset();
  EXPECT_EQ(run([&] { k::async_copy(out.get(), d_src.get(), 2); }).kind, FaultKind::None);
  v = out.download();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(v[i], float(i + 1));
  const auto exit = run([&] { k::async_copy(out.get(), d_src.get(), 3); });
  EXPECT_EQ(exit.kind, FaultKind::AsyncCopyInFlight) << exit.message;
  EXPECT_NE(exit.message.find("never waited for"), std::string::npos) << exit.message;
}

TEST_F(Detectors, DivergentBarriersDeadlocksAndExitedLanes) {
  DeviceBuffer<float> out(32);
  const auto d = run([&] { k::divergent_barrier(out.get()); });
  EXPECT_EQ(d.kind, FaultKind::BarrierDivergence) << d.message;
  EXPECT_NE(d.message.find("detector_kernels.cu:"), std::string::npos) << "names both barriers: " << d.message;
  EXPECT_EQ(run([&] { k::deadlock(out.get()); }).kind, FaultKind::Deadlock);
  const auto e = run([&] { k::exited_lane(out.get()); });
  EXPECT_EQ(e.kind, FaultKind::WarpDivergence) << e.message;
  EXPECT_NE(e.message.find("lane 3"), std::string::npos) << e.message;
}

TEST_F(Detectors, ShufflesFollowTheirDefinitions) {
  DeviceBuffer<int> out(160);
  k::shuffles(out.get());
  const auto v = out.download();
  for (int l = 0; l < 32; ++l) {
    EXPECT_EQ(v[l], l ^ 5);
    EXPECT_EQ(v[32 + l], l + 3 < 32 ? l + 3 : l);
    EXPECT_EQ(v[64 + l], l >= 2 ? l - 2 : l);
    EXPECT_EQ(v[96 + l], 7);
    EXPECT_EQ(v[128 + l], (l & ~7) | ((l ^ 1) & 7));
  }
}

TEST_F(Detectors, OutOfBoundsAndHostPointersFault) {
  DeviceBuffer<float> in(32), out(32);
  in.upload(std::vector<float>(32, 1.0f));
  EXPECT_EQ(run([&] { k::read(out.get(), in.get(), 32, 0); }).kind, FaultKind::None);
  const auto past = run([&] { k::read(out.get(), in.get(), 32, 1); });
  EXPECT_EQ(past.kind, FaultKind::OutOfBounds) << past.message;
  EXPECT_NE(past.message.find("past the end of allocation"), std::string::npos) << past.message;
  EXPECT_NE(past.message.find("thread (31,0,0)"), std::string::npos) << past.message;
  std::vector<float> host(64, 1.0f);
  const auto h = run([&] { k::read(out.get(), host.data(), 32, 0); });
  EXPECT_EQ(h.kind, FaultKind::OutOfBounds) << h.message;
  EXPECT_NE(h.message.find("not device memory"), std::string::npos) << h.message;
  const auto s = run([&] { k::dynamic_shared(out.get(), 16, 64); });
  EXPECT_EQ(s.kind, FaultKind::OutOfBounds) << s.message;
  EXPECT_EQ(run([&] { k::dynamic_shared(out.get(), 15, 64); }).kind, FaultKind::None);
}

TEST_F(Detectors, SixteenByteAccessesOffTheGridFault) {
  DeviceBuffer<float> in(16), out(1);
  in.upload(std::vector<float>(16, 1.0f));
  EXPECT_EQ(run([&] { k::vector_read(out.get(), in.get() + 4); }).kind, FaultKind::None);
  const auto f = run([&] { k::vector_read(out.get(), in.get() + 2); });  // 8-byte aligned only
  EXPECT_EQ(f.kind, FaultKind::Misaligned) << f.message;
  EXPECT_NE(f.message.find("Vec4"), std::string::npos) << "names the vector type: " << f.message;
}

TEST_F(Detectors, LaunchLimitsOfTheDeviceAreEnforced) {
  DeviceBuffer<float> out(1);
  ASSERT_EQ(emu::last_fault().kind, FaultKind::None) << emu::last_fault().message;
  k::launch(out.get(), 65535, 1, 16);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << emu::last_fault().message;
  emu::options().dry_run = true;
  k::launch(out.get(), 65536, 1, 16);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_NE(std::string(cudaGetErrorString(cudaErrorInvalidConfiguration)).find("65535"), std::string::npos);
  k::launch(out.get(), 1, 2048, 16);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  k::launch(out.get(), 1, 1, 64 * 1024);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue) << "over 48 KB of dynamic shared memory without the attribute";
  EXPECT_EQ(k::allow_dynamic_shared(64 * 1024), cudaSuccess);
  k::launch(out.get(), 1, 1, 64 * 1024);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  k::bounded(out.get(), 128);
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchOutOfResources) << "over the kernel's __launch_bounds__";
  k::bounded(out.get(), 64);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST_F(Detectors, BankConflictDegrees) {
  DeviceBuffer<float> out(32);
  const std::pair<int, int> cases[] = {{1, 1}, {2, 2}, {32, 32}, {0, 1}};  // stride 0: one word, broadcast
  for (const auto& [stride, degree] : cases) {
    emu::reset();
    k::bank(out.get(), stride, 0);
    ASSERT_EQ(emu::launches().size(), 1u);
    EXPECT_EQ(emu::launches()[0].max_bank_conflict, degree) << "stride " << stride;
  }
  for (const auto& [stride, degree] : {std::pair{1, 1}, std::pair{2, 2}}) {
    emu::reset();
    k::bank(out.get(), stride, 1);
    EXPECT_EQ(emu::launches()[0].max_bank_conflict, degree) << "16-byte, stride " << stride;
  }
}

}  // namespace
}  // namespace ferry::test
