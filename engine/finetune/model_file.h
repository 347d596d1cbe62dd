// engine/finetune/model_file.h — a model folder: parameters by NAME plus metadata, so a trunk
// trained under one head loads under another (the head and LoRA parameters of the new graph are
// simply not in the file and keep their initialization).
//
//   <dir>/model.json   {"format": "ferry-model-1", "meta": {...}, "params": [{name, shape, offset}]}
//   <dir>/params.bin   every parameter, f32 little-endian, at its offset (elements)
// Written to temporary names and renamed, so a crash never leaves a half-written model.
// (engine/checkpoint/ is the training checkpoint of `ferry pretrain`; this format is the fine-tuning
// commands' exchange folder until the two are merged.)
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/graph.h"

namespace ferry {

struct ModelFile {
  nlohmann::json meta;
  struct Entry {
    std::string name;
    Shape shape;
    size_t offset = 0;
  };
  std::vector<Entry> params;
  std::vector<float> data;
  const Entry* find(const std::string& name) const;
};

void save_model_file(const std::filesystem::path& dir, const nlohmann::json& meta, const Graph& g,
                     const std::vector<float>& flat);
// UserError naming the folder for a missing or malformed model.
ModelFile load_model_file(const std::filesystem::path& dir);

// Copies each parameter of `g` found in `file` (same name; UserError on a shape mismatch) into
// `flat` (laid out like g). Returns how many parameters were loaded.
int load_params_by_name(const ModelFile& file, const Graph& g, std::vector<float>& flat);

}  // namespace ferry
