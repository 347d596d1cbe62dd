// tests/emulator/broken_variant_emu_test.cpp — the proof can fail. Built once against the real
// kernels (broken_variant_control_emu_test: no fault, right numbers) and once per deliberately
// broken variant of the real source (tests/emulator/variants/*.mutation, applied by the translator:
// a cp.async wait count off by one, a barrier removed, a tile row misaligned), each of which must
// be caught by the right detector with a message naming the kernel, the thread and the address.
// The scenarios run ferry's real wrappers on inputs where the correct kernels are right.
//
// Compile definitions: FERRY_EMU_SCENARIO_ATTENTION / _CROSS_ENTROPY (which wrappers run),
// FERRY_EMU_EXPECT ("None" for the control; else the fault kinds that catch the variant, '|'-separated),
// FERRY_EMU_WRONG_RESULT (1: with the shared-memory checks off, the variant's numbers are wrong —
// the model, not only the detector, sees the bug).
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "tests/emulator/emu_test_util.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

bool expected(const emu::Fault& f) {
  const std::string kinds = FERRY_EMU_EXPECT;
  if (kinds == "None") return f.kind == emu::FaultKind::None;
  size_t begin = 0;
  while (begin <= kinds.size()) {
    const size_t end = std::min(kinds.find('|', begin), kinds.size());
    const std::string k = kinds.substr(begin, end - begin);
    if ((k == "AsyncCopyInFlight" && f.kind == emu::FaultKind::AsyncCopyInFlight) ||
        (k == "SharedRace" && f.kind == emu::FaultKind::SharedRace) ||
        (k == "Misaligned" && f.kind == emu::FaultKind::Misaligned))
      return true;
    begin = end + 1;
  }
  return false;
}

void check_fault(const emu::Fault& f, const std::string& kernel) {
  EXPECT_TRUE(expected(f)) << "expected " << FERRY_EMU_EXPECT << ", got " << emu::fault_kind_name(f.kind) << ": "
                           << f.message;
  if (f.kind == emu::FaultKind::None) return;
  EXPECT_NE(f.message.find(kernel), std::string::npos) << "names the kernel: " << f.message;
  EXPECT_NE(f.message.find("thread ("), std::string::npos) << "names the thread: " << f.message;
  EXPECT_TRUE(f.message.find("shared offset") != std::string::npos || f.message.find("allocation #") != std::string::npos)
      << "names the address: " << f.message;
  std::printf("caught: %s\n", f.message.c_str());
}

#if FERRY_EMU_SCENARIO_ATTENTION
// Causal, T = 200: four key tiles for the last query tile, so every double-buffering step and both
// wait counts run.
TEST_F(Emulated, AttentionForward) {
  const int B = 1, T = 200, NH = 1, HS = 64, C = NH * HS;
  std::mt19937_64 rng(emu_seed());
  const auto qkv = random_bf16_values(size_t(B) * T * 3 * C, rng, -2.0, 2.0);
  std::vector<double> out_ref(size_t(B) * T * C), lse_ref(size_t(B) * NH * T);
  cpu::attention_forward(out_ref.data(), lse_ref.data(), qkv.data(), nullptr, B, T, NH, HS, true);
  DeviceBuffer<bf16> d_qkv(to_bf16(qkv)), d_out(out_ref.size());
  DeviceBuffer<float> d_lse(lse_ref.size());
  const auto f = fault_of([&] { gpu::attention_forward(d_out.get(), d_lse.get(), d_qkv.get(), nullptr, B, T, NH, HS, true, nullptr); });
  check_fault(f, "attention_forward_kernel");
  if (f.kind == emu::FaultKind::None) FERRY_EXPECT_CLOSE(to_double(d_out.download()), out_ref, kBf16Tolerance);
#if FERRY_EMU_WRONG_RESULT
  emu::options().check_shared = false;
  d_out.poison();
  gpu::attention_forward(d_out.get(), d_lse.get(), d_qkv.get(), nullptr, B, T, NH, HS, true, nullptr);
  const double err = relative_error(to_double(d_out.download()), out_ref);
  EXPECT_GT(err, 0.1) << "with the checks off the variant's output should be wrong";
  std::printf("unchecked, the variant's output is off by %.3g (relative)\n", err);
#endif
}
#endif

#if FERRY_EMU_SCENARIO_CROSS_ENTROPY
TEST_F(Emulated, CrossEntropy) {
  const int N = 3, V = 3001;
  std::mt19937_64 rng(emu_seed());
  const auto logits = random_bf16_values(size_t(N) * V, rng, -6.0, 6.0);
  const std::vector<int32_t> targets{5, 1000, 3000};
  std::vector<double> losses_ref(N), dlogits_ref(logits.size());
  cpu::cross_entropy_forward_backward(losses_ref.data(), dlogits_ref.data(), logits.data(), targets.data(), N, V, 1.0,
                                      -100);
  DeviceBuffer<bf16> d_logits(to_bf16(logits)), d_dlogits(logits.size());
  DeviceBuffer<int32_t> d_targets(targets);
  DeviceBuffer<float> d_losses(N), d_mean(1);
  DeviceBuffer<unsigned char> ws(gpu::cross_entropy_workspace_bytes());
  const auto f = fault_of([&] {
    gpu::cross_entropy_forward_backward(d_losses.get(), d_mean.get(), d_dlogits.get(), d_logits.get(), d_targets.get(),
                                        N, V, 1.0f, -100, ws.get(), ws.size(), nullptr);
  });
  check_fault(f, "kernel");
  if (f.kind == emu::FaultKind::None) FERRY_EXPECT_CLOSE(to_double(d_losses.download()), losses_ref, kFp32Tolerance);
}
#endif

}  // namespace
}  // namespace ferry::test
