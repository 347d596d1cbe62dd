// engine/checkpoint/checkpoint.cpp
#include "engine/checkpoint/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <regex>

#include "engine/checkpoint/atomic_file.h"
#include "engine/config_fields.h"
#include "engine/checkpoint/hash64.h"
#include "base/error.h"
#include "kernels/dtype.h"

namespace ferry {

namespace {

constexpr char kMagic[8] = {'F', 'E', 'R', 'R', 'Y', 'C', 'K', 'P'};
constexpr size_t kHeaderBytes = 32;

struct Array {
  const char* name;
  const std::vector<float>* data;
  ParamDtype dtype;
};

const char* dtype_name(ParamDtype d) { return d == ParamDtype::BF16 ? "bf16" : "f32"; }
size_t dtype_bytes(ParamDtype d) { return d == ParamDtype::BF16 ? 2 : 4; }

// Round to nearest even (kernels/dtype.h), except that a NaN whose upper half is already a NaN
// keeps it: a bf16 file read and written again keeps its bits (float_to_bf16 quiets a signalling NaN).
uint16_t narrow_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const auto upper = static_cast<uint16_t>(u >> 16);
  if (std::isnan(f) && (upper & 0x7fu) != 0) return upper;
  return float_to_bf16(f).bits;
}

}  // namespace

nlohmann::json gpt_config_to_json(const GptConfig& c) { return fields_to_json(c); }

GptConfig gpt_config_from_json(const nlohmann::json& j, const std::string& where) {
  GptConfig c;
  fields_from_json(j, c, where, "model config");
  return c;
}

std::string model_difference(const GptConfig& a, const GptConfig& b) {
  const auto x = fields_as_text(a), y = fields_as_text(b);
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i].first != "preset" && x[i].second != y[i].second)  // the preset is a label, not the architecture
      return "model." + x[i].first + ": " + x[i].second + " vs " + y[i].second;
  return "";
}

std::vector<CheckpointParam> gpt_param_table(const GptConfig& c) {
  GptBuildOptions o;
  o.with_loss = false;
  const GptGraph g = build_gpt(c, o);
  std::vector<CheckpointParam> table;
  for (const ParamInfo& p : g.graph.params)
    table.push_back({p.name, static_cast<uint64_t>(p.offset), static_cast<uint64_t>(p.numel)});
  return table;
}

void write_checkpoint(const std::filesystem::path& path, const Checkpoint& ck) {
  const bool with_adam = !ck.adam_m.empty() || !ck.adam_v.empty();
  FERRY_CHECK(!with_adam || (ck.adam_m.size() == ck.parameters.size() && ck.adam_v.size() == ck.parameters.size()),
              "optimizer state must match the parameters in size");
  // bf16 is for a model to use, not a run to resume: AdamW's state goes with the exact weights.
  if (with_adam && ck.param_dtype == ParamDtype::BF16)
    user_error(path.string(), ": bf16 parameters are for a model file without optimizer state; a checkpoint with "
               "AdamW state (a run to resume) keeps f32 parameters");
  std::vector<Array> arrays = {{"params", &ck.parameters, ck.param_dtype}};
  if (with_adam) {
    arrays.push_back({"adam_m", &ck.adam_m, ParamDtype::F32});
    arrays.push_back({"adam_v", &ck.adam_v, ParamDtype::F32});
  }
  nlohmann::json meta = {{"format", "ferry-checkpoint"}, {"step", ck.step},
                         {"model", gpt_config_to_json(ck.model)}, {"adam_steps", ck.adam_steps},
                         {"state", ck.state}};
  meta["params"] = nlohmann::json::array();
  for (const auto& p : ck.params) meta["params"].push_back({{"name", p.name}, {"offset", p.offset}, {"numel", p.numel}});
  meta["arrays"] = nlohmann::json::array();
  uint64_t payload = 0;
  for (const Array& a : arrays) {
    meta["arrays"].push_back({{"name", a.name}, {"dtype", dtype_name(a.dtype)}, {"count", a.data->size()}});
    payload += a.data->size() * dtype_bytes(a.dtype);
  }
  const std::string meta_text = meta.dump();

  unsigned char header[kHeaderBytes] = {};
  std::memcpy(header, kMagic, 8);
  const uint32_t version = kCheckpointVersion;
  std::memcpy(header + 8, &version, 4);
  const uint64_t meta_bytes = meta_text.size();
  std::memcpy(header + 16, &meta_bytes, 8);
  std::memcpy(header + 24, &payload, 8);

  Hash64 hash;
  AtomicFile out(path);
  auto put = [&](const void* p, size_t n) {
    hash.update(p, n);
    out.write(p, n);
  };
  put(header, kHeaderBytes);
  put(meta_text.data(), meta_text.size());
  for (const Array& a : arrays) {
    if (a.dtype == ParamDtype::F32) {
      put(a.data->data(), a.data->size() * sizeof(float));
      continue;
    }
    std::vector<uint16_t> chunk;  // a bounded buffer: a model's bf16 copy is never held whole
    for (size_t at = 0; at < a.data->size(); at += chunk.size()) {
      chunk.resize(std::min<size_t>(size_t{1} << 16, a.data->size() - at));
      for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = narrow_to_bf16((*a.data)[at + i]);
      put(chunk.data(), chunk.size() * sizeof(uint16_t));
    }
  }
  const uint64_t digest = hash.digest();
  out.write(&digest, sizeof digest);
  out.commit();
}

Checkpoint read_checkpoint(const std::filesystem::path& path) {
  const std::string where = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) user_error(where, ": cannot open the checkpoint (missing or unreadable)");
  std::error_code ec;
  const uint64_t file_bytes = std::filesystem::file_size(path, ec);
  if (ec) user_error(where, ": cannot read the checkpoint's size");
  unsigned char header[kHeaderBytes];
  if (file_bytes < kHeaderBytes + 8 || !in.read(reinterpret_cast<char*>(header), kHeaderBytes))
    user_error(where, ": truncated checkpoint (", file_bytes, " bytes, shorter than a header)");
  if (std::memcmp(header, kMagic, 8) != 0) user_error(where, ": not a ferry checkpoint (bad magic)");
  uint32_t version;
  uint64_t meta_bytes, payload;
  std::memcpy(&version, header + 8, 4);
  std::memcpy(&meta_bytes, header + 16, 8);
  std::memcpy(&payload, header + 24, 8);
  if (version != kCheckpointVersion)
    user_error(where, ": checkpoint format version ", version, " (this build reads version ", kCheckpointVersion, ")");
  if (meta_bytes > file_bytes || payload > file_bytes || kHeaderBytes + meta_bytes + payload + 8 != file_bytes)
    user_error(where, ": truncated or padded checkpoint (", file_bytes, " bytes; the header says ",
               kHeaderBytes + meta_bytes + payload + 8, ")");

  Hash64 hash;
  hash.update(header, kHeaderBytes);
  std::string meta_text(meta_bytes, '\0');
  in.read(meta_text.data(), static_cast<std::streamsize>(meta_bytes));
  hash.update(meta_text.data(), meta_text.size());
  nlohmann::json meta = nlohmann::json::parse(meta_text, nullptr, false);
  // The checksum is checked before anything parsed is trusted, so read the arrays as raw bytes first.
  std::vector<char> body(payload);
  in.read(body.data(), static_cast<std::streamsize>(payload));
  hash.update(body.data(), body.size());
  uint64_t stored = 0;
  in.read(reinterpret_cast<char*>(&stored), sizeof stored);
  if (!in) user_error(where, ": truncated checkpoint (read failed)");
  if (stored != hash.digest()) user_error(where, ": corrupted checkpoint (checksum mismatch)");
  if (meta.is_discarded() || !meta.is_object()) user_error(where, ": corrupted checkpoint (bad metadata)");

  Checkpoint ck;
  try {
    ck.step = meta.at("step").get<int64_t>();
    ck.model = gpt_config_from_json(meta.at("model"), where);
    ck.adam_steps = meta.at("adam_steps").get<int64_t>();
    ck.state = meta.at("state");
    for (const auto& p : meta.at("params"))
      ck.params.push_back({p.at("name").get<std::string>(), p.at("offset").get<uint64_t>(), p.at("numel").get<uint64_t>()});
    uint64_t at = 0;
    bool seen[3] = {false, false, false};
    for (const auto& a : meta.at("arrays")) {
      const std::string name = a.at("name").get<std::string>();
      const std::string dtype = a.at("dtype").get<std::string>();
      const uint64_t count = a.at("count").get<uint64_t>();
      const int which = name == "params" ? 0 : name == "adam_m" ? 1 : name == "adam_v" ? 2 : -1;
      if (which < 0) user_error(where, ": unknown array '", name, "'");
      if (seen[which]) user_error(where, ": array '", name, "' appears twice");
      seen[which] = true;
      if (dtype != "f32" && dtype != "bf16")
        user_error(where, ": array '", name, "' has unknown dtype ", nlohmann::json(dtype).dump(),  // quoted, escaped
                   " (this build reads f32 and bf16)");
      const ParamDtype type = dtype == "bf16" ? ParamDtype::BF16 : ParamDtype::F32;
      if (type == ParamDtype::BF16 && which != 0)
        user_error(where, ": array '", name, "' is bf16; optimizer state is stored as f32 only");
      const size_t width = dtype_bytes(type);
      // Division, not at + count·width: a count near 2^62 would wrap the sum back under the payload.
      if (count > (payload - at) / width)
        user_error(where, ": array '", name, "' (", count, " ", dtype, " values) runs past the payload of ", payload,
                   " bytes");
      std::vector<float>& dst = which == 0 ? ck.parameters : which == 1 ? ck.adam_m : ck.adam_v;
      dst.resize(count);
      const char* src = body.data() + at;
      if (type == ParamDtype::F32) {
        std::memcpy(dst.data(), src, count * sizeof(float));
      } else {
        for (uint64_t i = 0; i < count; ++i) {
          bf16 h;
          std::memcpy(&h.bits, src + 2 * i, 2);
          dst[i] = bf16_to_float(h);
        }
      }
      if (which == 0) ck.param_dtype = type;
      at += count * width;
    }
    if (at != payload)
      user_error(where, ": the payload holds ", payload, " bytes but its arrays' counts and dtypes account for ", at);
    if (ck.param_dtype == ParamDtype::BF16 && (seen[1] || seen[2]))
      user_error(where, ": bf16 parameters with optimizer state (a run to resume keeps f32 parameters)");
  } catch (const nlohmann::json::exception& e) {
    user_error(where, ": checkpoint metadata is malformed (", e.what(), ")");
  }
  if (ck.adam_m.size() != ck.adam_v.size() || (!ck.adam_m.empty() && ck.adam_m.size() != ck.parameters.size()))
    user_error(where, ": optimizer state does not match the parameters in size");
  uint64_t expected = 0;
  for (const auto& p : ck.params) {
    // Each entry on its own: an offset near 2^64 would wrap offset + numel back inside the array.
    if (p.offset > ck.parameters.size() || p.numel > ck.parameters.size() - p.offset)
      user_error(where, ": parameter '", p.name, "' (offset ", p.offset, ", ", p.numel, " values) lies outside the ",
                 ck.parameters.size(), " values the file holds");
    expected = std::max<uint64_t>(expected, p.offset + p.numel);
  }
  if (expected != ck.parameters.size())
    user_error(where, ": the parameter table covers ", expected, " values but the file holds ", ck.parameters.size());
  return ck;
}

std::filesystem::path checkpoint_file(const std::filesystem::path& dir, int64_t step) {
  char name[40];
  std::snprintf(name, sizeof name, "step_%08lld.ckpt", static_cast<long long>(step));
  return dir / name;
}

std::vector<std::pair<int64_t, std::filesystem::path>> list_checkpoints(const std::filesystem::path& dir) {
  std::vector<std::pair<int64_t, std::filesystem::path>> found;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return found;
  static const std::regex pattern(R"(step_(\d{8,})\.ckpt)");
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && std::regex_match(name, m, pattern)) found.emplace_back(std::stoll(m[1].str()), e.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

void prune_checkpoints(const std::filesystem::path& dir, int keep) {
  if (keep <= 0) return;
  auto all = list_checkpoints(dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) {
    std::error_code ec;
    std::filesystem::remove(all[i].second, ec);
    test_kill_point(all[i].second, "deleted");
  }
}

}  // namespace ferry
