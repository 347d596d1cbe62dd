// tests/engine/adamw_table_test.cpp — the one AdamW segment table (engine/optim/adamw.h) and the one
// rule for frozen parameters.
//
// Before the table was shared, the host optimizer skipped frozen parameters while the CUDA step
// gave them learning rate 0 — so their moments still decayed there, and a block unfrozen later
// (gradual unfreezing carries the moments over) started from other moments on the GPU than on the
// CPU. Here: frozen parameters are lr_scale-0 segments that no update touches (values and moments
// bitwise as they were) and that the norm does not count; every ZeRO-1 shard's table agrees with
// the whole buffer's element by element, and sharded updates equal the unsharded one bitwise; the
// table the CUDA step uploads is this table (the kernel's own handling of a frozen segment is
// checked on the emulator, tests/kernels/adamw_cases.h).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/finetune/techniques.h"
#include "engine/model/heads.h"
#include "engine/optim/adamw.h"
#include "tests/finetune/finetune_graphs.h"

namespace ferry {
namespace {

struct Element {
  float lr_scale, weight_decay;
  bool counted;
};

// What the table says about every element of [0, end).
std::vector<Element> per_element(const AdamWTable& t) {
  std::vector<Element> out;
  for (size_t i = 0; i < t.segments.size(); ++i)
    for (size_t e = t.segments[i].begin; e < t.segment_end(i); ++e)
      out.push_back({t.segments[i].lr_scale, t.segments[i].weight_decay, t.counted[i] != 0});
  return out;
}

std::vector<float> random_values(size_t n, uint64_t seed, float lo, float hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// The alignment gaps between parameters hold zeros (engine/graph.h); random test data keeps that.
std::vector<float> zero_gaps(const Graph& g, std::vector<float> v) {
  std::vector<bool> in_param(v.size(), false);
  for (const ParamInfo& p : g.params)
    for (int64_t k = 0; k < p.storage_numel; ++k) in_param[p.storage + static_cast<size_t>(k)] = true;
  for (size_t i = 0; i < v.size(); ++i)
    if (!in_param[i]) v[i] = 0.0f;
  return v;
}

TEST(AdamWTable, FrozenParametersAreLrScaleZeroSegmentsThatCountNowhere) {
  const Graph g = test::frozen_sentiment_graph();
  AdamWConfig cfg;
  const int n = static_cast<int>(g.params.size());
  const AdamWTable t = adamw_table(g, n, {}, {0, params_storage_end(g, n)}, cfg);
  ASSERT_FALSE(t.segments.empty());
  EXPECT_EQ(t.segments.front().begin, 0u);
  const std::vector<Element> e = per_element(t);
  ASSERT_EQ(e.size(), params_storage_end(g, n)) << "the table covers the whole buffer";
  int frozen = 0, decayed = 0;
  for (const ParamInfo& p : g.params) {
    const Element& x = e[p.storage];
    if (!p.trainable) {
      ++frozen;
      EXPECT_EQ(x.lr_scale, 0.0f) << p.name;
      EXPECT_EQ(x.weight_decay, 0.0f) << p.name;
      EXPECT_FALSE(x.counted) << p.name;
    } else {
      EXPECT_EQ(x.lr_scale, p.lr_scale) << p.name;
      EXPECT_EQ(x.weight_decay, p.weight_decay ? cfg.weight_decay : 0.0f) << p.name;
      EXPECT_TRUE(x.counted) << p.name;
      decayed += p.weight_decay;
    }
    for (int64_t k = 0; k < p.storage_numel; ++k) {  // one parameter, one segment kind
      EXPECT_EQ(e[p.storage + k].lr_scale, x.lr_scale) << p.name;
      EXPECT_EQ(e[p.storage + k].weight_decay, x.weight_decay) << p.name;
    }
  }
  EXPECT_GT(frozen, 0) << "the graph should have frozen parameters";
  EXPECT_GT(decayed, 0);
  for (size_t i = 1; i < t.segments.size(); ++i) {  // merged: neighbours differ
    const bool same = t.segments[i].lr_scale == t.segments[i - 1].lr_scale &&
                      t.segments[i].weight_decay == t.segments[i - 1].weight_decay && t.counted[i] == t.counted[i - 1];
    EXPECT_FALSE(same) << "segments " << i - 1 << " and " << i << " should have merged";
  }
}

TEST(AdamWTable, AnUpdateLeavesFrozenValuesAndMomentsExactlyAsTheyWere) {
  const Graph g = test::frozen_sentiment_graph();
  AdamWConfig cfg;
  cfg.grad_clip = 0;
  AdamW opt(g, cfg);
  const size_t n = opt.shard().size();
  std::vector<float> params = random_values(n, 1, -1, 1), grads = zero_gaps(g, random_values(n, 2, -0.5f, 0.5f));
  opt.m() = random_values(n, 3, -0.1f, 0.1f);  // moments as a gradual unfreezing carries them over
  opt.v() = random_values(n, 4, 0.0f, 0.01f);
  const std::vector<float> p0 = params, m0 = opt.m(), v0 = opt.v();
  const double norm = opt.step(params.data(), grads.data(), 1e-2f);

  double trainable_sq = 0;
  for (const ParamInfo& p : g.params) {
    for (int64_t k = 0; k < p.storage_numel; ++k) {
      const size_t i = p.storage + static_cast<size_t>(k);
      if (p.trainable) {
        trainable_sq += double(grads[i]) * grads[i];
        EXPECT_NE(params[i], p0[i]) << p.name << " element " << k << " was not updated";
      } else {
        ASSERT_EQ(params[i], p0[i]) << "frozen " << p.name << " element " << k << " moved";
        ASSERT_EQ(opt.m()[i], m0[i]) << "frozen " << p.name << " first moment " << k << " moved";
        ASSERT_EQ(opt.v()[i], v0[i]) << "frozen " << p.name << " second moment " << k << " moved";
      }
    }
  }
  EXPECT_NEAR(norm, std::sqrt(trainable_sq), 1e-9 * std::sqrt(trainable_sq)) << "the norm counts trainable gradients only";
}

TEST(AdamWTable, Zero1ShardsAgreeWithTheWholeTableAndUpdateBitwiseTheSame) {
  const Graph g = test::frozen_sentiment_graph();
  AdamWConfig cfg;
  const int np = static_cast<int>(g.params.size());
  const size_t end = params_storage_end(g, np);
  const AdamWTable whole = adamw_table(g, np, {}, {0, end}, cfg);
  const std::vector<Element> want = per_element(whole);
  const std::vector<float> p0 = random_values(end, 5, -1, 1), grads = random_values(end, 6, -0.5f, 0.5f);

  AdamW one(whole, cfg);
  std::vector<float> p_one = p0;
  one.update(p_one.data(), grads.data(), 1e-2f, 0.75f);

  for (int ranks : {2, 3, 5}) {
    std::vector<float> p_sharded = p0;
    for (int r = 0; r < ranks; ++r) {
      const ShardRange s = optimizer_shard(end, ranks, r);
      const AdamWTable t = adamw_table(g, np, {}, s, cfg);
      EXPECT_EQ(t.range.begin, s.begin);
      const std::vector<Element> got = per_element(t);
      const size_t covered = t.end - std::min(t.end, s.begin);
      ASSERT_EQ(got.size(), covered) << ranks << " shards, shard " << r;
      for (size_t k = 0; k < got.size(); ++k) {
        const Element& w = want[s.begin + k];
        ASSERT_TRUE(got[k].lr_scale == w.lr_scale && got[k].weight_decay == w.weight_decay && got[k].counted == w.counted)
            << ranks << " shards, shard " << r << ", element " << s.begin + k;
      }
      AdamW shard(t, cfg);
      shard.update(p_sharded.data(), grads.data(), 1e-2f, 0.75f);
    }
    EXPECT_EQ(p_sharded, p_one) << ranks << " shards";
  }
}

TEST(AdamWTable, OwnedFlagsDecideWhatTheNormCounts) {
  const Graph g = test::frozen_sentiment_graph();
  const int np = static_cast<int>(g.params.size());
  std::vector<bool> owned(static_cast<size_t>(np), true);
  owned[static_cast<size_t>(np) - 1] = false;  // e.g. a replica another TP rank counts
  AdamWConfig cfg;
  const AdamW opt(adamw_table(g, np, owned, {0, params_storage_end(g, np)}, cfg), cfg);
  const std::vector<float> grads = zero_gaps(g, random_values(params_storage_end(g, np), 7, -1, 1));
  double want = 0;
  for (int p = 0; p < np; ++p) {
    const ParamInfo& info = g.params[p];
    if (!info.trainable || !owned[p]) continue;
    for (int64_t k = 0; k < info.storage_numel; ++k) want += double(grads[info.storage + k]) * grads[info.storage + k];
  }
  EXPECT_NEAR(opt.norm_squared(grads.data()), want, 1e-12 * want);
}

}  // namespace
}  // namespace ferry
