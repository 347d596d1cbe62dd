// engine/model/encoder.h — the transformer trunk shared by every fine-tuning graph, causal (GPT) or
// bidirectional (BERT-style encoder), with optional padding masks and LoRA adapters.
//
// Same blocks and parameter names as build_gpt (wte, wpe, h.N.ln_1.weight, …, ln_f.*), so a GPT
// checkpoint loads into it by name; LoRA adds h.N.<matrix>.lora_a / lora_b, heads add head.<task>.*.
// The trunk ends at the final layernorm: heads read `hidden` [B,T,C]. build_gpt is this trunk plus
// the tied language-model head and cross_entropy, so pretraining and fine-tuning share one builder.
//
// Padding: with `key_lengths`, row b holds lengths[b] real tokens followed by padding; attention never
// reads a key at or beyond the length (causal or not), so real positions do not depend on padding.
#pragma once
#include <string>
#include <vector>

#include "engine/graph.h"
#include "engine/model/gpt.h"

namespace ferry {

// LoRA (Hu et al. 2021) on the block matrices: W·x + (alpha/rank)·B·(A·x), A [rank,IC] random,
// B [OC,rank] zero, so training starts from the pretrained function. rank 0: no adapters.
struct LoraConfig {
  int rank = 0;
  float alpha = 16.0f;
  float scaling() const { return rank > 0 ? alpha / static_cast<float>(rank) : 0.0f; }
};

// The matrices LoRA adapts, as name suffixes inside a block.
const std::vector<std::string>& lora_target_matrices();  // attn.qkv, attn.proj, mlp.fc, mlp.proj

struct TrunkOptions {
  int batch = 1;
  int seq_len = 1;
  DType dtype = DType::F32;
  bool key_lengths = true;  // an i32 [B] input masking padded keys
  int tokens = -1;          // an i32 [B,T] input the caller already added (-1: the trunk adds "tokens")
  bool lm_head = false;     // an untied config (tied_head = false) gets its lm_head.weight after ln_f
  LoraConfig lora;
};

struct Trunk {
  int tokens = -1;   // input i32 [B,T]
  int lengths = -1;  // input i32 [B] (absent when key_lengths = false)
  int hidden = -1;   // [B,T,C], after ln_f
  int wte = -1;      // the token embedding [Vp,C] (padded_vocab_size), for a tied language-model head
  int lm_head = -1;  // [Vp,C]: wte when tied, lm_head.weight when untied and TrunkOptions::lm_head
};

Trunk build_trunk(Graph& g, const GptConfig& c, const TrunkOptions& o);

// Encoder presets (causal = false): encoder-tiny (4×128), encoder-mini (2×64), encoder-nano (1×16);
// GPT presets come from gpt_preset. model_preset() looks in both.
GptConfig model_preset(const std::string& name);

// LoRA initialization of the adapter parameters (A ~ N(0, 1/IC), B = 0) into a flat host array;
// parameters without ".lora_" in the name are left alone.
void init_lora_params(const Graph& g, uint64_t seed, std::vector<float>& flat);

// W += scaling · B·A for every adapted matrix, in a flat array laid out like `g` (the adapters stay;
// export drops them).
void merge_lora(const Graph& g, const LoraConfig& lora, std::vector<float>& flat);

}  // namespace ferry
