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
#include "tests/support/support.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- the fixture -------------------------------------------------------------------------------

struct FixtureTensor {
  std::string dtype;  // f32, f64, i32
  std::vector<int64_t> shape;
  size_t offset = 0;
  size_t bytes = 0;
};

uint64_t fnv1a64(const std::vector<char>& data) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (char c : data) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001B3ull;
  }
  return h;
}

// The manifest and blob, validated as a whole on load: any problem is one runtime_error naming the
// file and what is wrong with it.
class Fixture {
 public:
  explicit Fixture(const fs::path& manifest_path) {
    const std::string where = manifest_path.string();
    std::ifstream in(manifest_path);
    if (!in) fail(where, "cannot open the fixture manifest (regenerate: /usr/bin/python3 tools/make_gpt_fixture.py "
                         "tests/fixtures)");
    try {
      manifest_ = json::parse(in);
    } catch (const std::exception& e) {
      fail(where, std::string("not valid JSON: ") + e.what());
    }
    try {
      if (manifest_.at("format").get<std::string>() != "ferry-gpt-fixture-1")
        fail(where, "unknown format '" + manifest_.at("format").get<std::string>() + "'");
      const fs::path blob_path = manifest_path.parent_path() / manifest_.at("blob").get<std::string>();
      std::ifstream b(blob_path, std::ios::binary);
      if (!b) fail(blob_path.string(), "cannot open the fixture blob");
      blob_.assign(std::istreambuf_iterator<char>(b), std::istreambuf_iterator<char>());
      const size_t want = manifest_.at("blob_bytes").get<size_t>();
      if (blob_.size() != want)
        fail(blob_path.string(), "holds " + std::to_string(blob_.size()) + " bytes, the manifest says " +
                                     std::to_string(want) + " (truncated or stale)");
      std::ostringstream hex;
      hex << std::hex;
      hex.width(16);
      hex.fill('0');
      hex << fnv1a64(blob_);
      if (hex.str() != manifest_.at("blob_fnv1a64").get<std::string>())
        fail(blob_path.string(), "checksum " + hex.str() + " does not match the manifest's " +
                                     manifest_.at("blob_fnv1a64").get<std::string>() + " (corrupt or stale)");
      for (const json& e : manifest_.at("tensors")) {
        FixtureTensor t;
        t.dtype = e.at("dtype").get<std::string>();
        t.shape = e.at("shape").get<std::vector<int64_t>>();
        t.offset = e.at("offset").get<size_t>();
        t.bytes = e.at("bytes").get<size_t>();
        const std::string key = e.at("kind").get<std::string>() + ":" + e.at("name").get<std::string>();
        int64_t n = 1;
        for (int64_t d : t.shape) n *= d;
        const size_t elem = t.dtype == "f64" ? 8 : t.dtype == "f32" || t.dtype == "i32" ? 4 : 0;
        if (elem == 0) fail(where, key + ": unknown dtype '" + t.dtype + "'");
        if (t.bytes != static_cast<size_t>(n) * elem || t.offset + t.bytes > blob_.size())
          fail(where, key + ": " + std::to_string(t.bytes) + " bytes at " + std::to_string(t.offset) +
                          " do not fit its shape or the blob");
        if (!tensors_.emplace(key, t).second) fail(where, key + " appears twice");
      }
    } catch (const json::exception& e) {
      fail(where, std::string("malformed manifest: ") + e.what());
    }
  }

  const json& manifest() const { return manifest_; }
  bool has(const std::string& kind, const std::string& name) const { return tensors_.count(kind + ":" + name) != 0; }
  const FixtureTensor& tensor(const std::string& kind, const std::string& name) const {
    auto it = tensors_.find(kind + ":" + name);
    if (it == tensors_.end()) throw std::runtime_error("gpt fixture: no tensor " + kind + ":" + name);
    return it->second;
  }
  // Values as double (f32, f64) or int32 (i32); the fixture is little-endian, as is every machine
  // ferry builds for.
  std::vector<double> floats(const std::string& kind, const std::string& name) const {
    const FixtureTensor& t = tensor(kind, name);
    const char* p = blob_.data() + t.offset;
    std::vector<double> out;
    if (t.dtype == "f64") {
      out.resize(t.bytes / 8);
      std::memcpy(out.data(), p, t.bytes);
    } else if (t.dtype == "f32") {
      std::vector<float> f(t.bytes / 4);
      std::memcpy(f.data(), p, t.bytes);
      out.assign(f.begin(), f.end());
    } else {
      throw std::runtime_error("gpt fixture: " + kind + ":" + name + " is " + t.dtype + ", not floating point");
    }
    return out;
  }
  std::vector<int32_t> ints(const std::string& kind, const std::string& name) const {
    const FixtureTensor& t = tensor(kind, name);
    if (t.dtype != "i32") throw std::runtime_error("gpt fixture: " + kind + ":" + name + " is not i32");
    std::vector<int32_t> out(t.bytes / 4);
    std::memcpy(out.data(), blob_.data() + t.offset, t.bytes);
    return out;
  }

 private:
  [[noreturn]] static void fail(const std::string& file, const std::string& what) {
    throw std::runtime_error("gpt fixture " + file + ": " + what);
  }
  json manifest_;
  std::vector<char> blob_;
  std::map<std::string, FixtureTensor> tensors_;
};

fs::path fixture_path() { return test::source_dir() / "tests/fixtures/gpt_tiny.json"; }

// Loaded once per test program; a load failure fails every test with the loader's message.
const Fixture& fixture() {
  static const Fixture f(fixture_path());
  return f;
}

#define LOAD_FIXTURE_OR_FAIL(name)                                          \
  const Fixture* name##_ptr = nullptr;                                      \
  try {                                                                     \
    name##_ptr = &fixture();                                                \
  } catch (const std::exception& e) {                                       \
    FAIL() << e.what();                                                     \
  }                                                                         \
  const Fixture& name = *name##_ptr

GptConfig fixture_config(const Fixture& f) {
  const json& c = f.manifest().at("config");
  GptConfig g;
  g.preset = "torch-fixture";
  g.n_layer = c.at("n_layer").get<int>();
  g.n_head = c.at("n_head").get<int>();
  g.n_embd = c.at("n_embd").get<int>();
  g.vocab_size = c.at("vocab_size").get<int>();
  g.max_seq_len = c.at("max_seq_len").get<int>();
  g.tied_head = c.at("tied_head").get<bool>();
  g.causal = c.at("causal").get<bool>();
  return g;
}

GptBuildOptions fixture_batch_shape(const Fixture& f, DType dtype, bool with_loss) {
  const json& b = f.manifest().at("batch");
  GptBuildOptions o;
  o.batch = b.at("batch").get<int>();
  o.seq_len = b.at("seq_len").get<int>();
  o.ignore_index = b.at("ignore_index").get<int>();
  o.dtype = dtype;
  o.with_loss = with_loss;
  return o;
}

// Every ferry parameter taken from the fixture by name, into the graph's flat order; a name or shape
// that does not match is a failure naming it (and a fixture tensor ferry lacks is one too).
std::vector<double> flat_params(const Graph& g, const Fixture& f, const std::string& kind = "param") {
  std::vector<double> flat(static_cast<size_t>(g.param_count()), std::nan(""));
  size_t in_fixture = 0;
  for (const json& e : f.manifest().at("tensors"))
    if (e.at("kind") == kind) ++in_fixture;
  EXPECT_EQ(in_fixture, g.params.size()) << "the fixture's " << kind << " tensors and ferry's parameters differ in number";
  for (const ParamInfo& p : g.params) {
    if (!f.has(kind, p.name)) {
      ADD_FAILURE() << "ferry parameter " << p.name << " has no " << kind << " tensor in the fixture";
      continue;
    }
    const Shape& shape = g.values[p.value].shape;
    const std::vector<int64_t> want(shape.begin(), shape.end());
    if (f.tensor(kind, p.name).shape != want) {
      ADD_FAILURE() << p.name << ": ferry's shape " << shape_str(shape) << " differs from the fixture's";
      continue;
    }
    const std::vector<double> v = f.floats(kind, p.name);
    std::copy(v.begin(), v.end(), flat.begin() + static_cast<std::ptrdiff_t>(p.offset));
  }
  return flat;
}

// ---- comparison --------------------------------------------------------------------------------

std::string index_str(int64_t flat, const std::vector<int64_t>& shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::string s = "[";
  for (size_t d = 0; d < idx.size(); ++d) s += (d ? "," : "") + std::to_string(idx[d]);
  return s + "]";
}

// |got - want| ≤ rtol·|want| + atol_of_max·max|want| for every element; on failure one message
// naming the tensor, how many elements deviate, and the worst of them by index and value.
struct Tolerance {
  double rtol;
  double atol_of_max;
};

template <typename G>
void expect_tensor_near(const std::string& what, const G* got, const std::vector<double>& want,
                        const std::vector<int64_t>& shape, Tolerance tol) {
  double max_abs = 0;
  for (double w : want) max_abs = std::max(max_abs, std::abs(w));
  const double atol = tol.atol_of_max * max_abs;
  int64_t bad = 0, worst = -1;
  double worst_excess = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = static_cast<double>(got[i]);
    const double limit = tol.rtol * std::abs(want[i]) + atol;
    const double err = std::abs(g - want[i]);
    if (!(err <= limit)) {  // NaN fails too
      ++bad;
      const double excess = std::isnan(err) ? INFINITY : err / std::max(limit, 1e-300);
      if (worst < 0 || excess > worst_excess) {
        worst = static_cast<int64_t>(i);
        worst_excess = excess;
      }
    }
  }
  if (bad) {
    const size_t w = static_cast<size_t>(worst);
    ADD_FAILURE() << what << ": " << bad << " of " << want.size() << " elements deviate; worst "
                  << what << index_str(worst, shape) << ": ferry " << static_cast<double>(got[w]) << " vs torch "
                  << want[w] << " (|diff| " << std::abs(static_cast<double>(got[w]) - want[w]) << " > tolerance "
                  << tol.rtol * std::abs(want[w]) + atol << ")";
  }
}

void expect_scalar_near(const std::string& what, double got, double want, double rtol) {
  EXPECT_LE(std::abs(got - want), rtol * std::abs(want))
      << what << ": ferry " << got << " vs torch " << want << " (relative " << std::abs(got - want) / std::abs(want)
      << ", tolerance " << rtol << ")";
}

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
    std::copy(flat.begin(), flat.end(), ex.params().as<T>());
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
  std::copy(flat.begin(), flat.end(), ex.params().as<T>());
  ex.set_input(m.tokens, tokens.data(), tokens.size() * sizeof(int32_t));
  ex.set_input(m.targets, targets.data(), targets.size() * sizeof(int32_t));
  ex.zero_grads();
  ex.forward(true);
  ex.backward();
  expect_scalar_near("loss", ex.read_scalar(m.loss), f.manifest().at("loss").at("f64").get<double>(), loss_rtol);
  const T* grads = ex.grads().as<T>();
  for (const ParamInfo& p : m.graph.params) {
    if (!f.has("grad", p.name)) continue;  // reported by flat_params
    expect_tensor_near("grad " + p.name, grads + p.offset, f.floats("grad", p.name), f.tensor("grad", p.name).shape,
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
  const Graph shape_graph = m.graph;  // LocalStep takes the graph; keep the parameter table
  LocalStep step(std::move(m.graph), *backend, cfg);
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
