// tests/support/gpt_fixture.cpp
#include "tests/support/gpt_fixture.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "tests/support/support.h"

namespace ferry::test {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

uint64_t fnv1a64(const std::vector<char>& data) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (char c : data) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001B3ull;
  }
  return h;
}

}  // namespace

Fixture::Fixture(const fs::path& manifest_path) {
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


fs::path fixture_path() { return test::source_dir() / "tests/fixtures/gpt_tiny.json"; }

const Fixture& fixture() {
  static const Fixture f(fixture_path());
  return f;
}

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

std::vector<double> flat_params(const Graph& g, const Fixture& f, const std::string& kind) {
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
    const Shape shape = logical_shape(g, p);  // without a padded vocabulary's padding rows
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

void expect_scalar_near(const std::string& what, double got, double want, double rtol) {
  EXPECT_LE(std::abs(got - want), rtol * std::abs(want))
      << what << ": ferry " << got << " vs torch " << want << " (relative " << std::abs(got - want) / std::abs(want)
      << ", tolerance " << rtol << ")";
}


}  // namespace ferry::test
