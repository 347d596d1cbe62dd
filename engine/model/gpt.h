// engine/model/gpt.h — the GPT-2 family: config, presets, graph builder, initialization.
//
// Graph (per block, pre-norm, as GPT-2):
//   x ─► LN1 ─► QKV matmul ─► attention ─► proj matmul ─► (+x) ─► LN2 ─► FC matmul ─► GELU ─► FC2 ─► (+)
// Each residual add is fused into the layernorm that follows it (residual_layernorm), so a block
// reads its stream once. The head is tied to the token embedding unless tied_head = false.
// Parameter names follow Hugging Face's GPT-2 (transformer.h.0.attn.c_attn.weight → "h.0.attn.qkv.weight")
// in llm.c's per-layer order, so interop is a fixed mapping.
#pragma once
#include <string>
#include <type_traits>
#include <vector>

#include "engine/graph.h"

namespace ferry {

struct GptConfig {
  std::string preset;  // the name it came from, for metadata
  int n_layer = 0;
  int n_head = 0;
  int n_embd = 0;
  int vocab_size = 0;
  int max_seq_len = 0;  // rows of the position embedding
  bool tied_head = true;
  bool causal = true;   // false: bidirectional encoder attention (BERT-style)
};

// GptConfig's field table (engine/config_fields.h): the [model] table of a run config, the "model"
// of config.json and of every checkpoint, a task model's config — one list, one spelling.
template <typename Self, typename F>
std::enable_if_t<std::is_same_v<std::remove_const_t<Self>, GptConfig>> visit_fields(Self& c, F&& f) {
  f("preset", c.preset);  // a label: which preset the numbers came from (not compared)
  f("n_layer", c.n_layer);
  f("n_head", c.n_head);
  f("n_embd", c.n_embd);
  f("vocab_size", c.vocab_size);
  f("max_seq_len", c.max_seq_len);
  f("tied_head", c.tied_head);
  f("causal", c.causal);
}

// Built-in presets: gpt2-124m, gpt2-350m, gpt2-774m, gpt2-1558m (GPT-2 sizes, vocab 50257, 1024
// positions), and small ones for tests and CPU runs: tiny (4 layers, 128 wide), micro (2 layers, 64
// wide), nano (1 layer, 16 wide). Byte-level presets use vocab 256.
GptConfig gpt_preset(const std::string& name);
std::vector<std::string> gpt_preset_names();

// Throws UserError naming the field when a config cannot be built.
void validate_gpt(const GptConfig& c);

// The vocabulary as the graph holds it: vocab_size rounded up to a multiple of 128 (GPT-2's 50257 →
// 50304, as llm.c; 4096 stays). The token embedding (and an untied LM head) is [Vp, C], its rows
// from vocab_size on padding (ParamInfo::padded_rows: zero, outside checkpoints and model files,
// which keep the real vocabulary), so the LM head's matrix product and its [B,T,Vp] logits have
// leading dimensions that are 256-byte multiples in bf16 for cuBLASLt's tensor-core kernels,
// instead of 50257 — about 30% of GPT-2 124M's FLOPs. cross_entropy's "classes" attribute keeps
// the padded logits out of the loss and gives them a zero gradient.
inline constexpr int kVocabPadding = 128;
int padded_vocab_size(int vocab_size);

struct GptGraph {
  Graph graph;
  int tokens = -1;   // input i32 [B,T]
  int targets = -1;  // input i32 [B,T] (absent when build with_loss = false)
  int logits = -1;   // [B,T,Vp] (padded_vocab_size: columns from vocab_size on are padding)
  int loss = -1;     // output [1]
};

struct GptBuildOptions {
  int batch = 1;
  int seq_len = 1;
  DType dtype = DType::F32;
  bool with_loss = true;       // targets input + cross_entropy
  float loss_scale = 1.0f;     // 1/grad_accum
  int ignore_index = -1;
};

GptGraph build_gpt(const GptConfig& c, const GptBuildOptions& o);

// GPT-2 initialization: weights N(0, 0.02), residual projections N(0, 0.02/√(2·n_layer)), biases 0,
// layernorm weight 1. Writes into a host array laid out like the graph's flat parameter buffer.
void init_gpt_params(const Graph& g, const GptConfig& c, uint64_t seed, std::vector<double>& out);

// 6·N + 6·L·T·C FLOPs per token for a training step (N: non-embedding-position parameters counted as
// in the PaLM/llm.c MFU convention).
double gpt_flops_per_token(const GptConfig& c, int seq_len, int64_t n_params);

}  // namespace ferry
