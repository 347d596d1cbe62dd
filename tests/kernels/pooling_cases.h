// tests/kernels/pooling_cases.h — the token-pooling check both the gpu test (on a device) and the
// emulator test (tests/emulator, on the CPU) run: forward and backward against the CPU reference
// (kernels/pooling.h) over ragged lengths — full, one token, 0 and T + 5 (both clamped by the
// contract), then random — with exact zeros at every unpooled position, bitwise equal on a second
// run. Include inside `#if FERRY_WITH_CUDA`.
#pragma once
#include "kernels/pooling.h"
#include "tests/kernels/cuda_test_util.h"

namespace ferry::test {

struct PoolCase {
  int B, T, C, mode;
};

inline void check_pool_tokens(const PoolCase& p, uint64_t seed) {
  namespace cpu = ferry::kernels::cpu;
  namespace gpu = ferry::kernels::cuda;
  std::mt19937_64 rng(seed);
  const size_t BTC = size_t(p.B) * p.T * p.C, BC = size_t(p.B) * p.C;
  const auto x = random_bf16_values(BTC, rng, -2.0, 2.0), dy = random_bf16_values(BC, rng);
  std::uniform_int_distribution<int32_t> len(1, p.T);
  std::vector<int32_t> lengths(p.B);
  for (auto& l : lengths) l = len(rng);
  const int32_t edges[] = {p.T, 1, 0, p.T + 5};
  for (int b = 0; b < p.B && b < 4; ++b) lengths[b] = edges[b];
  std::vector<double> y_ref(BC), dx_ref(BTC);
  cpu::pool_tokens_forward(y_ref.data(), x.data(), lengths.data(), p.B, p.T, p.C, p.mode);
  cpu::pool_tokens_backward(dx_ref.data(), dy.data(), lengths.data(), p.B, p.T, p.C, p.mode);

  DeviceBuffer<bf16> dx_in(to_bf16(x)), ddy(to_bf16(dy)), dyo(BC), ddx(BTC);
  DeviceBuffer<int32_t> dlen(lengths);
  gpu::pool_tokens_forward(dyo.get(), dx_in.get(), dlen.get(), p.B, p.T, p.C, p.mode, nullptr);
  gpu::pool_tokens_backward(ddx.get(), ddy.get(), dlen.get(), p.B, p.T, p.C, p.mode, nullptr);
  const auto y = dyo.download(), dx = ddx.download();
  FERRY_EXPECT_CLOSE(to_double(y), y_ref, kBf16Tolerance);
  FERRY_EXPECT_CLOSE(to_double(dx), dx_ref, kBf16Tolerance);
  // Unpooled positions are exactly zero (not merely small): padding never receives a gradient.
  for (size_t i = 0; i < BTC; ++i)
    if (dx_ref[i] == 0.0) ASSERT_EQ(bf16_to_float(dx[i]), 0.0f) << "element " << i;

  dyo.poison();
  ddx.poison();
  gpu::pool_tokens_forward(dyo.get(), dx_in.get(), dlen.get(), p.B, p.T, p.C, p.mode, nullptr);
  gpu::pool_tokens_backward(ddx.get(), ddy.get(), dlen.get(), p.B, p.T, p.C, p.mode, nullptr);
  EXPECT_TRUE(bitwise_equal(dyo.download(), y));
  EXPECT_TRUE(bitwise_equal(ddx.download(), dx));
}

}  // namespace ferry::test
