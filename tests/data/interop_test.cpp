// tests/data/interop_test.cpp — llm.c model files and Hugging Face safetensors: exact fp32 round
// trips, bf16 within rounding, and the files' bytes checked against the published layouts (read
// here independently of the converter); `ferry convert` end to end, ferry → ferry bf16 included.
#include "tools/convert/model_file.h"

#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "engine/random.h"
#include "tests/support/support.h"

namespace ferry::convert {
namespace {

namespace fs = std::filesystem;
using test::file_bytes;
using test::write_bytes;

Checkpoint random_model(bool tied, uint64_t seed) {
  Checkpoint m;
  m.model = gpt_preset("nano");  // 1 layer, 2 heads, 16 wide
  m.model.n_layer = 2;
  m.model.vocab_size = 300;      // pads to 384 in llm.c
  m.model.max_seq_len = 32;
  m.model.tied_head = tied;
  m.params = gpt_param_table(m.model);
  m.parameters.resize(m.params.back().offset + m.params.back().numel);
  Rng rng(seed);
  for (float& x : m.parameters) x = float(rng.normal());
  return m;
}

const float* param(const Checkpoint& m, const std::string& name) {
  for (const auto& p : m.params)
    if (p.name == name) return m.parameters.data() + p.offset;
  ADD_FAILURE() << "no " << name;
  return nullptr;
}

void expect_bitwise_equal(const Checkpoint& a, const Checkpoint& b) {
  EXPECT_EQ(model_difference(a.model, b.model), "");
  ASSERT_EQ(a.parameters.size(), b.parameters.size());
  EXPECT_EQ(0, std::memcmp(a.parameters.data(), b.parameters.data(), a.parameters.size() * 4));
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(from_bf16(0x3F80), 1.0f);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
  EXPECT_EQ(to_bf16(1.0f + 0x1.0p-8f), 0x3F80);
  EXPECT_EQ(to_bf16(1.0f + 0x1.8p-8f), 0x3F81);
  EXPECT_TRUE(std::isnan(from_bf16(to_bf16(NAN))));
}

TEST(Llmc, Fp32RoundTripIsExactAndFollowsTheLayout) {
  test::TempDir dir;
  const Checkpoint m = random_model(true, 1);
  const fs::path file = dir.path() / "model.bin";
  write_llmc(file, m, WeightType::F32);
  expect_bitwise_equal(read_llmc(file), m);

  const auto bytes = file_bytes(file);
  int32_t h[256];
  std::memcpy(h, bytes.data(), sizeof h);
  EXPECT_EQ(h[0], 20240326);
  EXPECT_EQ(h[1], 3);
  EXPECT_EQ(h[2], 32);   // maxT
  EXPECT_EQ(h[3], 300);  // V
  EXPECT_EQ(h[4], 2);    // L
  EXPECT_EQ(h[5], 2);    // NH
  EXPECT_EQ(h[6], 16);   // C
  EXPECT_EQ(h[7], 384);  // Vp
  for (int i = 8; i < 256; ++i) ASSERT_EQ(h[i], 0) << i;
  // llm.c's parameter sizes (fill_in_parameter_sizes), summed.
  const size_t C = 16, L = 2, Vp = 384, maxT = 32;
  const size_t sizes[16] = {Vp * C, maxT * C, L * C, L * C, L * 3 * C * C, L * 3 * C, L * C * C, L * C,
                            L * C,  L * C,    L * 4 * C * C, L * 4 * C, L * C * 4 * C, L * C, C, C};
  size_t total = 0, offset_of[16];
  for (int i = 0; i < 16; ++i) offset_of[i] = total, total += sizes[i];
  ASSERT_EQ(bytes.size(), 1024 + 4 * total);
  auto at = [&](int tensor, size_t i) {
    float f;
    std::memcpy(&f, bytes.data() + 1024 + 4 * (offset_of[tensor] + i), 4);
    return f;
  };
  EXPECT_EQ(at(0, 0), param(m, "wte")[0]);
  EXPECT_EQ(at(0, 300 * C - 1), param(m, "wte")[300 * C - 1]);
  for (size_t i = 300 * C; i < Vp * C; ++i) ASSERT_EQ(at(0, i), 0.0f) << "padding row value " << i;
  // Stacked per layer: qkvw of layer 1 follows layer 0's whole qkvw.
  EXPECT_EQ(at(4, 3 * C * C + 5), param(m, "h.1.attn.qkv.weight")[5]);
  EXPECT_EQ(at(12, 0), param(m, "h.0.mlp.proj.weight")[0]);
  EXPECT_EQ(at(15, C - 1), param(m, "ln_f.bias")[C - 1]);
}

TEST(Llmc, Bf16IsWithinRoundingAndRefusesBadFiles) {
  test::TempDir dir;
  const Checkpoint m = random_model(true, 2);
  const fs::path file = dir.path() / "model_bf16.bin";
  write_llmc(file, m, WeightType::BF16);
  const Checkpoint back = read_llmc(file);
  int32_t version;
  std::memcpy(&version, file_bytes(file).data() + 4, 4);
  EXPECT_EQ(version, 5);
  for (size_t i = 0; i < m.parameters.size(); ++i) {
    ASSERT_EQ(back.parameters[i], from_bf16(to_bf16(m.parameters[i])));
    ASSERT_LE(std::fabs(back.parameters[i] - m.parameters[i]), std::fabs(m.parameters[i]) * 0x1.0p-8f);
  }
  // Truncated and foreign files.
  auto bytes = file_bytes(file);
  bytes.resize(bytes.size() - 2);
  std::ofstream(dir.path() / "short.bin", std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  EXPECT_THROW(read_llmc(dir.path() / "short.bin"), UserError);
  bytes[0] = 1;
  std::ofstream(dir.path() / "foreign.bin", std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  EXPECT_THROW(read_llmc(dir.path() / "foreign.bin"), UserError);
  EXPECT_THROW(write_llmc(dir.path() / "untied.bin", random_model(false, 3), WeightType::F32), UserError);
}

TEST(Safetensors, Fp32RoundTripIsExactWithHuggingFaceNamesAndLayout) {
  test::TempDir dir;
  for (bool tied : {true, false}) {
    const Checkpoint m = random_model(tied, 4);
    const fs::path file = dir.path() / (tied ? "tied.safetensors" : "untied.safetensors");
    write_safetensors(file, m, WeightType::F32);
    expect_bitwise_equal(read_safetensors(file), m);

    // The layout: u64 header length, JSON header, data; Conv1D weights transposed.
    const auto bytes = file_bytes(file);
    uint64_t n;
    std::memcpy(&n, bytes.data(), 8);
    EXPECT_EQ((8 + n) % 8, 0u);
    const auto header = nlohmann::json::parse(std::string(bytes.data() + 8, n));
    EXPECT_EQ(header.at("__metadata__").at("format"), "pt");
    EXPECT_EQ(header.contains("lm_head.weight"), !tied);
    const auto& qkv = header.at("transformer.h.1.attn.c_attn.weight");
    EXPECT_EQ(qkv.at("dtype"), "F32");
    EXPECT_EQ(qkv.at("shape"), nlohmann::json({16, 48}));
    EXPECT_EQ(header.at("transformer.h.0.mlp.c_proj.weight").at("shape"), nlohmann::json({64, 16}));
    EXPECT_EQ(header.at("transformer.wte.weight").at("shape"), nlohmann::json({300, 16}));
    const uint64_t begin = qkv.at("data_offsets")[0];
    const float* ferry_qkv = param(m, "h.1.attn.qkv.weight");  // [3C, C]
    for (size_t i : {0, 5, 15})
      for (size_t j : {0, 17, 47}) {
        float hf;
        std::memcpy(&hf, bytes.data() + 8 + n + begin + 4 * (i * 48 + j), 4);
        EXPECT_EQ(hf, ferry_qkv[j * 16 + i]) << i << "," << j;  // HF [in, out] = ferry [out, in]ᵀ
      }
  }
}

TEST(Safetensors, Bf16AndHeadCountFromConfigJson) {
  test::TempDir dir;
  const Checkpoint m = random_model(true, 5);
  const fs::path file = dir.path() / "m.safetensors";
  write_safetensors(file, m, WeightType::BF16);
  const Checkpoint back = read_safetensors(file);
  for (size_t i = 0; i < m.parameters.size(); ++i) ASSERT_EQ(back.parameters[i], from_bf16(to_bf16(m.parameters[i])));

  // A file without ferry's metadata (as Hugging Face writes them) takes n_head from config.json.
  auto bytes = file_bytes(file);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  auto header = nlohmann::json::parse(std::string(bytes.data() + 8, n));
  header["__metadata__"] = {{"format", "pt"}};
  std::string text = header.dump();
  while ((8 + text.size()) % 8) text += ' ';
  const uint64_t n2 = text.size();
  fs::create_directories(dir.path() / "hf");
  {
    std::ofstream out(dir.path() / "hf" / "model.safetensors", std::ios::binary);
    out.write(reinterpret_cast<const char*>(&n2), 8);
    out.write(text.data(), std::streamsize(text.size()));
    out.write(bytes.data() + 8 + n, std::streamsize(bytes.size() - 8 - n));
  }
  EXPECT_THROW(read_safetensors(dir.path() / "hf" / "model.safetensors"), UserError);
  std::ofstream(dir.path() / "hf" / "config.json") << R"({"n_head": 2, "n_layer": 2})";
  const Checkpoint hf = read_safetensors(dir.path() / "hf" / "model.safetensors");
  EXPECT_EQ(hf.model.n_head, 2);
  EXPECT_EQ(0, std::memcmp(hf.parameters.data(), back.parameters.data(), back.parameters.size() * 4));
}

TEST(Convert, CommandLineChainsFerryLlmcSafetensorsAndBack) {
  test::TempDir dir;
  const Checkpoint m = random_model(true, 6);
  const fs::path ckpt = dir.path() / "a.ckpt";
  write_checkpoint(ckpt, m);
  const std::string ferry = test::ferry_binary() + " convert ";
  auto run = [&](const std::string& args) {
    const auto r = test::run_command(ferry + args);
    EXPECT_EQ(r.exit_code, 0) << r.out;
  };
  run(ckpt.string() + " " + (dir.path() / "b.bin").string());
  run((dir.path() / "b.bin").string() + " " + (dir.path() / "c.safetensors").string());
  run((dir.path() / "c.safetensors").string() + " " + (dir.path() / "d.ckpt").string());
  expect_bitwise_equal(read_checkpoint(dir.path() / "d.ckpt"), m);
  EXPECT_EQ(detect_model_file(dir.path() / "b.bin"), "llmc");
  EXPECT_EQ(detect_model_file(dir.path() / "c.safetensors"), "safetensors");
  const auto bad = test::run_command(ferry + ckpt.string() + " " + (dir.path() / "x.onnx").string());
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
}

TEST(Convert, FerryToFerryBf16KeepsTheModelAndItsStateAtHalfTheSize) {
  test::TempDir dir;
  // A run's checkpoint: optimizer state (which a model file drops) and a fine-tuned model's state.
  Checkpoint m = random_model(false, 8);
  m.step = 30;
  m.adam_steps = 30;
  m.adam_m.assign(m.parameters.size(), 0.5f);
  m.adam_v.assign(m.parameters.size(), 0.25f);
  m.state = {{"finetune", {{"task", "sentiment"}, {"vocab", {"<pad>", "good", "bad"}}}}};
  const fs::path in = dir.path() / "in.ckpt", half = dir.path() / "half.ckpt", back = dir.path() / "back.ckpt";
  write_checkpoint(in, m);
  const std::string ferry = test::ferry_binary() + " convert ";
  auto r = test::run_command(ferry + in.string() + " " + half.string() + " --dtype bf16");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("(bf16)"), std::string::npos) << r.out;
  const Checkpoint h = read_checkpoint(half);
  EXPECT_EQ(h.param_dtype, ParamDtype::BF16);
  EXPECT_EQ(model_difference(h.model, m.model), "");
  EXPECT_EQ(h.step, 30);
  EXPECT_EQ(h.state, m.state);
  EXPECT_TRUE(h.adam_m.empty() && h.adam_v.empty());
  EXPECT_EQ(h.adam_steps, 0);
  ASSERT_EQ(h.params.size(), m.params.size());
  for (size_t i = 0; i < m.params.size(); ++i) EXPECT_EQ(h.params[i].name, m.params[i].name);
  ASSERT_EQ(h.parameters.size(), m.parameters.size());
  for (size_t i = 0; i < m.parameters.size(); ++i)  // the same rounding as the llm.c bf16 writer
    ASSERT_EQ(h.parameters[i], from_bf16(to_bf16(m.parameters[i]))) << i;
  // f32 parameters and optimizer state were 12 bytes a value; a bf16 model file is 2.
  EXPECT_LT(fs::file_size(half) * 5, fs::file_size(in));

  // And back to f32: the bf16 values exactly, still without optimizer state.
  r = test::run_command(ferry + half.string() + " " + back.string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const Checkpoint b = read_checkpoint(back);
  EXPECT_EQ(b.param_dtype, ParamDtype::F32);
  expect_bitwise_equal(b, h);
  EXPECT_EQ(b.state, m.state);
  // The payload doubles and the metadata's "bf16" becomes "f32", one byte shorter; nothing else changes.
  EXPECT_EQ(fs::file_size(back) - fs::file_size(half), 2 * m.parameters.size() - 1);

  r = test::run_command(ferry + in.string() + " " + (dir.path() / "x.ckpt").string() + " --dtype f16");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("--dtype must be f32 or bf16, got 'f16'"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir.path() / "x.ckpt"));
}

}  // namespace
}  // namespace ferry::convert
