// tools/convert/load_model.h — any model file ferry reads (its checkpoint, llm.c, safetensors) as
// weights plus config, and the tokenizer that matches a model's vocabulary.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/checkpoint/checkpoint.h"

namespace ferry::convert {

Checkpoint load_any_model(const std::filesystem::path& path, std::optional<int> n_head = std::nullopt);

struct TextCodec {
  std::function<std::vector<int32_t>(const std::string&)> encode;
  std::function<std::string(const std::vector<int32_t>&)> decode;
};
// GPT-2 BPE for vocab 50257, bytes for vocab ≤ 256 (byte-level presets); UserError otherwise.
TextCodec codec_for_vocab(int vocab_size);

}  // namespace ferry::convert
