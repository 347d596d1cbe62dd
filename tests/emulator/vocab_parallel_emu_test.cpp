// tests/emulator/vocab_parallel_emu_test.cpp — the vocabulary-parallel kernels of tensor parallelism
// (kernels/cuda/embedding.cu: the sharded embedding forward and backward; kernels/cuda/cross_entropy.cu: the
// three cross-entropy passes) on the emulator, against the CPU references (kernels/cpu/), on fresh
// random inputs with the outputs poisoned first. The vocabulary is cut into R shards as the TP
// rewrite cuts it (the last shard ends in padding, or is all padding); the group's all-reduces
// between the passes are done here on the host, and the result must also equal the single-process
// cross-entropy over the whole row. Ignored targets, in place and forward-only are covered.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "tests/emulator/emu_test_util.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

struct EmbShape {
  int B, T, C, V, ranks;
  bool positions;
};

class VocabParallelEmbeddingEmu : public EmulatedP<EmbShape> {};

TEST_P(VocabParallelEmbeddingEmu, ForwardAndBackwardOfEveryShardMatchReferenceAndShardsMakeTheWholeTable) {
  const auto [B, T, C, V, R, positions] = GetParam();
  std::mt19937_64 rng(emu_seed());
  const int rows = (V + R - 1) / R;
  const auto wte = random_bf16_values(size_t(rows) * R * C, rng);
  const auto wpe = random_bf16_values(size_t(T) * C, rng);
  std::uniform_int_distribution<int32_t> tok(0, V - 1);
  std::vector<int32_t> tokens(size_t(B) * T);
  // Every third position holds one id (runs longer than a 32-position chunk in the bigger shapes).
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = i % 3 == 0 ? V - 1 : tok(rng);
  std::vector<double> whole(size_t(B) * T * C, 0.0);
  for (int r = 0; r < R; ++r) {
    const std::vector<double> shard(wte.begin() + size_t(r) * rows * C, wte.begin() + size_t(r + 1) * rows * C);
    // Positions are added by one rank only, as the rewrite's shard 0 would see them summed once.
    const bool with_pe = positions && r == 0;
    std::vector<double> ref(size_t(B) * T * C);
    cpu::vocab_parallel_embedding_forward<double>(ref.data(), tokens.data(), shard.data(),
                                                  with_pe ? wpe.data() : nullptr, B, T, C, r * rows, rows);
    DeviceBuffer<bf16> d_wte(to_bf16(shard)), d_wpe(to_bf16(wpe)), d_out(ref.size());
    DeviceBuffer<int32_t> d_tokens(tokens);
    d_out.poison();
    gpu::vocab_parallel_embedding_forward(d_out.get(), d_tokens.get(), d_wte.get(), with_pe ? d_wpe.get() : nullptr,
                                          B, T, C, r * rows, rows, nullptr);
    FERRY_EXPECT_CLOSE(to_double(d_out.download()), ref, kBf16Tolerance);
    for (size_t i = 0; i < whole.size(); ++i) whole[i] += ref[i];
  }
  // Backward, accumulating into random gradients: each shard's rows, then all shards side by side
  // equal the single-process backward of the whole table.
  const auto dout = random_bf16_values(size_t(B) * T * C, rng);
  const auto dwte0 = random_bf16_values(wte.size(), rng), dwpe0 = random_bf16_values(wpe.size(), rng);
  std::vector<double> dwte_all(wte.size());
  for (int r = 0; r < R; ++r) {
    const size_t at = size_t(r) * rows * C;
    std::vector<double> dwte(dwte0.begin() + at, dwte0.begin() + at + size_t(rows) * C), dwpe = dwpe0;
    const bool with_pe = positions && r == 0;
    cpu::vocab_parallel_embedding_backward<double>(dwte.data(), with_pe ? dwpe.data() : nullptr, dout.data(),
                                                   tokens.data(), B, T, C, r * rows, rows);
    std::copy(dwte.begin(), dwte.end(), dwte_all.begin() + at);
    DeviceBuffer<bf16> d_dwte(to_bf16(std::vector<double>(dwte0.begin() + at, dwte0.begin() + at + dwte.size()))),
        d_dwpe(to_bf16(dwpe0)), d_dout(to_bf16(dout));
    DeviceBuffer<int32_t> d_tokens(tokens);
    DeviceBuffer<unsigned char> ws(gpu::vocab_parallel_embedding_backward_workspace_bytes(B, T, C, rows));
    gpu::vocab_parallel_embedding_backward(d_dwte.get(), with_pe ? d_dwpe.get() : nullptr, d_dout.get(),
                                           d_tokens.get(), B, T, C, r * rows, rows, ws.get(), ws.size(), nullptr);
    FERRY_EXPECT_CLOSE(to_double(d_dwte.download()), dwte, kBf16Tolerance);
    if (with_pe) FERRY_EXPECT_CLOSE(to_double(d_dwpe.download()), dwpe, kBf16Tolerance);
  }
  std::vector<double> dwte_one = dwte0, dwpe_one = dwpe0;
  cpu::embedding_backward<double>(dwte_one.data(), dwpe_one.data(), dout.data(), tokens.data(), B, T, C,
                                  rows * R);
  FERRY_EXPECT_CLOSE(dwte_all, dwte_one, kFp32Tolerance);

  // The shards' sum is the single-process embedding.
  std::vector<double> one(whole.size());
  if (positions) {
    cpu::embedding_forward<double>(one.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
    FERRY_EXPECT_CLOSE(whole, one, kFp32Tolerance);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, VocabParallelEmbeddingEmu,
                         ::testing::Values(EmbShape{2, 5, 8, 13, 2, true}, EmbShape{1, 7, 16, 33, 3, false},
                                           EmbShape{3, 4, 24, 64, 4, true}, EmbShape{2, 3, 8, 5, 8, true},
                                           EmbShape{4, 50, 16, 40, 2, true}));

struct CeShape {
  int N, V, ranks;
};

class VocabParallelCrossEntropyEmu : public EmulatedP<CeShape> {};

// The group's two all-reduces, on the host.
template <typename T>
void all_reduce(std::vector<std::vector<T>>& per_rank, bool max) {
  for (size_t i = 0; i < per_rank[0].size(); ++i) {
    T acc = per_rank[0][i];
    for (size_t r = 1; r < per_rank.size(); ++r)
      acc = max ? std::max(acc, per_rank[r][i]) : acc + per_rank[r][i];
    for (auto& v : per_rank) v[i] = acc;
  }
}

TEST_P(VocabParallelCrossEntropyEmu, ShardedPassesMatchReferenceAndTheWholeRowLoss) {
  const auto [N, V, R] = GetParam();
  constexpr int32_t kIgnore = -100;
  const double scale = 0.5;
  std::mt19937_64 rng(emu_seed());
  const int L = (V + R - 1) / R;  // columns per shard, the padded vocabulary R·L ≥ V
  const auto logits = random_bf16_values(size_t(N) * L * R, rng, -6.0, 6.0);  // [N, R·L]
  std::uniform_int_distribution<int32_t> cls(0, V - 1);
  std::vector<int32_t> targets(N);
  for (int n = 0; n < N; ++n) targets[n] = n % 3 == 2 ? kIgnore : cls(rng);
  auto shard_of = [&](int r) {
    std::vector<double> s(size_t(N) * L);
    for (int n = 0; n < N; ++n)
      for (int l = 0; l < L; ++l) s[size_t(n) * L + l] = logits[size_t(n) * L * R + size_t(r) * L + l];
    return s;
  };
  auto valid_of = [&](int r) { return std::clamp(V - r * L, 0, L); };

  // Reference: the CPU passes in fp64 with the host all-reduces.
  std::vector<std::vector<double>> max_ref(R, std::vector<double>(N)), sums_ref(R, std::vector<double>(2 * N));
  for (int r = 0; r < R; ++r)
    cpu::vocab_parallel_cross_entropy_row_max<double>(max_ref[r].data(), shard_of(r).data(), N, valid_of(r), L);
  all_reduce(max_ref, true);
  for (int r = 0; r < R; ++r)
    cpu::vocab_parallel_cross_entropy_sums<double>(sums_ref[r].data(), shard_of(r).data(), targets.data(),
                                                   max_ref[r].data(), N, valid_of(r), L, r * L, kIgnore);
  all_reduce(sums_ref, false);

  // The device passes, each rank's statistics reduced on the host between them.
  std::vector<std::unique_ptr<DeviceBuffer<bf16>>> d_logits;  // not movable
  for (int r = 0; r < R; ++r) d_logits.push_back(std::make_unique<DeviceBuffer<bf16>>(to_bf16(shard_of(r))));
  DeviceBuffer<int32_t> d_targets(targets);
  std::vector<std::vector<float>> max_dev(R), sums_dev(R);
  for (int r = 0; r < R; ++r) {
    DeviceBuffer<float> d_max(N);
    d_max.poison();
    gpu::vocab_parallel_cross_entropy_row_max(d_max.get(), d_logits[r]->get(), N, valid_of(r), L, nullptr);
    max_dev[r] = d_max.download();
    if (valid_of(r) == 0)
      for (float m : max_dev[r]) EXPECT_EQ(m, -std::numeric_limits<float>::infinity()) << "an all-padding shard";
    else
      FERRY_EXPECT_CLOSE(to_double(max_dev[r]), [&] {
        std::vector<double> local(N);
        cpu::vocab_parallel_cross_entropy_row_max<double>(local.data(), shard_of(r).data(), N, valid_of(r), L);
        return local;
      }(), kFp32Tolerance);
  }
  all_reduce(max_dev, true);
  for (int r = 0; r < R; ++r) {
    DeviceBuffer<float> d_max(max_dev[r]), d_sums(2 * N);
    d_sums.poison();
    gpu::vocab_parallel_cross_entropy_sums(d_sums.get(), d_logits[r]->get(), d_targets.get(), d_max.get(), N,
                                           valid_of(r), L, r * L, kIgnore, nullptr);
    sums_dev[r] = d_sums.download();
  }
  all_reduce(sums_dev, false);
  FERRY_EXPECT_CLOSE(to_double(sums_dev[0]), sums_ref[0], kFp32Tolerance);

  // The whole-row loss of one process.
  std::vector<double> losses_one(N), dlogits_one(logits.size());
  const double mean_one = cpu::cross_entropy_forward_backward<double>(
      losses_one.data(), dlogits_one.data(), logits.data(), targets.data(), N, V, L * R, scale, kIgnore);

  DeviceBuffer<unsigned char> ws(gpu::cross_entropy_workspace_bytes());
  for (int r = 0; r < R; ++r) {
    const auto x = shard_of(r);
    std::vector<double> losses_ref(N), dlogits_ref(x.size());
    const double mean_ref = cpu::vocab_parallel_cross_entropy_finish<double>(
        losses_ref.data(), dlogits_ref.data(), x.data(), targets.data(), max_ref[r].data(), sums_ref[r].data(), N,
        valid_of(r), L, r * L, scale, kIgnore);
    FERRY_EXPECT_CLOSE(losses_ref, losses_one, kFp32Tolerance);
    EXPECT_NEAR(mean_ref, mean_one, 1e-9 * (1 + std::fabs(mean_one)));
    for (int n = 0; n < N; ++n)
      for (int l = 0; l < L; ++l)
        ASSERT_NEAR(dlogits_ref[size_t(n) * L + l], dlogits_one[size_t(n) * L * R + size_t(r) * L + l], 1e-12)
            << "rank " << r << " row " << n << " column " << l;

    DeviceBuffer<float> d_max(max_dev[r]), d_sums(sums_dev[r]), d_losses(N), d_mean(1);
    DeviceBuffer<bf16> d_dlogits(x.size());
    d_losses.poison();
    d_mean.poison();
    d_dlogits.poison();
    gpu::vocab_parallel_cross_entropy_finish(d_losses.get(), d_mean.get(), d_dlogits.get(), d_logits[r]->get(),
                                             d_targets.get(), d_max.get(), d_sums.get(), N, valid_of(r), L, r * L,
                                             float(scale), kIgnore, ws.get(), ws.size(), nullptr);
    FERRY_EXPECT_CLOSE(to_double(d_losses.download()), losses_ref, kFp32Tolerance);
    FERRY_EXPECT_CLOSE(to_double(d_mean.download()), std::vector<double>{mean_ref}, kFp32Tolerance);
    FERRY_EXPECT_CLOSE(to_double(d_dlogits.download()), dlogits_ref, kBf16Tolerance);

    // In place (the op writes dlogits over the logits), then forward only.
    d_losses.poison();
    gpu::vocab_parallel_cross_entropy_finish(d_losses.get(), d_mean.get(), d_logits[r]->get(), d_logits[r]->get(),
                                             d_targets.get(), d_max.get(), d_sums.get(), N, valid_of(r), L, r * L,
                                             float(scale), kIgnore, ws.get(), ws.size(), nullptr);
    FERRY_EXPECT_CLOSE(to_double(d_logits[r]->download()), dlogits_ref, kBf16Tolerance);
    FERRY_EXPECT_CLOSE(to_double(d_losses.download()), losses_ref, kFp32Tolerance);
    d_logits[r]->upload(to_bf16(x));
    d_losses.poison();
    gpu::vocab_parallel_cross_entropy_finish(d_losses.get(), d_mean.get(), nullptr, d_logits[r]->get(),
                                             d_targets.get(), d_max.get(), d_sums.get(), N, valid_of(r), L, r * L,
                                             float(scale), kIgnore, ws.get(), ws.size(), nullptr);
    FERRY_EXPECT_CLOSE(to_double(d_losses.download()), losses_ref, kFp32Tolerance);

    // A global label count (data parallelism beside TP: these rows are a share of a larger batch):
    // the mean and the gradient divide by it, i.e. are this batch's own scaled by local / global.
    int64_t local = 0;
    for (int32_t t : targets) local += t != kIgnore;
    const int64_t global = local + 7;
    const double share = double(local) / double(global);
    std::vector<double> losses_lc(N), dlogits_lc(x.size());
    const double mean_lc = cpu::vocab_parallel_cross_entropy_finish<double>(
        losses_lc.data(), dlogits_lc.data(), x.data(), targets.data(), max_ref[r].data(), sums_ref[r].data(), N,
        valid_of(r), L, r * L, scale, kIgnore, global);
    EXPECT_NEAR(mean_lc, mean_ref * share, 1e-12 * (1 + std::fabs(mean_ref)));
    for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(dlogits_lc[i], dlogits_ref[i] * share, 1e-15) << i;
    EXPECT_EQ(losses_lc, losses_ref);  // the per-row losses do not depend on it
    DeviceBuffer<int32_t> d_count(std::vector<int32_t>{int32_t(global)});
    d_losses.poison();
    d_mean.poison();
    d_dlogits.poison();
    gpu::vocab_parallel_cross_entropy_finish(d_losses.get(), d_mean.get(), d_dlogits.get(), d_logits[r]->get(),
                                             d_targets.get(), d_max.get(), d_sums.get(), N, valid_of(r), L, r * L,
                                             float(scale), kIgnore, ws.get(), ws.size(), nullptr, d_count.get());
    FERRY_EXPECT_CLOSE(to_double(d_mean.download()), std::vector<double>{mean_lc}, kFp32Tolerance);
    FERRY_EXPECT_CLOSE(to_double(d_dlogits.download()), dlogits_lc, kBf16Tolerance);
    FERRY_EXPECT_CLOSE(to_double(d_losses.download()), losses_lc, kFp32Tolerance);
  }
}

// 2 ranks over an odd vocabulary (the last shard ends in padding), 3 ranks, and 4 ranks over 9
// classes (3 per shard: the last shard is all padding); 1300 classes take more than a block per row.
INSTANTIATE_TEST_SUITE_P(Shapes, VocabParallelCrossEntropyEmu,
                         ::testing::Values(CeShape{5, 13, 2}, CeShape{4, 32, 3}, CeShape{3, 9, 4},
                                           CeShape{3, 1300, 2}));

}  // namespace
}  // namespace ferry::test
