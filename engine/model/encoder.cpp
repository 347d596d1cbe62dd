// engine/model/encoder.cpp
#include "engine/model/encoder.h"

#include <cmath>

#include "base/error.h"
#include "engine/random.h"

namespace ferry {

const std::vector<std::string>& lora_target_matrices() {
  static const std::vector<std::string> m = {"attn.qkv", "attn.proj", "mlp.fc", "mlp.proj"};
  return m;
}

GptConfig model_preset(const std::string& name) {
  if (name == "encoder-tiny") return {"encoder-tiny", 4, 4, 128, 256, 256, true, false};
  if (name == "encoder-mini") return {"encoder-mini", 2, 4, 64, 256, 128, true, false};
  if (name == "encoder-nano") return {"encoder-nano", 1, 2, 16, 32, 16, true, false};
  return gpt_preset(name);
}

namespace {

// The parameters of one dense layer of a block (its LoRA adapters after the bias when on).
struct Dense {
  int w = -1, b = -1, lora_a = -1, lora_b = -1;
};

Dense dense_params(Graph& g, const std::string& prefix, int oc, int ic, int layer, DType dt, const LoraConfig& lora) {
  Dense d;
  d.w = g.add_param(prefix + ".weight", {oc, ic}, dt, true, layer);
  d.b = g.add_param(prefix + ".bias", {oc}, dt, false, layer);
  if (lora.rank > 0) {
    d.lora_a = g.add_param(prefix + ".lora_a", {lora.rank, ic}, dt, false, layer);
    d.lora_b = g.add_param(prefix + ".lora_b", {oc, lora.rank}, dt, false, layer);
  }
  return d;
}

// x·Wᵀ + b, plus the LoRA path (alpha/rank)·B·(A·x) when adapters are on.
int dense(Graph& g, int x, const Dense& d, const LoraConfig& lora, const std::string& node_name) {
  int y = g.add("matmul", {x, d.w, d.b}, {}, node_name)[0];
  if (d.lora_a >= 0) {
    const int down = g.add("matmul", {x, d.lora_a}, {}, node_name + ".lora_down")[0];
    const int up = g.add("matmul", {down, d.lora_b}, {}, node_name + ".lora_up")[0];
    const int scaled = g.add("scale", {up}, {{"s", lora.scaling()}}, node_name + ".lora_scale")[0];
    y = g.add("add", {y, scaled}, {}, node_name + ".lora_add")[0];
  }
  return y;
}

}  // namespace

Trunk build_trunk(Graph& g, const GptConfig& c, const TrunkOptions& o) {
  validate_gpt(c);
  if (o.seq_len > c.max_seq_len)
    user_error("seq_len ", o.seq_len, " exceeds the model's max_seq_len ", c.max_seq_len);
  FERRY_CHECK(o.batch > 0 && o.seq_len > 0, "build_trunk batch shape");
  if (o.lora.rank < 0) user_error("lora.rank must be >= 0, got ", o.lora.rank);
  Trunk t;
  const int64_t B = o.batch, T = o.seq_len, C = c.n_embd, V = c.vocab_size, Vp = padded_vocab_size(c.vocab_size);
  const DType dt = o.dtype;
  t.tokens = o.tokens >= 0 ? o.tokens : g.add_input("tokens", {B, T}, DType::I32);
  if (o.key_lengths) t.lengths = g.add_input("lengths", {B}, DType::I32);

  // Every parameter first, in llm.c's per-layer order (the flat layout checkpoints and the
  // parallel rewrites rely on), then the nodes.
  // The vocabulary padded to a multiple of 128 (gpt.h): rows V..Vp-1 are zero padding.
  t.wte = g.add_param("wte", {Vp, C}, dt, true, -1, Vp - V);
  const int wpe = g.add_param("wpe", {c.max_seq_len, C}, dt, true, -1);
  struct Block {
    int ln1w, ln1b, ln2w, ln2b;
    Dense qkv, proj, fc, fc2;
  };
  std::vector<Block> blocks(c.n_layer);
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    Block& b = blocks[l];
    b.ln1w = g.add_param(p + "ln_1.weight", {C}, dt, false, l);
    b.ln1b = g.add_param(p + "ln_1.bias", {C}, dt, false, l);
    b.qkv = dense_params(g, p + "attn.qkv", 3 * C, C, l, dt, o.lora);
    b.proj = dense_params(g, p + "attn.proj", C, C, l, dt, o.lora);
    b.ln2w = g.add_param(p + "ln_2.weight", {C}, dt, false, l);
    b.ln2b = g.add_param(p + "ln_2.bias", {C}, dt, false, l);
    b.fc = dense_params(g, p + "mlp.fc", 4 * C, C, l, dt, o.lora);
    b.fc2 = dense_params(g, p + "mlp.proj", C, 4 * C, l, dt, o.lora);
  }
  const int lnfw = g.add_param("ln_f.weight", {C}, dt, false, -1);
  const int lnfb = g.add_param("ln_f.bias", {C}, dt, false, -1);
  t.lm_head = c.tied_head ? t.wte : o.lm_head ? g.add_param("lm_head.weight", {Vp, C}, dt, true, -1, Vp - V) : -1;

  int resid = g.add("embedding", {t.tokens, t.wte, wpe}, {}, "embed")[0];
  int pending = -1;  // the branch output still to be added into the residual stream
  for (int l = 0; l < c.n_layer; ++l) {
    const Block& b = blocks[l];
    const std::string n = "h" + std::to_string(l) + ".";
    int normed;
    if (pending < 0) {
      normed = g.add("layernorm", {resid, b.ln1w, b.ln1b}, {}, n + "ln1")[0];
    } else {
      auto o1 = g.add("residual_layernorm", {resid, pending, b.ln1w, b.ln1b}, {}, n + "ln1");
      resid = o1[0];
      normed = o1[1];
    }
    const int qkv = dense(g, normed, b.qkv, o.lora, n + "qkv");
    const int att = g.add("attention", {qkv, t.lengths}, {{"n_head", c.n_head}, {"causal", c.causal ? 1 : 0}},
                          n + "attn")[0];
    const int proj = dense(g, att, b.proj, o.lora, n + "proj");
    auto o2 = g.add("residual_layernorm", {resid, proj, b.ln2w, b.ln2b}, {}, n + "ln2");
    resid = o2[0];
    const int fc = dense(g, o2[1], b.fc, o.lora, n + "fc");
    const int act = g.add("gelu", {fc}, {}, n + "gelu")[0];
    pending = dense(g, act, b.fc2, o.lora, n + "fc2");
  }
  t.hidden = g.add("residual_layernorm", {resid, pending, lnfw, lnfb}, {}, "ln_f")[1];
  return t;
}

void init_lora_params(const Graph& g, uint64_t seed, std::vector<float>& flat) {
  FERRY_CHECK(flat.size() == static_cast<size_t>(g.param_count()), "init_lora_params layout");
  Rng rng(seed ^ 0x4C6F5241ull);
  for (const ParamInfo& p : g.params) {
    const auto pos = p.name.find(".lora_");
    if (pos == std::string::npos) continue;
    float* w = flat.data() + p.offset;
    Rng tensor_rng(rng.next_u64());
    if (p.name.compare(pos, 7, ".lora_a") == 0) {
      const double std = 1.0 / std::sqrt(static_cast<double>(g.values[p.value].shape[1]));
      for (int64_t i = 0; i < p.numel; ++i) w[i] = static_cast<float>(std * tensor_rng.normal());
    } else {
      for (int64_t i = 0; i < p.numel; ++i) w[i] = 0.0f;
    }
  }
}

void merge_lora(const Graph& g, const LoraConfig& lora, std::vector<float>& flat) {
  if (lora.rank <= 0) return;
  const float s = lora.scaling();
  for (const ParamInfo& p : g.params) {
    const std::string suffix = ".lora_a";
    if (p.name.size() < suffix.size() || p.name.compare(p.name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string prefix = p.name.substr(0, p.name.size() - suffix.size());
    const ParamInfo& a = p;
    const int bi = g.param_index(prefix + ".lora_b");
    const int wi = g.param_index(prefix + ".weight");
    FERRY_CHECK(bi >= 0 && wi >= 0, "LoRA adapter without its matrix: ", prefix);
    const ParamInfo& b = g.params[bi];
    const ParamInfo& w = g.params[wi];
    const Shape& ws = g.values[w.value].shape;
    const int64_t OC = ws[0], IC = ws[1], R = lora.rank;
    for (int64_t o = 0; o < OC; ++o)
      for (int64_t i = 0; i < IC; ++i) {
        double acc = 0;
        for (int64_t r = 0; r < R; ++r) acc += double(flat[b.offset + o * R + r]) * flat[a.offset + r * IC + i];
        flat[w.offset + o * IC + i] += static_cast<float>(s * acc);
      }
  }
}

}  // namespace ferry
