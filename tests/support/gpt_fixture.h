// tests/support/gpt_fixture.h — the PyTorch fixture of a tiny GPT-2 (tests/fixtures/gpt_tiny.{json,bin},
// written by tools/make_gpt_fixture.py) and the comparisons the engine is held to it with, shared by
// the CPU test (tests/engine/torch_fixture_test.cpp) and the CUDA one (cuda_step_gpu_test.cpp).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/model/gpt.h"

namespace ferry::test {

struct FixtureTensor {
  std::string dtype;  // f32, f64, i32
  std::vector<int64_t> shape;
  size_t offset = 0;
  size_t bytes = 0;
};

// The manifest and blob, validated as a whole on load: any problem is one runtime_error naming the
// file and what is wrong with it.
class Fixture {
 public:
  explicit Fixture(const std::filesystem::path& manifest_path);

  const nlohmann::json& manifest() const { return manifest_; }
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
  nlohmann::json manifest_;
  std::vector<char> blob_;
  std::map<std::string, FixtureTensor> tensors_;
};

std::filesystem::path fixture_path();

// Loaded once per test program; a load failure fails every test with the loader's message.
const Fixture& fixture();

#define LOAD_FIXTURE_OR_FAIL(name)                                          \
  const ::ferry::test::Fixture* name##_ptr = nullptr;                       \
  try {                                                                     \
    name##_ptr = &::ferry::test::fixture();                                 \
  } catch (const std::exception& e) {                                       \
    FAIL() << e.what();                                                     \
  }                                                                         \
  const ::ferry::test::Fixture& name = *name##_ptr

GptConfig fixture_config(const Fixture& f);
GptBuildOptions fixture_batch_shape(const Fixture& f, DType dtype, bool with_loss);

// Every ferry parameter taken from the fixture by name, into the graph's flat order; a name or shape
// that does not match is a failure naming it (and a fixture tensor ferry lacks is one too).
std::vector<double> flat_params(const Graph& g, const Fixture& f, const std::string& kind = "param");

std::string index_str(int64_t flat, const std::vector<int64_t>& shape);

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

void expect_scalar_near(const std::string& what, double got, double want, double rtol);

}  // namespace ferry::test
