// tools/convert/model_file.cpp
#include "tools/convert/model_file.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "engine/checkpoint/atomic_file.h"
#include "base/error.h"

namespace ferry::convert {

namespace fs = std::filesystem;

uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if (std::isnan(f)) return static_cast<uint16_t>((u >> 16) | 0x40);  // keep it a NaN
  u += 0x7FFF + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

float from_bf16(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

namespace {

// A named slice of the flat parameter array.
struct View {
  float* data;
  uint64_t numel;
};

std::map<std::string, View> index(Checkpoint& m) {
  std::map<std::string, View> v;
  for (const auto& p : m.params) v[p.name] = {m.parameters.data() + p.offset, p.numel};
  return v;
}

View find(std::map<std::string, View>& v, const std::string& name, uint64_t numel, const std::string& where) {
  auto it = v.find(name);
  if (it == v.end()) user_error(where, ": the model has no parameter '", name, "'");
  if (it->second.numel != numel)
    user_error(where, ": parameter '", name, "' has ", it->second.numel, " values, expected ", numel);
  return it->second;
}

// A model with the parameter table of `c` and zero weights.
Checkpoint empty_model(const GptConfig& c) {
  Checkpoint m;
  m.model = c;
  m.params = gpt_param_table(c);
  uint64_t n = 0;
  for (const auto& p : m.params) n = std::max(n, p.offset + p.numel);
  m.parameters.assign(n, 0.0f);
  return m;
}

// llm.c's per-layer tensors in file order and their ferry names (suffix after "h.<l>.").
struct LayerTensor {
  const char* ferry;
  int rows_times_c;  // numel per layer = factor · C (· C for matrices)
  bool matrix;
};
constexpr LayerTensor kLayerTensors[] = {
    {"ln_1.weight", 1, false},     {"ln_1.bias", 1, false},       {"attn.qkv.weight", 3, true},
    {"attn.qkv.bias", 3, false},   {"attn.proj.weight", 1, true}, {"attn.proj.bias", 1, false},
    {"ln_2.weight", 1, false},     {"ln_2.bias", 1, false},       {"mlp.fc.weight", 4, true},
    {"mlp.fc.bias", 4, false},     {"mlp.proj.weight", 4, true},  {"mlp.proj.bias", 1, false},
};

// Visits llm.c's tensors in file order: fn(ferry_name, numel_in_file, numel_in_ferry) for wte (padded
// rows beyond ferry's), then the rest.
template <typename Fn>
void for_each_llmc_tensor(const GptConfig& c, Fn fn) {
  const uint64_t C = c.n_embd, V = c.vocab_size, Vp = llmc_padded_vocab(c.vocab_size);
  fn(std::string("wte"), Vp * C, V * C);
  fn(std::string("wpe"), uint64_t(c.max_seq_len) * C, uint64_t(c.max_seq_len) * C);
  for (const LayerTensor& t : kLayerTensors)
    for (int l = 0; l < c.n_layer; ++l) {
      const uint64_t n = uint64_t(t.rows_times_c) * C * (t.matrix ? C : 1);
      fn("h." + std::to_string(l) + "." + t.ferry, n, n);
    }
  fn(std::string("ln_f.weight"), C, C);
  fn(std::string("ln_f.bias"), C, C);
}

// The values an llm.c file of config `c` holds (wte's padding rows included), counted exactly: the
// sizes in a header are the file's claim and their products can overflow 64 bits. Closed form, so
// a header claiming two billion layers costs nothing to check against the file's length.
unsigned __int128 llmc_value_count(const GptConfig& c) {
  using u128 = unsigned __int128;
  const u128 C = static_cast<u128>(c.n_embd);
  u128 per_layer = 0;
  for (const LayerTensor& t : kLayerTensors) per_layer += u128(t.rows_times_c) * C * (t.matrix ? C : 1);
  return u128(llmc_padded_vocab(c.vocab_size)) * C + u128(c.max_seq_len) * C + u128(c.n_layer) * per_layer + 2 * C;
}

void write_values(AtomicFile& out, const float* p, uint64_t n, WeightType type) {
  if (type == WeightType::F32) {
    out.write(p, n * sizeof(float));
    return;
  }
  std::vector<uint16_t> h(n);
  for (uint64_t i = 0; i < n; ++i) h[i] = to_bf16(p[i]);
  out.write(h.data(), n * sizeof(uint16_t));
}

void read_values(std::istream& in, float* dst, uint64_t n, WeightType type, const std::string& where) {
  if (type == WeightType::F32) {
    in.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(n * sizeof(float)));
  } else {
    std::vector<uint16_t> h(n);
    in.read(reinterpret_cast<char*>(h.data()), static_cast<std::streamsize>(n * sizeof(uint16_t)));
    for (uint64_t i = 0; i < n; ++i) dst[i] = from_bf16(h[i]);
  }
  if (!in) user_error(where, ": truncated (the file ends inside the parameters)");
}

uint64_t file_size_or_fail(const fs::path& path) {
  std::error_code ec;
  const uint64_t n = fs::file_size(path, ec);
  if (ec) user_error(path.string(), ": cannot be read (missing or unreadable)");
  return n;
}

}  // namespace

// ---- llm.c -----------------------------------------------------------------------------------

void write_llmc(const fs::path& path, const Checkpoint& model_in, WeightType type) {
  const std::string where = path.string();
  const GptConfig& c = model_in.model;
  if (!c.tied_head) user_error(where, ": llm.c's format ties the head to wte; this model has its own lm_head");
  if (!c.causal) user_error(where, ": llm.c's format holds causal GPT-2 models only");
  Checkpoint model = model_in;
  auto v = index(model);
  int32_t header[256] = {};
  header[0] = kLlmcMagic;
  header[1] = type == WeightType::F32 ? kLlmcVersionF32 : kLlmcVersionBF16;
  header[2] = c.max_seq_len;
  header[3] = c.vocab_size;
  header[4] = c.n_layer;
  header[5] = c.n_head;
  header[6] = c.n_embd;
  header[7] = static_cast<int32_t>(llmc_padded_vocab(c.vocab_size));
  AtomicFile out(path);
  out.write(header, sizeof header);
  for_each_llmc_tensor(c, [&](const std::string& name, uint64_t in_file, uint64_t in_ferry) {
    const View t = find(v, name, in_ferry, where);
    write_values(out, t.data, in_ferry, type);
    const std::vector<float> pad(in_file - in_ferry, 0.0f);  // wte's padding rows
    if (!pad.empty()) write_values(out, pad.data(), pad.size(), type);
  });
  out.commit();
}

Checkpoint read_llmc(const fs::path& path) {
  const std::string where = path.string();
  const uint64_t size = file_size_or_fail(path);
  std::ifstream in(path, std::ios::binary);
  int32_t header[256];
  if (size < sizeof header || !in.read(reinterpret_cast<char*>(header), sizeof header))
    user_error(where, ": truncated llm.c model file (shorter than its 1024-byte header)");
  if (header[0] != kLlmcMagic) user_error(where, ": not an llm.c GPT-2 model file (magic ", header[0], ")");
  if (header[1] != kLlmcVersionF32 && header[1] != kLlmcVersionBF16)
    user_error(where, ": llm.c model version ", header[1], " (known: 3 fp32, 5 bf16)");
  const WeightType type = header[1] == kLlmcVersionF32 ? WeightType::F32 : WeightType::BF16;
  GptConfig c;
  c.preset = "llmc";
  c.max_seq_len = header[2];
  c.vocab_size = header[3];
  c.n_layer = header[4];
  c.n_head = header[5];
  c.n_embd = header[6];
  validate_gpt(c);
  if (header[7] < c.vocab_size) user_error(where, ": padded vocab ", header[7], " is below the vocab ", c.vocab_size);
  if (header[7] != llmc_padded_vocab(c.vocab_size))
    user_error(where, ": padded vocab ", header[7], " (this build expects ", llmc_padded_vocab(c.vocab_size), ")");
  const unsigned __int128 bytes = sizeof header + llmc_value_count(c) * (type == WeightType::F32 ? 4 : 2);
  if (bytes != size) {
    user_error(where, ": ", size, " bytes, but its header describes ",
               bytes >> 64 ? std::string("more than 2^64") : std::to_string(static_cast<uint64_t>(bytes)));
  }
  Checkpoint model = empty_model(c);
  auto v = index(model);
  for_each_llmc_tensor(c, [&](const std::string& name, uint64_t in_file, uint64_t in_ferry) {
    const View t = find(v, name, in_ferry, where);
    read_values(in, t.data, in_ferry, type, where);
    std::vector<float> pad(in_file - in_ferry);
    if (!pad.empty()) read_values(in, pad.data(), pad.size(), type, where);
  });
  return model;
}

// ---- safetensors -----------------------------------------------------------------------------

namespace {

// One Hugging Face tensor: its name, shape, the ferry parameter and whether the two are transposed.
struct HfTensor {
  std::string name;
  std::vector<uint64_t> shape;
  std::string ferry;
  bool transposed;
};

std::vector<HfTensor> hf_tensors(const GptConfig& c) {
  const uint64_t C = c.n_embd;
  std::vector<HfTensor> t = {{"transformer.wte.weight", {uint64_t(c.vocab_size), C}, "wte", false},
                             {"transformer.wpe.weight", {uint64_t(c.max_seq_len), C}, "wpe", false}};
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string hf = "transformer.h." + std::to_string(l) + ".", fy = "h." + std::to_string(l) + ".";
    t.push_back({hf + "ln_1.weight", {C}, fy + "ln_1.weight", false});
    t.push_back({hf + "ln_1.bias", {C}, fy + "ln_1.bias", false});
    t.push_back({hf + "attn.c_attn.weight", {C, 3 * C}, fy + "attn.qkv.weight", true});
    t.push_back({hf + "attn.c_attn.bias", {3 * C}, fy + "attn.qkv.bias", false});
    t.push_back({hf + "attn.c_proj.weight", {C, C}, fy + "attn.proj.weight", true});
    t.push_back({hf + "attn.c_proj.bias", {C}, fy + "attn.proj.bias", false});
    t.push_back({hf + "ln_2.weight", {C}, fy + "ln_2.weight", false});
    t.push_back({hf + "ln_2.bias", {C}, fy + "ln_2.bias", false});
    t.push_back({hf + "mlp.c_fc.weight", {C, 4 * C}, fy + "mlp.fc.weight", true});
    t.push_back({hf + "mlp.c_fc.bias", {4 * C}, fy + "mlp.fc.bias", false});
    t.push_back({hf + "mlp.c_proj.weight", {4 * C, C}, fy + "mlp.proj.weight", true});
    t.push_back({hf + "mlp.c_proj.bias", {C}, fy + "mlp.proj.bias", false});
  }
  t.push_back({"transformer.ln_f.weight", {C}, "ln_f.weight", false});
  t.push_back({"transformer.ln_f.bias", {C}, "ln_f.bias", false});
  if (!c.tied_head) t.push_back({"lm_head.weight", {uint64_t(c.vocab_size), C}, "lm_head.weight", false});
  return t;
}

// [rows, cols] row-major → [cols, rows] row-major.
std::vector<float> transpose(const float* p, uint64_t rows, uint64_t cols) {
  std::vector<float> r(rows * cols);
  for (uint64_t i = 0; i < rows; ++i)
    for (uint64_t j = 0; j < cols; ++j) r[j * rows + i] = p[i * cols + j];
  return r;
}

}  // namespace

void write_safetensors(const fs::path& path, const Checkpoint& model_in, WeightType type) {
  const std::string where = path.string();
  const GptConfig& c = model_in.model;
  if (!c.causal) user_error(where, ": GPT2LMHeadModel weights must come from a causal model");
  Checkpoint model = model_in;
  auto v = index(model);
  const auto tensors = hf_tensors(c);
  const uint64_t esize = type == WeightType::F32 ? 4 : 2;
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"},
                            {"producer", "ferry"},
                            {"n_layer", std::to_string(c.n_layer)},
                            {"n_head", std::to_string(c.n_head)},
                            {"n_embd", std::to_string(c.n_embd)},
                            {"vocab_size", std::to_string(c.vocab_size)},
                            {"n_positions", std::to_string(c.max_seq_len)}};
  uint64_t at = 0;
  for (const HfTensor& t : tensors) {
    uint64_t n = 1;
    for (uint64_t d : t.shape) n *= d;
    header[t.name] = {{"dtype", type == WeightType::F32 ? "F32" : "BF16"},
                      {"shape", t.shape},
                      {"data_offsets", {at, at + n * esize}}};
    at += n * esize;
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text += ' ';  // the data section starts 8-byte aligned
  const uint64_t n_header = text.size();
  AtomicFile out(path);
  out.write(&n_header, 8);
  out.write(text);
  for (const HfTensor& t : tensors) {
    uint64_t n = 1;
    for (uint64_t d : t.shape) n *= d;
    const View p = find(v, t.ferry, n, where);
    if (t.transposed) {
      // ferry holds [out, in] = [shape[1], shape[0]]; HF wants [in, out].
      const std::vector<float> tr = transpose(p.data, t.shape[1], t.shape[0]);
      write_values(out, tr.data(), n, type);
    } else {
      write_values(out, p.data, n, type);
    }
  }
  out.commit();
}

namespace {

// A whole decimal int from a metadata string ("12"); UserError naming the field otherwise.
int metadata_int(const std::string& text, const std::string& where, const char* field) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || v < INT32_MIN || v > INT32_MAX)
    user_error(where, ": metadata ", field, " = '", text, "' is not an integer");
  return static_cast<int>(v);
}

Checkpoint read_safetensors_checked(const fs::path& path, std::optional<int> n_head) {
  const std::string where = path.string();
  const uint64_t size = file_size_or_fail(path);
  std::ifstream in(path, std::ios::binary);
  uint64_t n_header = 0;
  if (size < 8 || !in.read(reinterpret_cast<char*>(&n_header), 8)) user_error(where, ": truncated safetensors file");
  if (n_header > size - 8 || n_header > (uint64_t(100) << 20)) user_error(where, ": bad safetensors header length");
  std::string text(n_header, '\0');
  in.read(text.data(), static_cast<std::streamsize>(n_header));
  const auto header = nlohmann::json::parse(text, nullptr, false);
  if (!in || header.is_discarded() || !header.is_object()) user_error(where, ": unreadable safetensors header");
  const uint64_t data_start = 8 + n_header;

  // Names without the optional "transformer." prefix → entry.
  std::map<std::string, nlohmann::json> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    std::string k = it.key();
    if (k.rfind("transformer.", 0) == 0) k = k.substr(12);
    entries[k] = it.value();
  }
  auto shape_of = [&](const std::string& name) {
    auto it = entries.find(name);
    if (it == entries.end()) user_error(where, ": no tensor '", name, "' (is this a GPT-2 model?)");
    return it->second.at("shape").get<std::vector<uint64_t>>();
  };
  GptConfig c;
  c.preset = "safetensors";
  const auto wte = shape_of("wte.weight"), wpe = shape_of("wpe.weight");
  if (wte.size() != 2 || wpe.size() != 2) user_error(where, ": wte/wpe are not matrices");
  if (wte[0] > INT32_MAX || wte[1] > INT32_MAX || wpe[0] > INT32_MAX)
    user_error(where, ": wte/wpe shapes [", wte[0], ", ", wte[1], "], [", wpe[0], ", ", wpe[1], "] are too large");
  c.vocab_size = int(wte[0]);
  c.n_embd = int(wte[1]);
  c.max_seq_len = int(wpe[0]);
  while (entries.count("h." + std::to_string(c.n_layer) + ".ln_1.weight")) ++c.n_layer;
  c.tied_head = !entries.count("lm_head.weight");
  // n_head: the caller, the file's metadata, or a config.json beside the file.
  if (n_head) {
    c.n_head = *n_head;
  } else if (header.contains("__metadata__") && header["__metadata__"].contains("n_head")) {
    c.n_head = metadata_int(header["__metadata__"]["n_head"].get<std::string>(), where, "n_head");
  } else {
    std::ifstream cfg(path.parent_path() / "config.json");
    const auto j = cfg ? nlohmann::json::parse(cfg, nullptr, false) : nlohmann::json();
    if (!j.is_object() || !j.contains("n_head"))
      user_error(where, ": the number of attention heads is not in the file or a config.json beside it (pass --n-head)");
    c.n_head = j["n_head"].get<int>();
  }
  validate_gpt(c);
  const auto tensors = hf_tensors(c);
  // The file must hold every tensor (2 bytes a value at the least) before the model is allocated:
  // a header's shapes are only its claim, and a few-kilobyte file must not cost gigabytes.
  unsigned __int128 values = 0;
  for (const HfTensor& t : tensors) {
    unsigned __int128 n = 1;
    for (uint64_t d : t.shape) n *= d;
    values += n;
  }
  if (values * 2 > size - data_start)
    user_error(where, ": the header's shapes need more data than the file's ", size - data_start, " bytes (truncated?)");
  Checkpoint model = empty_model(c);
  auto v = index(model);
  for (const HfTensor& t : tensors) {
    const std::string key = t.name.rfind("transformer.", 0) == 0 ? t.name.substr(12) : t.name;
    if (shape_of(key) != t.shape) user_error(where, ": tensor '", t.name, "' has another shape than GPT-2's");
    const auto& e = entries.at(key);
    const std::string dtype = e.at("dtype").get<std::string>();
    if (dtype != "F32" && dtype != "BF16") user_error(where, ": tensor '", t.name, "' is ", dtype, " (F32 or BF16 read)");
    const WeightType type = dtype == "F32" ? WeightType::F32 : WeightType::BF16;
    const auto off = e.at("data_offsets").get<std::vector<uint64_t>>();
    uint64_t n = 1;
    for (uint64_t d : t.shape) n *= d;
    if (off.size() != 2 || off[0] > off[1] || off[1] > size - data_start ||
        off[1] - off[0] != n * (type == WeightType::F32 ? 4 : 2))
      user_error(where, ": tensor '", t.name, "' has bad data offsets (truncated file?)");
    in.seekg(static_cast<std::streamoff>(data_start + off[0]));
    const View p = find(v, t.ferry, n, where);
    if (t.transposed) {
      std::vector<float> hf(n);
      read_values(in, hf.data(), n, type, where);
      const std::vector<float> tr = transpose(hf.data(), t.shape[0], t.shape[1]);
      std::copy(tr.begin(), tr.end(), p.data);
    } else {
      read_values(in, p.data, n, type, where);
    }
  }
  return model;
}

}  // namespace

Checkpoint read_safetensors(const fs::path& path, std::optional<int> n_head) {
  try {
    return read_safetensors_checked(path, n_head);
  } catch (const nlohmann::json::exception& e) {
    // A header entry of the wrong JSON type (a shape that is no list of integers, a dtype that is
    // no string, an n_head in config.json that is no number).
    user_error(path.string(), ": malformed safetensors header (", e.what(), ")");
  }
}

std::string detect_model_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) user_error(path.string(), ": cannot be read (missing or unreadable)");
  char head[9] = {};
  in.read(head, 9);
  if (in.gcount() >= 8 && std::memcmp(head, "FERRYCKP", 8) == 0) return "ferry";
  int32_t magic;
  std::memcpy(&magic, head, 4);
  if (in.gcount() >= 4 && magic == kLlmcMagic) return "llmc";
  if (in.gcount() == 9 && head[8] == '{') return "safetensors";
  user_error(path.string(), ": neither a ferry checkpoint, an llm.c model file nor safetensors");
}

}  // namespace ferry::convert
