// engine/checkpoint/checkpoint.h — one file that holds everything a run needs to continue exactly:
// parameters (fp32), AdamW state, the step, the model config, and the trainer's state (schedule
// position, RNG, loader positions, the run config) as JSON. A model file (no optimizer state: a
// model to fine-tune, evaluate or generate from, not a run to resume) may store its parameters as
// bf16, half the bytes; readers widen them to fp32, so every command that loads a model reads both.
//
// Layout (little-endian):
//   [0, 8)    magic "FERRYCKP"
//   [8, 12)   u32 format version (kCheckpointVersion)
//   [12, 16)  u32 zero
//   [16, 24)  u64 M = bytes of the JSON metadata
//   [24, 32)  u64 P = bytes of the payload
//   M bytes   JSON: step, model, params [{name, offset, numel}], arrays [{name, count}], state
//   P bytes   the arrays in metadata order, each in its metadata dtype: "params" (f32, or bf16 in
//             a file without optimizer state), then "adam_m", "adam_v" (always f32) when present
//   8 bytes   u64 Hash64 of every byte before it
//
// Arrays are full and in the single-process graph's flat parameter order, whatever the parallel
// layout that wrote them, so any layout can resume any checkpoint. A short file, a checksum that
// does not match, an unknown version or a model that differs from the run's is a one-line UserError
// naming the file; so is an unknown dtype, or array counts and dtypes that do not add up to P
// bytes. Writes are atomic (engine/checkpoint/atomic_file.h): a failed or killed write leaves the
// previous checkpoint as it was.
//
// bf16 parameters (each array's "dtype" in the metadata, "f32" or "bf16") came without a version
// change: every version-1 file already named its arrays' dtypes, and a version-1 reader that
// predates bf16 refuses such a file (its f32 count runs past the payload) rather than misreading it.
// bf16 is the upper half of the f32 bits, rounded to nearest even; a NaN stays a NaN.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/model/gpt.h"

namespace ferry {

inline constexpr uint32_t kCheckpointVersion = 1;

// How the "params" array is stored in the file. In memory parameters are always f32.
enum class ParamDtype { F32, BF16 };

struct CheckpointParam {
  std::string name;
  uint64_t offset = 0;  // elements into the flat parameter array
  uint64_t numel = 0;
};

struct Checkpoint {
  int64_t step = 0;
  GptConfig model;
  std::vector<CheckpointParam> params;
  std::vector<float> parameters;
  // As read from the file; as the writer stores them (bf16: rounded, and only without adam_m/adam_v,
  // else write_checkpoint refuses with a UserError).
  ParamDtype param_dtype = ParamDtype::F32;
  // AdamW: empty m and v mean "no optimizer state" (an imported model, not a run to resume).
  int64_t adam_steps = 0;
  std::vector<float> adam_m, adam_v;
  nlohmann::json state = nlohmann::json::object();  // the trainer's: schedule, rng, data, run config
};

void write_checkpoint(const std::filesystem::path& path, const Checkpoint& ckpt);
Checkpoint read_checkpoint(const std::filesystem::path& path);

// The parameter table of a GPT config (names, offsets, sizes in the graph's flat order).
std::vector<CheckpointParam> gpt_param_table(const GptConfig& c);

// "" when a and b describe the same model, else "model.<field>: <a> vs <b>" for the first difference
// (the preset name is a label and not compared).
std::string model_difference(const GptConfig& a, const GptConfig& b);

nlohmann::json gpt_config_to_json(const GptConfig& c);
// Throws UserError naming `where` and the field when one is missing or mistyped.
GptConfig gpt_config_from_json(const nlohmann::json& j, const std::string& where);

// A run's checkpoint folder: <dir>/step_<8 digits>.ckpt files.
std::filesystem::path checkpoint_file(const std::filesystem::path& dir, int64_t step);
// (step, path) of every checkpoint file in dir, oldest first; empty when dir does not exist.
std::vector<std::pair<int64_t, std::filesystem::path>> list_checkpoints(const std::filesystem::path& dir);
// Deletes all but the newest `keep` checkpoint files (keep ≤ 0: keeps all).
void prune_checkpoints(const std::filesystem::path& dir, int keep);

}  // namespace ferry
