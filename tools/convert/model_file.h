// tools/convert/model_file.h — moving GPT-2 weights between ferry and other programs:
//   - llm.c's model file (train_gpt2.c / train_gpt2.cu): a header of 256 int32 — [0] 20240326 magic,
//     [1] version (3: fp32, 5: bf16), [2] max_seq_len, [3] vocab_size, [4] n_layer, [5] n_head,
//     [6] n_embd, [7] padded vocab (a multiple of 128) — then the 16 tensors in llm.c's fixed order
//     (wte [Vp,C], wpe, then each per-layer tensor stacked over the layers: ln1w, ln1b, qkvw, qkvb,
//     attprojw, attprojb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb; then lnfw, lnfb). Weights are
//     [out, in] as in ferry; the head is tied to wte; the padding rows of wte are zero.
//   - Hugging Face safetensors (GPT2LMHeadModel's names, `transformer.` prefix optional on import):
//     Conv1D weights are [in, out], the transpose of ferry's; c_attn packs q, k, v like ferry's qkv;
//     the tied lm_head is not stored. n_head is not in the weights: it comes from the file's
//     metadata (ferry writes it), a config.json beside the file, or the caller.
// A model in memory is a Checkpoint (engine/checkpoint) without optimizer state.
#pragma once
#include <filesystem>
#include <optional>

#include "engine/checkpoint/checkpoint.h"

namespace ferry::convert {

enum class WeightType { F32, BF16 };

inline constexpr int32_t kLlmcMagic = 20240326;
inline constexpr int32_t kLlmcVersionF32 = 3;
inline constexpr int32_t kLlmcVersionBF16 = 5;

// llm.c pads the vocabulary to a multiple of 128 rows (64-bit: a header's vocab may be near INT32_MAX).
inline int64_t llmc_padded_vocab(int64_t V) { return (V + 127) / 128 * 128; }

void write_llmc(const std::filesystem::path& path, const Checkpoint& model, WeightType type);
Checkpoint read_llmc(const std::filesystem::path& path);

void write_safetensors(const std::filesystem::path& path, const Checkpoint& model, WeightType type);
Checkpoint read_safetensors(const std::filesystem::path& path, std::optional<int> n_head = std::nullopt);

// Which kind of file this is, from its first bytes: "ferry", "llmc", "safetensors"; UserError if none.
std::string detect_model_file(const std::filesystem::path& path);

// fp32 → bf16 with round-to-nearest-even (NaN stays NaN), and back (exact).
uint16_t to_bf16(float f);
float from_bf16(uint16_t h);

}  // namespace ferry::convert
