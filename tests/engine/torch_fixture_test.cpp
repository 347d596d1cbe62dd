// tests/engine/torch_fixture_test.cpp — the CPU engine against an external reference: PyTorch's
// numbers for a tiny GPT-2 (tests/fixtures/gpt_tiny.{json,bin}, written by
// tools/make_gpt_fixture.py). Same weights loaded by parameter name into ferry's flat buffer, same
// batch; then logits, loss, every parameter gradient (fp64 and fp32 graphs), and five AdamW steps
// (each step's loss and gradient norm, the loss after them, the parameters they leave).
//
// Tolerances. The reference is PyTorch in fp64. An fp64 ferry graph differs from it only by the
// order of operations (measured: every logit and gradient within 1e-14), so 1e-10 catches any real
// difference. An fp32 graph carries fp32 rounding through 2 blocks (measured: ~1.5e-6 relative on
// logits, ~5e-8 absolute on gradients of ~1e-2), checked at 1e-5 relative to each element plus 1e-5
// of its tensor's largest magnitude (elements near zero by cancellation carry absolute, not
// relative, rounding). The fp32 AdamW losses sit within 4e-7 of PyTorch's fp64 run (checked at
// 1e-5); the parameter updates within 2e-5 relative L2 per tensor (checked at 2e-4). Mutations
// this catches, tried once by hand: layernorm eps 1e-6, GELU coefficient 0.0447, weight decay on
// a layernorm bias, eps inside AdamW's square root.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/autodiff.h"
#include "engine/backend.h"
#include "engine/executor.h"
#include "engine/model/gpt.h"
#include "engine/train/step.h"
#include "tests/support/gpt_fixture.h"
#include "tests/support/support.h"
#include "parallel/step_factory.h"

namespace ferry {
namespace {

using test::expect_scalar_near;
using test::expect_tensor_near;
using test::Fixture;
using test::FixtureTensor;
using test::fixture;
using test::fixture_batch_shape;
using test::fixture_config;
using test::fixture_path;
using test::flat_params;
using test::Tolerance;
namespace fs = std::filesystem;
using nlohmann::json;

// ---- forward and backward in one precision -----------------------------------------------------

template <typename T>
void check_forward_backward(const Fixture& f, DType dtype, Tolerance tol, double loss_rtol) {
  const GptConfig cfg = fixture_config(f);
  auto backend = make_cpu_backend();
  const std::vector<int32_t> tokens = f.ints("batch", "tokens");
  const std::vector<int32_t> targets = f.ints("batch", "targets");

  // Logits: a graph without the loss, whose output they are (the loss node overwrites them with
  // their gradient in a training pass).
  {
    GptGraph m = build_gpt(cfg, fixture_batch_shape(f, dtype, false));
    Executor ex(m.graph, *backend);
    const std::vector<double> flat = flat_params(m.graph, f);
    const std::vector<T> flat_t(flat.begin(), flat.end());
    scatter_to_storage(m.graph, flat_t.data(), ex.params().as<T>());
    ex.set_input(m.tokens, tokens.data(), tokens.size() * sizeof(int32_t));
    ex.forward(false);
    const Tensor logits = ex.tensor(m.logits);
    const FixtureTensor& ref = f.tensor("logits", "logits");
    ASSERT_EQ(std::vector<int64_t>(logits.shape.begin(), logits.shape.end()), ref.shape) << "logits shape";
    expect_tensor_near("logits", logits.as<T>(), f.floats("logits", "logits"), ref.shape, tol);
  }

  GptGraph m = build_gpt(cfg, fixture_batch_shape(f, dtype, true));
  derive_backward(m.graph);
  Executor ex(m.graph, *backend);
  const std::vector<double> flat = flat_params(m.graph, f);
  const std::vector<T> flat_t(flat.begin(), flat.end());
  scatter_to_storage(m.graph, flat_t.data(), ex.params().as<T>());
  ex.set_input(m.tokens, tokens.data(), tokens.size() * sizeof(int32_t));
  ex.set_input(m.targets, targets.data(), targets.size() * sizeof(int32_t));
  ex.zero_grads();
  ex.forward(true);
  ex.backward();
  expect_scalar_near("loss", ex.read_scalar(m.loss), f.manifest().at("loss").at("f64").get<double>(), loss_rtol);
  const T* grads = ex.grads().as<T>();
  for (const ParamInfo& p : m.graph.params) {
    if (!f.has("grad", p.name)) continue;  // reported by flat_params
    expect_tensor_near("grad " + p.name, grads + p.storage, f.floats("grad", p.name), f.tensor("grad", p.name).shape,
                       tol);
  }
}

// ---- tests -------------------------------------------------------------------------------------

TEST(TorchFixture, IsIntactAndDescribesFerrysGpt) {
  LOAD_FIXTURE_OR_FAIL(f);
  const GptConfig cfg = fixture_config(f);
  GptGraph m = build_gpt(cfg, fixture_batch_shape(f, DType::F32, true));
  const std::vector<double> flat = flat_params(m.graph, f);
  for (size_t i = 0; i < flat.size(); ++i) ASSERT_FALSE(std::isnan(flat[i])) << "flat parameter " << i << " unset";
  // The batch exercises what it should: repeated tokens (embedding-gradient accumulation) and
  // ignored targets.
  const auto tokens = f.ints("batch", "tokens");
  const auto targets = f.ints("batch", "targets");
  EXPECT_EQ(tokens.size(), targets.size());
  EXPECT_GT(std::count(targets.begin(), targets.end(), f.manifest().at("batch").at("ignore_index").get<int>()), 0);
  std::vector<int> seen(static_cast<size_t>(cfg.vocab_size));
  bool repeated = false;
  for (int32_t t : tokens) {
    ASSERT_TRUE(t >= 0 && t < cfg.vocab_size) << "token " << t;
    repeated |= ++seen[static_cast<size_t>(t)] > 1;
  }
  EXPECT_TRUE(repeated);
}

TEST(TorchFixture, CorruptOrMissingFixtureIsRejectedWithItsReason) {
  LOAD_FIXTURE_OR_FAIL(f);
  (void)f;
  test::TempDir dir;
  const fs::path src = fixture_path().parent_path();
  auto load_error = [&]() -> std::string {
    try {
      Fixture copy(dir.path() / "gpt_tiny.json");
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(load_error().find("cannot open the fixture manifest"), std::string::npos) << load_error();

  fs::copy_file(src / "gpt_tiny.json", dir.path() / "gpt_tiny.json");
  EXPECT_NE(load_error().find("cannot open the fixture blob"), std::string::npos) << load_error();

  fs::copy_file(src / "gpt_tiny.bin", dir.path() / "gpt_tiny.bin");
  EXPECT_EQ(load_error(), "");
  {
    std::fstream b(dir.path() / "gpt_tiny.bin", std::ios::in | std::ios::out | std::ios::binary);
    b.seekp(1000);
    b.put('\x7f');
  }
  EXPECT_NE(load_error().find("checksum"), std::string::npos) << load_error();

  fs::resize_file(dir.path() / "gpt_tiny.bin", 1000);
  EXPECT_NE(load_error().find("holds 1000 bytes"), std::string::npos) << load_error();

  std::ofstream(dir.path() / "gpt_tiny.json") << "{\"format\": \"ferry-gpt-fixture-1\", ";
  EXPECT_NE(load_error().find("not valid JSON"), std::string::npos) << load_error();
}

TEST(TorchFixture, Fp64ForwardAndEveryGradientMatch) {
  LOAD_FIXTURE_OR_FAIL(f);
  check_forward_backward<double>(f, DType::F64, {1e-10, 1e-10}, 1e-12);
}

TEST(TorchFixture, Fp32ForwardAndEveryGradientMatch) {
  LOAD_FIXTURE_OR_FAIL(f);
  check_forward_backward<float>(f, DType::F32, {1e-5, 1e-5}, 1e-6);
}

// Five AdamW steps on the fixture's batch at its constant learning rate: each step's loss and
// gradient norm (before clipping), the loss after the fifth update, and where every parameter ends.
TEST(TorchFixture, FiveAdamWStepsMatch) {
  LOAD_FIXTURE_OR_FAIL(f);
  const json& h = f.manifest().at("adamw");
  AdamWConfig cfg;
  cfg.beta1 = h.at("beta1").get<float>();
  cfg.beta2 = h.at("beta2").get<float>();
  cfg.eps = h.at("eps").get<float>();
  cfg.weight_decay = h.at("weight_decay").get<float>();
  cfg.grad_clip = h.at("grad_clip").get<float>();
  const float lr = h.at("lr").get<float>();
  const int steps = h.at("steps").get<int>();

  auto backend = make_cpu_backend();
  GptGraph m = build_gpt(fixture_config(f), fixture_batch_shape(f, DType::F32, true));
  const int tokens_id = m.tokens, targets_id = m.targets;
  const Graph shape_graph = m.graph;  // the runner takes the graph; keep the parameter table
  auto step_runner = ferry::parallel::make_local_runner(std::move(m.graph), *backend, cfg);
  ferry::parallel::Runner& step = *step_runner;
  const std::vector<double> init = flat_params(shape_graph, f);
  step.set_parameters(std::vector<float>(init.begin(), init.end()));
  Batch batch;
  batch.inputs = {{tokens_id, f.ints("batch", "tokens")}, {targets_id, f.ints("batch", "targets")}};

  const json& ref = f.manifest().at("train").at("f64");
  ASSERT_EQ(ref.at("losses").size(), static_cast<size_t>(steps));
  for (int s = 0; s < steps; ++s) {
    const StepResult r = step.train({batch}, lr);
    expect_scalar_near("step " + std::to_string(s + 1) + " loss", r.loss, ref.at("losses")[s].get<double>(), 1e-5);
    expect_scalar_near("step " + std::to_string(s + 1) + " grad norm", r.grad_norm,
                       ref.at("grad_norms")[s].get<double>(), 1e-5);
  }
  expect_scalar_near("loss after the last step", step.evaluate(batch), ref.at("loss_after").get<double>(), 1e-5);

  // Where the parameters end, per tensor as the relative L2 error of the update (trained − initial):
  // AdamW divides each gradient by its own running magnitude, so an element whose gradient is
  // rounding noise moves by ±lr in any precision; over a whole tensor those are few. The key bias
  // is all noise — a constant added to every key shifts each query's scores by one constant, which
  // softmax ignores, so its exact gradient is zero — and is left out.
  const std::vector<float> got = step.parameters();
  const std::vector<double> want = flat_params(shape_graph, f, "trained");
  const int64_t C = fixture_config(f).n_embd;
  for (const ParamInfo& p : shape_graph.params) {
    const bool qkv_bias = p.name.size() > 13 && p.name.compare(p.name.size() - 13, 13, "attn.qkv.bias") == 0;
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < p.numel; ++i) {
      if (qkv_bias && i >= C && i < 2 * C) continue;
      const size_t k = p.offset + static_cast<size_t>(i);
      const double upd_ref = want[k] - init[k];
      const double upd_got = static_cast<double>(got[k]) - init[k];
      diff += (upd_got - upd_ref) * (upd_got - upd_ref);
      norm += upd_ref * upd_ref;
    }
    const double rel = std::sqrt(diff / norm);
    EXPECT_LE(rel, 2e-4) << "parameter " << p.name << " after " << steps
                         << " AdamW steps: update differs from torch's by " << rel << " (relative L2)";
  }
}

}  // namespace
}  // namespace ferry
