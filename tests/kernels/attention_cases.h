// tests/kernels/attention_cases.h — the attention shapes every attention backend is checked at (ferry's
// kernels and cuDNN's against the same CPU reference), the helpers the tests read them with, and the
// check that ferry's kernels pass on a device (attention_gpu_test) and on the emulator
// (tests/emulator/attention_emu_test). Only meaningful in a CUDA build; include it inside
// `#if FERRY_WITH_CUDA`.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "tests/kernels/cuda_test_util.h"

namespace ferry::test {

struct AttentionCase {
  int B, T, NH, HS;
  bool causal;
  bool padded;
};

// Round and ragged T (1, 77, 200, 333), both head dims, causal and bidirectional, with and without
// key padding.
inline std::vector<AttentionCase> attention_cases() {
  return {{2, 128, 2, 64, true, false}, {2, 128, 2, 64, false, false}, {1, 77, 3, 64, true, false},
          {3, 77, 2, 128, true, true},  {2, 200, 2, 128, false, true}, {2, 1, 1, 64, true, false},
          {1, 333, 1, 128, true, false}, {4, 96, 2, 64, false, true}};
}

inline std::string attention_case_name(const ::testing::TestParamInfo<AttentionCase>& info) {
  const AttentionCase& c = info.param;
  return "B" + std::to_string(c.B) + "T" + std::to_string(c.T) + "H" + std::to_string(c.NH) + "D" +
         std::to_string(c.HS) + (c.causal ? "Causal" : "Full") + (c.padded ? "Padded" : "");
}

// The part (0 = Q, 1 = K, 2 = V) of a [B, T, 3C] tensor.
inline std::vector<double> qkv_part(const std::vector<double>& x, int which, int BT, int C) {
  std::vector<double> r(size_t(BT) * C);
  for (int i = 0; i < BT; ++i)
    for (int c = 0; c < C; ++c) r[size_t(i) * C + c] = x[size_t(i) * 3 * C + size_t(which) * C + c];
  return r;
}

// An attention implementation with kernels/attention.h's contract: ferry's flash kernels, or the
// engine's plain small-head kernels (engine/cuda/engine_kernels.h).
struct AttentionKernels {
  std::function<void(bf16* out, float* lse, const bf16* qkv, const int32_t* key_lengths, int B, int T, int NH, int HS,
                     bool causal)>
      forward;
  std::function<size_t(int B, int T, int NH)> workspace_bytes;
  std::function<void(bf16* dqkv, const bf16* dout, const bf16* qkv, const bf16* out, const float* lse,
                     const int32_t* key_lengths, int B, int T, int NH, int HS, bool causal, void* workspace,
                     size_t workspace_bytes)>
      backward;
};

inline AttentionKernels flash_attention_kernels() {
  namespace gpu = ferry::kernels::cuda;
  return {[](bf16* out, float* lse, const bf16* qkv, const int32_t* kl, int B, int T, int NH, int HS, bool causal) {
            gpu::attention_forward(out, lse, qkv, kl, B, T, NH, HS, causal, nullptr);
          },
          gpu::attention_backward_workspace_bytes,
          [](bf16* dqkv, const bf16* dout, const bf16* qkv, const bf16* out, const float* lse, const int32_t* kl, int B,
             int T, int NH, int HS, bool causal, void* ws, size_t ws_bytes) {
            gpu::attention_backward(dqkv, dout, qkv, out, lse, kl, B, T, NH, HS, causal, ws, ws_bytes, nullptr);
          }};
}

// out, lse, and dQ, dK, dV separately against the CPU reference in fp64 on the same bf16 inputs;
// with padding, batch row 1 sees no key at all; two backward runs are bitwise equal.
// `before_run(k)` runs before backward run k (0, 1): the emulator changes the block order there.
inline void check_attention(const AttentionCase& c, uint64_t seed, const AttentionKernels& kernels,
                            const std::function<void(int)>& before_run = {}) {
  namespace cpu = ferry::kernels::cpu;
  const auto [B, T, NH, HS, causal, padded] = c;
  const int C = NH * HS, BT = B * T;
  std::mt19937_64 rng(seed);
  const auto qkv = random_bf16_values(size_t(BT) * 3 * C, rng, -2.0, 2.0);
  const auto dout = random_bf16_values(size_t(BT) * C, rng);
  std::vector<int32_t> lengths(B);
  std::uniform_int_distribution<int32_t> len(1, T);
  for (int b = 0; b < B; ++b) lengths[b] = len(rng);
  if (padded && B > 1) lengths[1] = 0;  // a batch row with no visible key at all
  const int32_t* lengths_ptr = padded ? lengths.data() : nullptr;

  std::vector<double> out_ref(size_t(BT) * C), lse_ref(size_t(B) * NH * T), dqkv_ref(qkv.size());
  cpu::attention_forward(out_ref.data(), lse_ref.data(), qkv.data(), lengths_ptr, B, T, NH, HS, causal);
  cpu::attention_backward(dqkv_ref.data(), dout.data(), qkv.data(), out_ref.data(), lse_ref.data(), lengths_ptr, B, T,
                          NH, HS, causal);

  DeviceBuffer<bf16> d_qkv(to_bf16(qkv)), d_out(out_ref.size()), d_dout(to_bf16(dout));
  DeviceBuffer<float> d_lse(lse_ref.size());
  DeviceBuffer<int32_t> d_lengths(lengths);
  const int32_t* d_lengths_ptr = padded ? d_lengths.get() : nullptr;
  kernels.forward(d_out.get(), d_lse.get(), d_qkv.get(), d_lengths_ptr, B, T, NH, HS, causal);
  FERRY_EXPECT_CLOSE(to_double(d_out.download()), out_ref, kBf16Tolerance);
  // lse comes from fp32 arithmetic on exact bf16 products.
  FERRY_EXPECT_CLOSE(to_double(d_lse.download()), lse_ref, kFp32Tolerance);

  const size_t ws_bytes = kernels.workspace_bytes(B, T, NH);
  DeviceBuffer<unsigned char> ws(ws_bytes);
  std::vector<std::vector<bf16>> runs;
  for (int run = 0; run < 2; ++run) {
    if (before_run) before_run(run);
    DeviceBuffer<bf16> d_dqkv(qkv.size());
    kernels.backward(d_dqkv.get(), d_dout.get(), d_qkv.get(), d_out.get(), d_lse.get(), d_lengths_ptr, B, T, NH, HS,
                     causal, ws.get(), ws_bytes);
    runs.push_back(d_dqkv.download());
  }
  const auto dqkv = to_double(runs[0]);
  for (int which = 0; which < 3; ++which) {
    SCOPED_TRACE(which == 0 ? "dQ" : which == 1 ? "dK" : "dV");
    FERRY_EXPECT_CLOSE(qkv_part(dqkv, which, BT, C), qkv_part(dqkv_ref, which, BT, C), kBf16Tolerance);
  }
  EXPECT_TRUE(bitwise_equal(runs[0], runs[1])) << "attention backward is not reproducible";
}

}  // namespace ferry::test
