// tests/engine/device_table_test.cpp — the segment table as the CUDA kernels read it
// (engine/optim/device_table.h): shard-relative segments and the counted norm ranges of a ZeRO-1
// shard. Hand-worked cases on a four-parameter graph (decayed, undecayed, frozen, decayed, with
// alignment gaps), then against the CPU optimizer's own table on a fine-tuning graph with frozen
// blocks, layer-wise rates and a parameter another rank owns: over every shard of 1, 2, 3 and 5
// ranks, the device ranges sum the CPU's norm, the device segments applied to shard-sized buffers
// update bitwise as the CPU's table does, and the shards' ranges together are the whole table's.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "engine/finetune/techniques.h"
#include "engine/model/heads.h"
#include "engine/optim/device_table.h"
#include "tests/finetune/finetune_graphs.h"

namespace ferry {
namespace {

using kernels::cuda::NormRange;

// Storage (kParamAlignment 64): w [0, 80) decayed, gap to 128; b [128, 138) undecayed, gap to 192;
// frozen [192, 256); v [256, 286) decayed. The parameters end at 286.
Graph four_params() {
  Graph g;
  g.add_param("w", {2, 40}, DType::F32, true, 0);
  g.add_param("b", {10}, DType::F32, false, 0);
  g.add_param("frozen", {64}, DType::F32, true, 0);
  g.add_param("v", {30}, DType::F32, true, 1);
  g.params[2].trainable = false;
  return g;
}

bool same(const AdamWSegment& a, const AdamWSegment& b) {
  return a.begin == b.begin && a.lr_scale == b.lr_scale && a.weight_decay == b.weight_decay;
}

void expect_segments(const DeviceTable& d, const std::vector<AdamWSegment>& want) {
  ASSERT_EQ(d.segments.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_TRUE(same(d.segments[i], want[i])) << "segment " << i << ": {" << d.segments[i].begin << ", "
                                              << d.segments[i].lr_scale << ", " << d.segments[i].weight_decay << "}";
}

void expect_ranges(const DeviceTable& d, const std::vector<NormRange>& want) {
  ASSERT_EQ(d.counted.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(d.counted[i].begin, want[i].begin) << "range " << i;
    EXPECT_EQ(d.counted[i].end, want[i].end) << "range " << i;
  }
}

TEST(DeviceTable, TheWholeBufferKeepsItsOffsetsAndMergesTheCountedRuns) {
  const Graph g = four_params();
  ASSERT_EQ(params_storage_end(g, 4), 286u);
  AdamWConfig cfg;
  const DeviceTable d = device_table(adamw_table(g, 4, {}, {0, 286}, cfg));
  EXPECT_EQ(d.n, 286u);
  expect_segments(d, {{0, 1, cfg.weight_decay}, {128, 1, 0}, {192, 0, 0}, {256, 1, cfg.weight_decay}});
  expect_ranges(d, {{0, 192}, {256, 286}});  // w and b (gaps included) merged; the frozen run not counted
  EXPECT_FALSE(d.counts_all);
}

TEST(DeviceTable, TwoShardsAreIndexedFromTheirOwnBegin) {
  const Graph g = four_params();
  AdamWConfig cfg;
  const ShardRange r0 = optimizer_shard(286, 2, 0), r1 = optimizer_shard(286, 2, 1);
  ASSERT_EQ(r0.end, 143u);
  const DeviceTable d0 = device_table(adamw_table(g, 4, {}, r0, cfg));
  EXPECT_EQ(d0.n, 143u);
  expect_segments(d0, {{0, 1, cfg.weight_decay}, {128, 1, 0}});
  expect_ranges(d0, {{0, 143}});
  EXPECT_TRUE(d0.counts_all);

  const DeviceTable d1 = device_table(adamw_table(g, 4, {}, r1, cfg));
  EXPECT_EQ(d1.n, 143u);  // [143, 286): b's tail and gap, the frozen run, v
  expect_segments(d1, {{0, 1, 0}, {49, 0, 0}, {113, 1, cfg.weight_decay}});
  expect_ranges(d1, {{0, 49}, {113, 143}});
  EXPECT_FALSE(d1.counts_all);
}

TEST(DeviceTable, ThePaddedLastShardCoversOnlyItsParameters) {
  const Graph g = four_params();
  AdamWConfig cfg;
  const ShardRange r2 = optimizer_shard(286, 3, 2);  // 96 per rank: [192, 288), two of padding
  ASSERT_EQ(r2.begin, 192u);
  ASSERT_EQ(r2.end, 288u);
  const DeviceTable d = device_table(adamw_table(g, 4, {}, r2, cfg));
  EXPECT_EQ(d.n, 94u);
  expect_segments(d, {{0, 0, 0}, {64, 1, cfg.weight_decay}});
  expect_ranges(d, {{64, 94}});
}

TEST(DeviceTable, AShardOfPaddingOnlyIsOneFrozenSegmentAndCountsNothing) {
  const Graph g = four_params();
  const DeviceTable d = device_table(adamw_table(g, 4, {}, {286, 290}, AdamWConfig{}));
  EXPECT_EQ(d.n, 0u);
  expect_segments(d, {{0, 0, 0}});
  EXPECT_TRUE(d.counted.empty());
  EXPECT_FALSE(d.counts_all);
}

TEST(DeviceTable, AParameterAnotherRankOwnsIsNotCounted) {
  const Graph g = four_params();
  AdamWConfig cfg;
  const DeviceTable d = device_table(adamw_table(g, 4, {true, false, true, true}, {0, 286}, cfg));
  expect_segments(d, {{0, 1, cfg.weight_decay}, {128, 1, 0}, {192, 0, 0}, {256, 1, cfg.weight_decay}});
  expect_ranges(d, {{0, 128}, {256, 286}});
}

// ---- against the CPU optimizer's table ----------------------------------------------------------

std::vector<float> random_values(size_t n, uint64_t seed, float lo, float hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// What the device step does with a shard, on the host: the norm over the counted ranges of the
// shard-relative gradients, and AdamW per device segment on buffers of the shard's size.
double device_norm_squared(const DeviceTable& d, const float* shard_grads) {
  double sq = 0;
  for (const NormRange& r : d.counted) sq += kernels::cpu::grad_norm_squared<float>(shard_grads + r.begin, r.end - r.begin);
  return sq;
}

void device_update(const DeviceTable& d, float* master, float* m, float* v, const float* grads, float lr, int step,
                   float grad_scale, const AdamWConfig& cfg) {
  for (size_t i = 0; i < d.segments.size(); ++i) {
    const AdamWSegment& s = d.segments[i];
    if (s.lr_scale == 0.0f) continue;  // the kernel writes a frozen segment back as read
    const size_t end = i + 1 < d.segments.size() ? d.segments[i + 1].begin : d.n;
    const kernels::cpu::AdamWHyper h{lr * s.lr_scale, cfg.beta1, cfg.beta2, cfg.eps, s.weight_decay, step, grad_scale};
    kernels::cpu::adamw_update(master + s.begin, m + s.begin, v + s.begin, grads + s.begin, end - s.begin, h);
  }
}

TEST(DeviceTable, EveryShardSumsAndUpdatesAsTheCpuOptimizersTable) {
  const Graph g = test::frozen_sentiment_graph();
  const int np = static_cast<int>(g.params.size());
  std::vector<bool> owned(static_cast<size_t>(np), true);
  owned[static_cast<size_t>(np) - 2] = false;  // a replica another TP rank counts
  AdamWConfig cfg;
  const size_t end = params_storage_end(g, np);
  const std::vector<float> p0 = random_values(end, 11, -1, 1), grads = random_values(end, 12, -0.5f, 0.5f);
  const DeviceTable whole = device_table(adamw_table(g, np, owned, {0, end}, cfg));

  for (int ranks : {1, 2, 3, 5}) {
    SCOPED_TRACE(std::to_string(ranks) + " ranks");
    std::vector<NormRange> joined;  // every shard's counted ranges, back at their storage offsets
    for (int r = 0; r < ranks; ++r) {
      SCOPED_TRACE("shard " + std::to_string(r));
      const ShardRange s = optimizer_shard(end, ranks, r);
      const AdamWTable t = adamw_table(g, np, owned, s, cfg);
      const DeviceTable d = device_table(t);
      ASSERT_EQ(d.n, t.end - s.begin);
      EXPECT_EQ(d.segments.front().begin, 0u) << "the kernel's table covers [0, n)";

      // The shard's buffers, as the device holds them: padded to the shard's size with zeros.
      std::vector<float> shard_grads(s.size(), 0.0f), master(s.size(), 0.0f);
      std::copy(grads.begin() + s.begin, grads.begin() + t.end, shard_grads.begin());
      std::copy(p0.begin() + s.begin, p0.begin() + t.end, master.begin());

      AdamW cpu(t, cfg);
      const double want_sq = cpu.norm_squared(grads.data());
      EXPECT_NEAR(device_norm_squared(d, shard_grads.data()), want_sq, 1e-12 * (want_sq + 1));

      std::vector<float> params = p0, m(s.size(), 0.0f), v(s.size(), 0.0f);
      for (int step = 1; step <= 2; ++step) {
        cpu.update(params.data(), grads.data(), 1e-2f, 0.75f);
        device_update(d, master.data(), m.data(), v.data(), shard_grads.data(), 1e-2f, step, 0.75f, cfg);
      }
      for (size_t i = 0; i < d.n; ++i) {
        ASSERT_EQ(master[i], params[s.begin + i]) << "element " << s.begin + i;
        ASSERT_EQ(m[i], cpu.m()[i]) << "first moment " << s.begin + i;
        ASSERT_EQ(v[i], cpu.v()[i]) << "second moment " << s.begin + i;
      }
      for (size_t i = d.n; i < s.size(); ++i) EXPECT_EQ(master[i], 0.0f) << "padding " << s.begin + i << " was written";

      for (const NormRange& x : d.counted) {
        const NormRange at{x.begin + s.begin, x.end + s.begin};
        if (!joined.empty() && joined.back().end == at.begin)
          joined.back().end = at.end;
        else
          joined.push_back(at);
      }
    }
    ASSERT_EQ(joined.size(), whole.counted.size()) << "the shards' ranges together are the whole table's";
    for (size_t i = 0; i < joined.size(); ++i) {
      EXPECT_EQ(joined[i].begin, whole.counted[i].begin) << "range " << i;
      EXPECT_EQ(joined[i].end, whole.counted[i].end) << "range " << i;
    }
  }
}

}  // namespace
}  // namespace ferry
