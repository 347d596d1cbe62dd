// tests/emulator/embedding_emu_test.cpp — token + position embedding (kernels/cuda/embedding.cu) on
// the emulator through its real wrappers (CUB's radix sort run by the emulator's stand-in), by the
// gpu test's check (tests/kernels/embedding_cases.h): forward and backward match the CPU reference for uniform ids and for a Zipf-like batch in which one token
// fills thousands of positions (real text: "the", ",", "."), and the backward is bitwise the same
// whatever order the blocks run in.
#include <map>

#include "tests/emulator/emu_test_util.h"
#include "tests/kernels/embedding_cases.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

class EmbeddingEmu : public EmulatedP<EmbeddingShape> {};

TEST_P(EmbeddingEmu, ForwardAndBackwardMatchCpuReference) {
  check_embedding(GetParam(), emu_seed(), [](int run) {
    emu::options().block_order = run == 0 ? emu::BlockOrder::Linear : emu::BlockOrder::Shuffled;
  });

  // Issue 13, item 7: no thread sums a long run of one id alone. The Zipf batch repeats token 0
  // B·T/3 times (2731 at 8×1024); real text repeats its commonest tokens hundreds of times. One
  // thread summing a run loads ~3 values per position; with runs cut in chunks of 32 the longest
  // chain is a chunk plus one partial per chunk to combine: a few values per 32 positions.
  std::mt19937_64 rng(emu_seed());
  std::map<int32_t, size_t> count;
  for (int32_t t : embedding_token_ids(GetParam(), rng)) count[t]++;
  size_t run = 0;
  for (const auto& [id, n] : count) run = std::max(run, n);
  uint64_t longest = 0;
  for (const auto& rec : emu::launches())
    if (rec.kernel.rfind("embedding_backward_wte", 0) == 0) longest = std::max(longest, rec.max_thread_loads);
  EXPECT_LE(longest, 128 + run / 4) << "a thread of the dwte kernels loads " << longest
                                    << " values one after another for a run of " << run;
}

// Real text, when asked for: FERRY_EMU_TOKENS names a token shard (llm.c layout, e.g. from `ferry
// data prepare`); its first 16 × 1024 ids go through the backward at GPT-2's V and C = 64, against
// the reference, and the longest run and per-thread load chain are printed. Skipped without it
// (CI has no prepared corpus; the Zipf case above stands in).
TEST_F(Emulated, EmbeddingBackwardOnCorpusIds) {
  const char* path = std::getenv("FERRY_EMU_TOKENS");
  if (!path) GTEST_SKIP() << "set FERRY_EMU_TOKENS to a token shard";
  const int B = 16, T = 1024, C = 64, V = 50257;
  std::vector<int32_t> tokens;
  if (FILE* f = std::fopen(path, "rb")) {
    int32_t header[256];
    std::vector<uint16_t> ids(size_t(B) * T);
    if (std::fread(header, sizeof(header), 1, f) == 1 && header[0] == 20240520 &&
        std::fread(ids.data(), 2, ids.size(), f) == ids.size())
      tokens.assign(ids.begin(), ids.end());
    std::fclose(f);
  }
  ASSERT_EQ(tokens.size(), size_t(B) * T) << path << ": not a shard of at least " << B * T << " tokens";
  std::map<int32_t, size_t> count;
  for (int32_t t : tokens) count[t]++;
  const auto top = std::max_element(count.begin(), count.end(), [](auto& a, auto& b) { return a.second < b.second; });
  std::mt19937_64 rng(emu_seed());
  const auto dout = random_bf16_values(size_t(B) * T * C, rng);
  std::vector<double> dwte_ref(size_t(V) * C, 0.0);
  cpu::embedding_backward(dwte_ref.data(), static_cast<double*>(nullptr), dout.data(), tokens.data(), B, T, C, V);
  DeviceBuffer<int32_t> d_tokens(tokens);
  DeviceBuffer<bf16> d_dout(to_bf16(dout)), d_dwte(to_bf16(std::vector<double>(size_t(V) * C)));
  DeviceBuffer<unsigned char> ws(gpu::embedding_backward_workspace_bytes(B, T, C, V));
  gpu::embedding_backward(d_dwte.get(), nullptr, d_dout.get(), d_tokens.get(), B, T, C, V, ws.get(), ws.size(), nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_dwte.download()), dwte_ref, kBf16Tolerance);
  uint64_t longest = 0;
  for (const auto& rec : emu::launches())
    if (rec.kernel.rfind("embedding_backward_wte", 0) == 0) longest = std::max(longest, rec.max_thread_loads);
  std::printf("%s: %d ids, %zu distinct, longest run id %d x %zu; longest per-thread load chain %llu\n", path, B * T,
              count.size(), top->first, top->second, static_cast<unsigned long long>(longest));
}

INSTANTIATE_TEST_SUITE_P(Shapes, EmbeddingEmu,
                         ::testing::Values(EmbeddingShape{2, 33, 64, 5}, EmbeddingShape{1, 20, 24, 1000},
                                           EmbeddingShape{3, 37, 200, 1000}, EmbeddingShape{1, 1, 8, 1},
                                           EmbeddingShape{8, 1024, 64, 2000, true}));

}  // namespace
}  // namespace ferry::test
