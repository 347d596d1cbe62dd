// tests/kernels/embedding_cases.h — the embedding check both the gpu test (on a device) and the
// emulator test (tests/emulator, on the CPU) run: forward and backward against the CPU reference
// (kernels/embedding.h), the backward twice, bitwise equal. Include inside `#if FERRY_WITH_CUDA`.
#pragma once
#include <functional>

#include "kernels/embedding.h"
#include "tests/kernels/cuda_test_util.h"

namespace ferry::test {

struct EmbeddingShape {
  int B, T, C, V;
  // Zipf(1) ids with token 0 forced at every third position (a run of B·T/3 equal ids: real text
  // repeats "the" and "," hundreds of times a batch), else uniform ids.
  bool zipf = false;
};

// The ids come first out of `rng`.
inline std::vector<int32_t> embedding_token_ids(const EmbeddingShape& s, std::mt19937_64& rng) {
  std::vector<int32_t> tokens(size_t(s.B) * s.T);
  if (!s.zipf) {
    std::uniform_int_distribution<int32_t> tok(0, s.V - 1);
    for (auto& t : tokens) t = tok(rng);
    return tokens;
  }
  std::vector<double> weights(static_cast<size_t>(s.V));
  for (int v = 0; v < s.V; ++v) weights[size_t(v)] = 1.0 / (v + 1);
  std::discrete_distribution<int32_t> zipf(weights.begin(), weights.end());
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = i % 3 == 0 ? 0 : zipf(rng);
  return tokens;
}

// `before_run(k)` runs before backward run k (0, 1): the emulator changes the block order there.
inline void check_embedding(const EmbeddingShape& shape, uint64_t seed, const std::function<void(int)>& before_run = {}) {
  namespace cpu = ferry::kernels::cpu;
  namespace gpu = ferry::kernels::cuda;
  const auto [B, T, C, V, zipf] = shape;
  std::mt19937_64 rng(seed);
  const auto tokens = embedding_token_ids(shape, rng);
  const auto wte = random_bf16_values(size_t(V) * C, rng), wpe = random_bf16_values(size_t(T) * C, rng);
  const auto dout = random_bf16_values(size_t(B) * T * C, rng);
  const auto dwte0 = random_bf16_values(size_t(V) * C, rng), dwpe0 = random_bf16_values(size_t(T) * C, rng);

  std::vector<double> out_ref(size_t(B) * T * C), dwte_ref = dwte0, dwpe_ref = dwpe0;
  cpu::embedding_forward(out_ref.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
  cpu::embedding_backward(dwte_ref.data(), dwpe_ref.data(), dout.data(), tokens.data(), B, T, C, V);

  DeviceBuffer<int32_t> d_tokens(tokens);
  DeviceBuffer<bf16> d_wte(to_bf16(wte)), d_wpe(to_bf16(wpe)), d_out(out_ref.size()), d_dout(to_bf16(dout));
  gpu::embedding_forward(d_out.get(), d_tokens.get(), d_wte.get(), d_wpe.get(), B, T, C, nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_out.download()), out_ref, kBf16Tolerance);

  const size_t ws_bytes = gpu::embedding_backward_workspace_bytes(B, T, C, V);
  DeviceBuffer<unsigned char> ws(ws_bytes);
  std::vector<std::vector<bf16>> runs;
  for (int run = 0; run < 2; ++run) {
    if (before_run) before_run(run);
    DeviceBuffer<bf16> d_dwte(to_bf16(dwte0)), d_dwpe(to_bf16(dwpe0));
    ws.poison();
    gpu::embedding_backward(d_dwte.get(), d_dwpe.get(), d_dout.get(), d_tokens.get(), B, T, C, V, ws.get(), ws_bytes,
                            nullptr);
    const auto dwte = d_dwte.download(), dwpe = d_dwpe.download();
    FERRY_EXPECT_CLOSE(to_double(dwte), dwte_ref, kBf16Tolerance);
    FERRY_EXPECT_CLOSE(to_double(dwpe), dwpe_ref, kBf16Tolerance);
    runs.push_back(dwte);
  }
  EXPECT_TRUE(bitwise_equal(runs[0], runs[1])) << "embedding backward is not reproducible";
}

}  // namespace ferry::test
