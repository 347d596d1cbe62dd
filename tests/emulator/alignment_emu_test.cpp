// tests/emulator/alignment_emu_test.cpp — which kernel wrappers take any bf16 buffer and which need
// 16-byte aligned ones, proven on the emulator: a buffer 2 bytes and 8 bytes off the 16-byte grid
// (a graph that packs a 1-element bias before it, issue 13 item 2) makes layernorm, the embedding
// and the flash attention fault with the kernel, the thread and the address named — as a GPU
// would fault, with "misaligned address" — while GELU, add, cross-entropy, the gradient norm and the
// bias gradient take their scalar paths and stay right. AdamW checks its buffers on the host.
#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/gelu.h"
#include "kernels/layernorm.h"
#include "kernels/matmul.h"
#include "tests/emulator/emu_test_util.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;
using emu::FaultKind;

class AlignmentEmu : public EmulatedP<int> {
 protected:
  int shift() const { return GetParam(); }  // elements off the 16-byte grid
  void expect_misaligned(const emu::Fault& f, const std::string& kernel) {
    EXPECT_EQ(f.kind, FaultKind::Misaligned) << f.message;
    EXPECT_NE(f.message.find(kernel), std::string::npos) << f.message;
    EXPECT_NE(f.message.find("thread ("), std::string::npos) << f.message;
    EXPECT_NE(f.message.find("not 16-byte aligned"), std::string::npos) << f.message;
    EXPECT_NE(f.message.find("allocation #"), std::string::npos) << "the address is named: " << f.message;
  }
};

TEST_P(AlignmentEmu, LayernormNeeds16ByteAlignedRowsAndParameters) {
  const int N = 4, C = 64;
  std::mt19937_64 rng(emu_seed());
  DeviceBuffer<bf16> a(to_bf16(random_bf16_values(size_t(N) * C + 8, rng))), w(to_bf16(random_bf16_values(C + 8, rng))),
      b(to_bf16(random_bf16_values(C + 8, rng))), out(size_t(N) * C);
  DeviceBuffer<float> mean(N), rstd(N);
  expect_misaligned(fault_of([&] {
                      gpu::residual_layernorm_forward(nullptr, out.get(), mean.get(), rstd.get(), a.get(), nullptr,
                                                      w.get() + shift(), b.get(), N, C, nullptr);
                    }),
                    "layernorm_forward_kernel");
  DeviceBuffer<unsigned char> ws(gpu::layernorm_backward_workspace_bytes(N, C));
  DeviceBuffer<bf16> dinp(size_t(N) * C), dw(C), db(C);
  cudaMemset(mean.get(), 0, N * sizeof(float));
  cudaMemset(rstd.get(), 0, N * sizeof(float));
  expect_misaligned(fault_of([&] {
                      gpu::layernorm_backward(dinp.get(), dw.get(), db.get(), a.get() + shift(), nullptr, a.get(),
                                              w.get(), mean.get(), rstd.get(), N, C, ws.get(), ws.size(), nullptr);
                    }),
                    "layernorm_backward_kernel");
}

TEST_P(AlignmentEmu, EmbeddingNeeds16ByteAlignedTables) {
  const int B = 1, T = 4, C = 16, V = 9;
  std::mt19937_64 rng(emu_seed());
  DeviceBuffer<int32_t> tokens(std::vector<int32_t>{1, 2, 3, 4});
  DeviceBuffer<bf16> wte(to_bf16(random_bf16_values(size_t(V) * C + 8, rng))),
      wpe(to_bf16(random_bf16_values(size_t(T) * C, rng))), out(size_t(B) * T * C);
  expect_misaligned(fault_of([&] {
                      gpu::embedding_forward(out.get(), tokens.get(), wte.get() + shift(), wpe.get(), B, T, C, nullptr);
                    }),
                    "embedding_forward_kernel");
}

TEST_P(AlignmentEmu, FlashAttentionNeeds16ByteAlignedQkvForItsCpAsyncLoads) {
  const int B = 1, T = 8, NH = 1, HS = 64;
  std::mt19937_64 rng(emu_seed());
  DeviceBuffer<bf16> qkv(to_bf16(random_bf16_values(size_t(B) * T * 3 * NH * HS + 8, rng))), out(size_t(B) * T * HS);
  DeviceBuffer<float> lse(size_t(B) * NH * T);
  const auto f = fault_of([&] {
    gpu::attention_forward(out.get(), lse.get(), qkv.get() + shift(), nullptr, B, T, NH, HS, true, nullptr);
  });
  expect_misaligned(f, "attention_forward_kernel");
  EXPECT_NE(f.message.find("cp.async"), std::string::npos) << f.message;
}

TEST_P(AlignmentEmu, StreamingKernelsTakeTheScalarPathOffTheGrid) {
  const size_t n = 1001;
  std::mt19937_64 rng(emu_seed());
  const auto x = random_bf16_values(n + 8, rng, -3, 3);
  DeviceBuffer<bf16> d_x(to_bf16(x)), d_y(n + 8);
  std::vector<double> ref(n);
  cpu::gelu_forward(ref.data(), x.data() + shift(), n);
  gpu::gelu_forward(d_y.get() + shift(), d_x.get() + shift(), n, nullptr);
  const auto y = to_double(d_y.download());
  FERRY_EXPECT_CLOSE(std::vector<double>(y.begin() + shift(), y.begin() + shift() + long(n)), ref, kBf16Tolerance);

  // Cross-entropy over rows that start anywhere.
  const int N = 3, V = 40;
  const auto logits = random_bf16_values(size_t(N) * V + 8, rng, -4, 4);
  std::vector<int32_t> targets{1, 7, 39};
  std::vector<double> losses_ref(N), dlogits_ref(size_t(N) * V);
  cpu::cross_entropy_forward_backward(losses_ref.data(), dlogits_ref.data(), logits.data() + shift(), targets.data(),
                                      N, V, 1.0, -1);
  DeviceBuffer<bf16> d_logits(to_bf16(logits));
  DeviceBuffer<int32_t> d_targets(targets);
  DeviceBuffer<float> d_losses(N);
  DeviceBuffer<unsigned char> ws(gpu::cross_entropy_workspace_bytes());
  gpu::cross_entropy_forward_backward(d_losses.get(), nullptr, d_logits.get() + shift(), d_logits.get() + shift(),
                                      d_targets.get(), N, V, 1.0f, -1, ws.get(), ws.size(), nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_losses.download()), losses_ref, kFp32Tolerance);
  const auto dl = to_double(d_logits.download());
  FERRY_EXPECT_CLOSE(std::vector<double>(dl.begin() + shift(), dl.begin() + shift() + long(N) * V), dlogits_ref,
                     kBf16Tolerance);

  // The bias gradient over a dout that starts off the grid.
  const int rows = 33, OC = 16;
  const auto dout = random_bf16_values(size_t(rows) * OC + 8, rng);
  std::vector<double> db_ref(OC, 0.0);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < OC; ++c) db_ref[c] += dout[shift() + size_t(r) * OC + c];
  gpu::Matmul mm;
  DeviceBuffer<bf16> d_dout(to_bf16(dout)), d_db(std::vector<bf16>(OC, float_to_bf16(0.0f)));
  mm.backward(nullptr, nullptr, d_db.get(), d_dout.get() + shift(), nullptr, nullptr, nullptr, rows, 8, OC, nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_db.download()), db_ref, kBf16Tolerance);
}

TEST_P(AlignmentEmu, AdamWRefusesMisalignedBuffersOnTheHost) {
  const size_t n = 64;
  DeviceBuffer<float> master(n + 8), m(n), v(n);
  DeviceBuffer<bf16> params(n), grads(n);
  DeviceBuffer<gpu::AdamWSegment> segs(std::vector<gpu::AdamWSegment>{{0, 1.0f, 0.0f}});
  DeviceBuffer<gpu::AdamWStep> step(std::vector<gpu::AdamWStep>{{1e-3f, 1}});
  try {
    // fp32: 1 element is 4 bytes off, 2 are 8.
    gpu::adamw_update(master.get() + (shift() == 1 ? 1 : 2), params.get(), m.get(), v.get(), grads.get(), n, segs.get(), 1, step.get(),
                      0.9f, 0.95f, 1e-8f, nullptr, nullptr);
    FAIL() << "no error for a misaligned master buffer";
  } catch (const gpu::CudaError& e) {
    EXPECT_NE(std::string(e.what()).find("16-byte aligned"), std::string::npos) << e.what();
  }
}

// 1 element: 2 bytes off (every access misaligned); 4 elements: 8 bytes off, which only a 16-byte
// access notices.
INSTANTIATE_TEST_SUITE_P(Shifts, AlignmentEmu, ::testing::Values(1, 4));

}  // namespace
}  // namespace ferry::test
