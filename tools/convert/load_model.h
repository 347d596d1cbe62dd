// tools/convert/load_model.h — any model ferry reads, whatever wrote it, as weights plus config: a
// ferry checkpoint, a `ferry pretrain` run folder (its newest checkpoint), a `ferry finetune` output
// folder (its model.ckpt), an llm.c model file (fp32 or bf16, padded vocabulary) or Hugging Face
// safetensors; and the tokenizer that matches a model's vocabulary. Every command that takes a
// model (pretrain/finetune --init, eval, generate) reads it through here, so all accept the same files.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/checkpoint/checkpoint.h"
#include "engine/finetune/model_file.h"

namespace ferry::convert {

// n_head: for a safetensors file that says neither in its metadata nor in a config.json beside it.
Checkpoint load_any_model(const std::filesystem::path& path, std::optional<int> n_head = std::nullopt);
// The same as the fine-tuning commands' ModelFile (an imported file has no task meta and step 0).
ModelFile load_any_model_file(const std::filesystem::path& path, std::optional<int> n_head = std::nullopt);

struct TextCodec {
  std::function<std::vector<int32_t>(const std::string&)> encode;
  std::function<std::string(const std::vector<int32_t>&)> decode;
};
// GPT-2 BPE for vocab 50257, bytes for vocab ≤ 256 (byte-level presets); UserError otherwise.
TextCodec codec_for_vocab(int vocab_size);

}  // namespace ferry::convert
