// engine/finetune/model_file.h — models for the fine-tuning commands, in the ONE checkpoint format
// (engine/checkpoint/checkpoint.h): a pretraining checkpoint of `ferry pretrain` and a fine-tuned
// task model are the same kind of file, read and written by the same code.
//
// A task model is a checkpoint whose parameter table names every parameter of its graph (trunk,
// head.<task>.*), whose `model` is the trunk's config, whose state holds {"finetune": meta} (the
// task, vocabulary, head: the commands' own description) and which carries no optimizer state. A
// pretraining checkpoint has no "finetune" state: its meta is empty and its trunk is read with
// GPT-2's vocabulary. Either way parameters load by NAME, so a trunk trained under one head loads
// under another (parameters the file lacks — a new head, LoRA adapters — keep their initialization).
//
// A path may name a checkpoint file or a folder: a `ferry pretrain` checkpoint folder (its newest
// step_*.ckpt) or a `ferry finetune` output folder (its model.ckpt). Weights from other programs
// (llm.c model files, safetensors) are read by tools/convert and enter here through model_file_of,
// as a model without meta: a pretrained trunk like a `ferry pretrain` checkpoint.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/checkpoint/checkpoint.h"
#include "engine/graph.h"
#include "engine/model/gpt.h"

namespace ferry {

struct ModelFile {
  std::filesystem::path path;  // the checkpoint file actually read
  GptConfig config;            // the trunk's architecture
  nlohmann::json meta;         // state["finetune"]; null for a pretraining checkpoint
  int64_t step = 0;            // the step it was written at (pretraining) or 0
  struct Entry {
    std::string name;
    size_t offset = 0;
    size_t numel = 0;
  };
  std::vector<Entry> params;
  std::vector<float> data;
  bool pretraining() const { return meta.is_null(); }
  const Entry* find(const std::string& name) const;
};

// The file a task model is written to inside a `ferry finetune` output folder.
inline constexpr const char* kTaskModelFile = "model.ckpt";

// Writes a checkpoint (atomically) of g's parameters under their names.
void save_model_file(const std::filesystem::path& file, const GptConfig& config, const nlohmann::json& meta,
                     const Graph& g, const std::vector<float>& flat);
// The checkpoint file a model path names: the path itself, a `ferry finetune` output folder's
// model.ckpt, or a `ferry pretrain` run folder's newest step_*.ckpt (also under checkpoints/).
// UserError for a folder with neither.
std::filesystem::path resolve_model_path(const std::filesystem::path& path);
// UserError naming the path for a missing, corrupt or malformed model.
ModelFile load_model_file(const std::filesystem::path& path);
// A model already read (a ferry checkpoint, or weights imported from another program's file) as a
// ModelFile: its "finetune" state, if any, becomes the meta.
ModelFile model_file_of(Checkpoint ck, const std::filesystem::path& path);

// Copies each parameter of `g` found in `file` (same name; UserError on a size mismatch) into
// `flat` (laid out like g). Returns how many parameters were loaded.
int load_params_by_name(const ModelFile& file, const Graph& g, std::vector<float>& flat);

}  // namespace ferry
