// tests/parallel/layouts_mpi_test.cpp — every parallel layout trains exactly like one process.
//
// A tiny GPT (4 layers, 4 heads, 32 wide, vocabulary 64, T = 16) from one seed runs 5 AdamW steps of
// 4 micro-batches on each layout the world size allows; a single-process runner with the global
// batch (dp·B rows per micro-batch) runs the same steps in every rank. Losses must agree within
// 1e-5 relative and the parameters afterwards within 2e-6 (float sums in another order: the
// tensor-parallel all-reduces and the DP sums regroup them). ZeRO-1 must equal plain DP, and
// state saved at one layout (full flat parameters and AdamW moments) must load at another.
// ferry-mpi-ranks: 2 4 8
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/model/gpt.h"
#include "engine/train/step.h"
#include "parallel/step_factory.h"
#include "tests/parallel/mpi_world.h"

using namespace ferry;
using ferry::parallel::Runner;
using ferry::parallel::ParallelLayout;
using ferry::test::mpi_world;

namespace {

constexpr int kB = 2, kT = 16, kMicro = 4, kSteps = 5;
constexpr float kLr = 3e-3f;

// AdamW divides each moment by √v + eps: with the default eps (1e-8), a gradient element that is a
// near-cancelling sum (|g| ~ 1e-9 from terms ~ 1e-4) turns its last-bit differences into percent
// differences of its update. A larger eps keeps those elements' updates small, so that the test
// can hold the parameters to a tight tolerance; ordinary elements (|g| ≫ 1e-5) are unaffected.
AdamWConfig adamw() {
  AdamWConfig c;
  c.eps = 1e-5f;
  return c;
}

GptConfig tiny() {
  GptConfig c;
  c.preset = "layouts-test";
  c.n_layer = 4;
  c.n_head = 4;
  c.n_embd = 32;
  c.vocab_size = 64;
  c.max_seq_len = kT;
  return c;
}

// The input ids of the single-process graph, which key every layout's batches.
const GptGraph& gpt_ids() {
  static const GptGraph g = build_gpt(tiny(), GptBuildOptions{});
  return g;
}

std::vector<float> initial_parameters() {
  GptBuildOptions o;
  GptGraph g = build_gpt(tiny(), o);
  std::vector<double> init;
  init_gpt_params(g.graph, tiny(), 20240611, init);
  return {init.begin(), init.end()};
}

// Row `row` of micro-batch k of step s: T+1 tokens with some structure (a noisy counter), so that
// the loss moves.
std::vector<int32_t> sequence(int s, int k, int row) {
  std::mt19937 rng(static_cast<uint32_t>(1000003 * s + 7919 * k + row));
  std::vector<int32_t> seq(kT + 1);
  int32_t x = static_cast<int32_t>(rng() % 64);
  for (auto& t : seq) {
    t = x;
    x = (x + 1 + static_cast<int32_t>(rng() % 3 == 0 ? rng() % 5 : 0)) % 64;
  }
  return seq;
}

// Rows [first, first + rows) of the global micro-batch, as a Batch for the graph's input ids.
Batch batch_of(int s, int k, int first, int rows, int tokens_id, int targets_id) {
  std::vector<int32_t> tokens, targets;
  for (int r = first; r < first + rows; ++r) {
    const auto seq = sequence(s, k, r);
    tokens.insert(tokens.end(), seq.begin(), seq.end() - 1);
    targets.insert(targets.end(), seq.begin() + 1, seq.end());
  }
  Batch b;
  b.inputs.emplace_back(tokens_id, std::move(tokens));
  b.inputs.emplace_back(targets_id, std::move(targets));
  return b;
}

struct Trajectory {
  std::vector<double> losses;
  std::vector<float> params;
};

// Trains steps [first_step, first_step + n) on runner `r`; `dp_rank`/`dp` pick its rows.
Trajectory train(StepRunner& r, int tokens_id, int targets_id, int first_step, int n, int dp_rank, int rows) {
  Trajectory out;
  for (int s = first_step; s < first_step + n; ++s) {
    std::vector<Batch> micro;
    for (int k = 0; k < kMicro; ++k) micro.push_back(batch_of(s, k, dp_rank * rows, rows, tokens_id, targets_id));
    out.losses.push_back(r.train(micro, kLr).loss);
  }
  out.params = r.parameters();
  return out;
}

std::unique_ptr<Runner> local_step(int dp, Backend& backend) {
  GptBuildOptions o;
  o.batch = kB * dp;
  o.seq_len = kT;
  o.loss_scale = 1.0f / kMicro;
  GptGraph g = build_gpt(tiny(), o);
  return ferry::parallel::make_local_runner(std::move(g.graph), backend, adamw());
}

// The single-process run with the global batch of `dp` DP ranks (computed once per dp).
const Trajectory& reference(int dp) {
  static std::map<int, Trajectory> cache;
  auto it = cache.find(dp);
  if (it != cache.end()) return it->second;
  auto backend = make_cpu_backend();
  GptBuildOptions o;
  o.batch = kB * dp;
  o.seq_len = kT;
  GptGraph shape = build_gpt(tiny(), o);
  auto step = local_step(dp, *backend);
  step->set_parameters(initial_parameters());
  return cache[dp] = train(*step, shape.tokens, shape.targets, 0, kSteps, 0, kB * dp);
}

std::unique_ptr<Runner> parallel_step(ParallelLayout layout, Backend& backend) {
  auto step = ferry::parallel::make_gpt_runner(tiny(), kB, kT, kMicro, adamw(), layout, mpi_world(), backend);
  step->set_parameters(initial_parameters());
  return step;
}

Trajectory run_layout(ParallelLayout layout, Backend& backend) {
  auto step = parallel_step(layout, backend);
  const auto shard = step->data_shard();
  Trajectory r = train(*step, gpt_ids().tokens, gpt_ids().targets, 0, kSteps, shard.rank, kB);
  if (layout.bucket_elems < 4096 && shard.size > 1 && !layout.zero1)
    EXPECT_GT(step->buckets_reduced_during_backward(), 1) << "buckets should be reduced while backward runs";
  return r;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

void expect_matches(const Trajectory& got, const Trajectory& want, const std::string& what) {
  ASSERT_EQ(got.losses.size(), want.losses.size());
  for (size_t s = 0; s < got.losses.size(); ++s)
    EXPECT_NEAR(got.losses[s], want.losses[s], 1e-5 * std::fabs(want.losses[s])) << what << " step " << s + 1;
  EXPECT_LT(max_abs_diff(got.params, want.params), 2e-6) << what << ": parameters after " << kSteps << " steps";
  // The run must have learnt something, or equal losses prove little.
  EXPECT_LT(want.losses.back(), want.losses.front() - 0.05) << "the reference did not train";
}

struct Case {
  int tp, pp;
  bool zero1;
};

std::string name_of(const Case& c, int world) {
  return "tp" + std::to_string(c.tp) + "×dp" + std::to_string(world / (c.tp * c.pp)) + "×pp" + std::to_string(c.pp) +
         (c.zero1 ? " zero1" : "");
}

std::vector<Case> cases_for(int world) {
  switch (world) {
    case 2: return {{1, 1, false}, {2, 1, false}, {1, 2, false}, {1, 1, true}};
    case 4: return {{4, 1, false}, {1, 4, false}, {2, 1, false}, {1, 2, false}, {2, 2, false}, {2, 1, true}};
    case 8: return {{2, 2, false}, {2, 2, true}};
    default: return {};
  }
}

}  // namespace

TEST(ParallelLayouts, FiveStepsEqualOneProcess) {
  const int world = mpi_world().size();
  auto backend = make_cpu_backend();
  for (const Case& c : cases_for(world)) {
    ParallelLayout layout{c.tp, c.pp, c.zero1, 1000};  // small buckets: several per backward
    const int dp = world / (c.tp * c.pp);
    expect_matches(run_layout(layout, *backend), reference(dp), name_of(c, world));
  }
}

TEST(ParallelLayouts, Zero1EqualsPlainDataParallel) {
  const int world = mpi_world().size();
  auto backend = make_cpu_backend();
  const int tp = world >= 4 ? 2 : 1;
  const Trajectory plain = run_layout({tp, 1, false, 1000}, *backend);
  const Trajectory zero = run_layout({tp, 1, true, 1000}, *backend);
  for (size_t s = 0; s < plain.losses.size(); ++s) EXPECT_NEAR(zero.losses[s], plain.losses[s], 1e-6 * plain.losses[s]);
  EXPECT_LT(max_abs_diff(zero.params, plain.params), 1e-7);
}

// Train at one layout, carry the full flat state to another, and continue: the parameters arrive
// unchanged and the next step equals one process continuing from the same state.
TEST(ParallelLayouts, StateSavedAtOneLayoutResumesAtAnother) {
  const int world = mpi_world().size();
  if (world != 4 && world != 2) GTEST_SKIP() << "runs on 2 and 4 ranks";
  auto backend = make_cpu_backend();
  const ParallelLayout from = world == 4 ? ParallelLayout{1, 1, true, 1000} : ParallelLayout{1, 1, false, 1000};
  const ParallelLayout to = world == 4 ? ParallelLayout{2, 2, false, 1000} : ParallelLayout{2, 1, false, 1000};
  std::vector<float> saved_params;
  OptimizerState saved_state;
  {
    auto a = parallel_step(from, *backend);
    train(*a, gpt_ids().tokens, gpt_ids().targets, 0, 2, a->data_shard().rank, kB);
    saved_params = a->parameters();
    saved_state = a->optimizer_state();
  }
  ASSERT_EQ(saved_state.steps, 2);
  auto b = ferry::parallel::make_gpt_runner(tiny(), kB, kT, kMicro, adamw(), to, mpi_world(), *backend);
  b->set_parameters(saved_params);
  b->set_optimizer_state(saved_state);
  EXPECT_EQ(b->parameters(), saved_params);
  const OptimizerState back = b->optimizer_state();
  EXPECT_EQ(back.m, saved_state.m);
  EXPECT_EQ(back.v, saved_state.v);
  EXPECT_EQ(back.steps, 2);
  const Trajectory next = train(*b, gpt_ids().tokens, gpt_ids().targets, 2, 1, b->data_shard().rank, kB);

  const int dp_to = world / (to.tp * to.pp);
  auto ref = local_step(dp_to, *backend);
  ref->set_parameters(saved_params);
  ref->set_optimizer_state(saved_state);
  GptBuildOptions o;
  o.batch = kB * dp_to;
  o.seq_len = kT;
  GptGraph shape = build_gpt(tiny(), o);
  const Trajectory want = train(*ref, shape.tokens, shape.targets, 2, 1, 0, kB * dp_to);
  EXPECT_NEAR(next.losses[0], want.losses[0], 1e-5 * want.losses[0]);
  EXPECT_LT(max_abs_diff(next.params, want.params), 2e-6);
}

TEST(ParallelLayouts, EvaluationEqualsOneProcess) {
  const int world = mpi_world().size();
  auto backend = make_cpu_backend();
  const Case c = cases_for(world).front();
  auto step = parallel_step({c.tp, c.pp, false, 1000}, *backend);
  const int dp = world / (c.tp * c.pp);
  auto ref = local_step(dp, *backend);
  ref->set_parameters(initial_parameters());
  GptBuildOptions o;
  o.batch = kB * dp;
  o.seq_len = kT;
  GptGraph shape = build_gpt(tiny(), o);
  const double want = ref->evaluate(batch_of(9, 0, 0, kB * dp, shape.tokens, shape.targets));
  const double got = step->evaluate(batch_of(9, 0, step->data_shard().rank * kB, kB, gpt_ids().tokens, gpt_ids().targets));
  EXPECT_NEAR(got, want, 1e-5 * want) << name_of(c, world);
}
