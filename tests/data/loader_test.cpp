// tests/data/loader_test.cpp — the loader's stream: windows of T+1 tokens, each rank's disjoint slice
// of the global batch, seeded shuffles, epochs, and a saved position that continues exactly.
#include "engine/data/loader.h"

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "base/error.h"
#include "tests/support/support.h"

namespace ferry::data {
namespace {

namespace fs = std::filesystem;

// Token i of shard s is s*1000 + i, so the first token of a window says which shard and offset it
// came from and every window in the set is distinct.
struct ShardSet {
  test::TempDir dir;
  std::vector<size_t> sizes;

  explicit ShardSet(std::vector<size_t> shard_sizes, const std::string& split = "train") : sizes(std::move(shard_sizes)) {
    for (size_t s = 0; s < sizes.size(); ++s) {
      std::vector<uint16_t> tokens(sizes[s]);
      for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<uint16_t>(s * 1000 + i);
      char name[64];
      std::snprintf(name, sizeof(name), "fixture_%s_%06zu.bin", split.c_str(), s);
      write_shard(dir.path() / name, tokens);
    }
  }
  LoaderOptions options(int B, int T) const {
    LoaderOptions o;
    o.pattern = dir.path().string();
    o.B = B;
    o.T = T;
    return o;
  }
};

struct Batch {
  std::vector<int32_t> inputs, targets;
  bool operator==(const Batch&) const = default;
};

Batch next(TokenLoader& loader) {
  const size_t n = static_cast<size_t>(loader.options().B) * loader.options().T;
  Batch b{std::vector<int32_t>(n, -1), std::vector<int32_t>(n, -1)};
  loader.next_batch(b.inputs.data(), b.targets.data());
  return b;
}

std::vector<Batch> take(TokenLoader& loader, size_t steps) {
  std::vector<Batch> out;
  for (size_t i = 0; i < steps; ++i) out.push_back(next(loader));
  return out;
}

// First token of every row: the window's identity.
std::vector<int32_t> row_starts(const Batch& b, int T) {
  std::vector<int32_t> starts;
  for (size_t r = 0; r * T < b.inputs.size(); ++r) starts.push_back(b.inputs[r * T]);
  return starts;
}

TEST(Loader, SequentialWindowsOverlapByOneTokenAndTargetsAreShifted) {
  const ShardSet set({41, 30});  // T=8: 5 windows use all of shard 0; 3 in shard 1, its last 5 tokens unused
  TokenLoader loader(set.options(2, 8));
  EXPECT_EQ(loader.total_tokens(), 71u);
  EXPECT_EQ(loader.windows_per_epoch(), 8u);
  EXPECT_EQ(loader.steps_per_epoch(), 4u);
  const auto b = next(loader);
  for (int t = 0; t < 8; ++t) {
    EXPECT_EQ(b.inputs[t], t);
    EXPECT_EQ(b.targets[t], t + 1);
    EXPECT_EQ(b.inputs[8 + t], 8 + t);
    EXPECT_EQ(b.targets[8 + t], 8 + t + 1);
  }
  // Windows 2,3 of shard 0, then 4 of shard 0 and 0 of shard 1 (a batch may span shards).
  EXPECT_EQ(row_starts(next(loader), 8), (std::vector<int32_t>{16, 24}));
  EXPECT_EQ(row_starts(next(loader), 8), (std::vector<int32_t>{32, 1000}));
  EXPECT_EQ(row_starts(next(loader), 8), (std::vector<int32_t>{1008, 1016}));
  // Eight windows read: the next one is the first of epoch 1.
  EXPECT_EQ(loader.position().epoch, 1u);
  EXPECT_EQ(row_starts(next(loader), 8), (std::vector<int32_t>{0, 8}));
}

TEST(Loader, EpochWrapsToTheFirstWindowWithoutShuffle) {
  const ShardSet set({41, 30});
  TokenLoader loader(set.options(3, 8));  // 8 windows: batches of 3 straddle the epoch seam
  const auto first = take(loader, 3);
  EXPECT_EQ(row_starts(first[2], 8), (std::vector<int32_t>{1008, 1016, 0}));
  EXPECT_EQ(loader.position().epoch, 1u);
  EXPECT_EQ(row_starts(next(loader), 8), (std::vector<int32_t>{8, 16, 24}));
}

TEST(Loader, ShardsTooShortForAWindowAreSkipped) {
  const ShardSet set({5, 20, 8});  // T=8 needs 9 tokens: only shard 1 has windows (2 of them)
  TokenLoader loader(set.options(1, 8));
  EXPECT_EQ(loader.windows_per_epoch(), 2u);
  EXPECT_EQ(row_starts(next(loader), 8), std::vector<int32_t>{1000});
  EXPECT_EQ(row_starts(next(loader), 8), std::vector<int32_t>{1008});
  EXPECT_EQ(row_starts(next(loader), 8), std::vector<int32_t>{1000});
}

TEST(Loader, RanksGetDisjointSlicesWhoseUnionIsTheGlobalBatch) {
  const ShardSet set({300, 173, 410, 95});
  for (const bool shuffle : {false, true}) {
    const int B = 2, T = 16, dp = 3;
    auto global_opts = set.options(B * dp, T);
    global_opts.shuffle = shuffle;
    global_opts.seed = 1234;
    TokenLoader global(global_opts);
    std::vector<TokenLoader> ranks;
    for (int r = 0; r < dp; ++r) {
      auto o = set.options(B, T);
      o.dp_rank = r;
      o.dp_size = dp;
      o.shuffle = shuffle;
      o.seed = 1234;
      ranks.emplace_back(o);
    }
    // Enough steps to cross several epochs (58 windows per epoch, 6 per step, so some global
    // batches straddle the seam between two epochs).
    for (int step = 0; step < 40; ++step) {
      const uint64_t epoch_before = global.position().epoch;
      const auto g = next(global);
      const bool inside_one_epoch = global.position().epoch == epoch_before;
      std::set<int32_t> seen;
      for (int r = 0; r < dp; ++r) {
        const auto b = next(ranks[r]);
        const size_t n = static_cast<size_t>(B) * T;
        EXPECT_TRUE(std::equal(b.inputs.begin(), b.inputs.end(), g.inputs.begin() + r * n)) << "step " << step;
        EXPECT_TRUE(std::equal(b.targets.begin(), b.targets.end(), g.targets.begin() + r * n)) << "step " << step;
        for (int32_t s : row_starts(b, T)) seen.insert(s);
        EXPECT_EQ(ranks[r].position(), global.position());
      }
      // Across a seam the next epoch may legitimately revisit a window; inside one it may not.
      if (inside_one_epoch) {
        EXPECT_EQ(seen.size(), static_cast<size_t>(B * dp)) << "ranks overlapped at step " << step;
      }
    }
  }
}

TEST(Loader, ShuffledEpochVisitsEveryWindowOnceInASeededOrder) {
  const ShardSet set({300, 173, 410, 95});
  auto o = set.options(1, 16);
  o.shuffle = true;
  o.seed = 7;
  TokenLoader loader(o);
  const size_t W = loader.windows_per_epoch();
  ASSERT_EQ(W, 18u + 10u + 25u + 5u);
  std::vector<int32_t> epoch0, epoch1;
  for (size_t i = 0; i < W; ++i) epoch0.push_back(next(loader).inputs[0]);
  for (size_t i = 0; i < W; ++i) epoch1.push_back(next(loader).inputs[0]);
  // Each epoch is a permutation of the sequential windows.
  std::vector<int32_t> sequential;
  for (size_t s = 0; s < set.sizes.size(); ++s) {
    for (size_t k = 0; (k + 1) * 16 < set.sizes[s]; ++k) sequential.push_back(static_cast<int32_t>(s * 1000 + k * 16));
  }
  ASSERT_EQ(sequential.size(), W);
  auto sorted0 = epoch0, sorted1 = epoch1;
  std::sort(sorted0.begin(), sorted0.end());
  std::sort(sorted1.begin(), sorted1.end());
  EXPECT_EQ(sorted0, sequential);
  EXPECT_EQ(sorted1, sequential);
  EXPECT_NE(epoch0, sequential);
  EXPECT_NE(epoch0, epoch1) << "each epoch draws a new order";
  // A shard's windows stay together inside an epoch (shards are visited one at a time).
  std::vector<int32_t> shard_runs;
  for (int32_t w : epoch0) {
    if (shard_runs.empty() || shard_runs.back() != w / 1000) shard_runs.push_back(w / 1000);
  }
  EXPECT_EQ(shard_runs.size(), set.sizes.size());
}

TEST(Loader, SameSeedSameStreamOtherSeedOtherStream) {
  const ShardSet set({300, 173, 410, 95});
  auto o = set.options(4, 16);
  o.shuffle = true;
  o.seed = 99;
  TokenLoader a(o), b(o);
  const auto sa = take(a, 30);
  EXPECT_EQ(sa, take(b, 30));
  o.seed = 100;
  TokenLoader c(o);
  EXPECT_NE(sa, take(c, 30));
}

TEST(Loader, RestoredPositionContinuesExactly) {
  const ShardSet set({300, 173, 410, 95});
  for (const bool shuffle : {false, true}) {
    auto o = set.options(3, 16);
    o.shuffle = shuffle;
    o.seed = 5;
    // Save after 1, 7 (mid-epoch) and 20 steps (the second epoch: 58 windows, 3 per step).
    for (const size_t saved_at : {1u, 7u, 20u}) {
      TokenLoader uninterrupted(o);
      take(uninterrupted, saved_at);
      const std::string saved = nlohmann::json(uninterrupted.position()).dump();
      const auto expected = take(uninterrupted, 25);

      TokenLoader resumed(o);
      take(resumed, 2);  // somewhere else entirely
      resumed.restore(nlohmann::json::parse(saved).get<LoaderPosition>());
      EXPECT_EQ(take(resumed, 25), expected) << "shuffle " << shuffle << " saved at " << saved_at;
    }
  }
}

TEST(Loader, PositionRoundTripsThroughJson) {
  LoaderPosition p;
  p.epoch = 3;
  p.shard_slot = 2;
  p.window_slot = 17;
  p.T = 64;
  p.shuffle = true;
  p.seed = 0xFFFFFFFFFFFFFFFFull;
  p.shard_count = 4;
  p.total_tokens = 123456789012ull;
  EXPECT_EQ(nlohmann::json::parse(nlohmann::json(p).dump()).get<LoaderPosition>(), p);
}

TEST(Loader, MalformedPositionJsonIsAUserError) {
  auto j = nlohmann::json(LoaderPosition{});
  j.erase("window_slot");
  EXPECT_THROW(j.get<LoaderPosition>(), UserError);
  j = nlohmann::json(LoaderPosition{});
  j["epoch"] = "three";
  EXPECT_THROW(j.get<LoaderPosition>(), UserError);
  EXPECT_THROW(nlohmann::json::array().get<LoaderPosition>(), UserError);
}

TEST(Loader, PositionFromAnotherStreamIsRefused) {
  const ShardSet set({300, 173});
  auto o = set.options(2, 16);
  TokenLoader loader(o);
  take(loader, 3);
  const auto saved = loader.position();

  auto other_t = o;
  other_t.T = 8;
  EXPECT_THROW(TokenLoader(other_t).restore(saved), UserError);
  auto other_seed = o;
  other_seed.seed = 1;
  EXPECT_THROW(TokenLoader(other_seed).restore(saved), UserError);
  const ShardSet bigger({300, 174});
  EXPECT_THROW(TokenLoader(bigger.options(2, 16)).restore(saved), UserError);
  auto out_of_range = saved;
  out_of_range.window_slot = 1000;
  EXPECT_THROW(TokenLoader(o).restore(out_of_range), UserError);
  // Another B or dp_size is the same stream: allowed.
  auto other_b = o;
  other_b.B = 5;
  EXPECT_NO_THROW(TokenLoader(other_b).restore(saved));
}

TEST(Loader, ResetStartsOverForEachValidationPass) {
  const ShardSet set({300, 173, 410, 95}, "val");
  auto o = set.options(4, 16);
  o.split = "val";
  o.shuffle = true;
  o.seed = 3;
  TokenLoader loader(o);
  const auto first = take(loader, 5);
  take(loader, 17);
  loader.reset();
  EXPECT_EQ(take(loader, 5), first);
  EXPECT_EQ(loader.steps_per_epoch(), 58u / 4u);
}

TEST(Loader, BadOptionsAndTooLittleDataAreUserErrors) {
  const ShardSet set({40});
  EXPECT_THROW(TokenLoader(set.options(0, 8)), UserError);
  EXPECT_THROW(TokenLoader(set.options(1, 0)), UserError);
  auto bad_rank = set.options(1, 8);
  bad_rank.dp_size = 2;
  bad_rank.dp_rank = 2;
  EXPECT_THROW(TokenLoader{bad_rank}, UserError);
  // 40 tokens hold 4 windows of 9: not enough for a global batch of 5 rows.
  EXPECT_THROW(TokenLoader(set.options(5, 8)), UserError);
  EXPECT_NO_THROW(TokenLoader(set.options(4, 8)));
  // A folder without shards of the requested split.
  auto val = set.options(1, 8);
  val.split = "val";
  EXPECT_THROW(TokenLoader{val}, UserError);
}

TEST(Loader, ABadShardInTheSetIsNamed) {
  const ShardSet set({40, 40});
  std::vector<uint16_t> tokens(40, 1);
  tokens[3] = 60000;
  write_shard(set.dir.path() / "fixture_train_000002.bin", tokens);
  try {
    TokenLoader loader(set.options(1, 8));
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("fixture_train_000002.bin"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ferry::data
