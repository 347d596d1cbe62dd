// engine/model/gpt.cpp
#include "engine/model/gpt.h"

#include <cmath>
#include <map>

#include "engine/error.h"
#include "engine/random.h"

namespace ferry {

namespace {

const std::map<std::string, GptConfig>& presets() {
  static const std::map<std::string, GptConfig> p = {
      {"gpt2-124m", {"gpt2-124m", 12, 12, 768, 50257, 1024, true, true}},
      {"gpt2-350m", {"gpt2-350m", 24, 16, 1024, 50257, 1024, true, true}},
      {"gpt2-774m", {"gpt2-774m", 36, 20, 1280, 50257, 1024, true, true}},
      {"gpt2-1558m", {"gpt2-1558m", 48, 25, 1600, 50257, 1024, true, true}},
      {"gpt3-175b", {"gpt3-175b", 96, 96, 12288, 50257, 2048, true, true}},
      {"tiny", {"tiny", 4, 4, 128, 256, 256, true, true}},
      {"micro", {"micro", 2, 4, 64, 256, 128, true, true}},
      {"nano", {"nano", 1, 2, 16, 32, 16, true, true}},
  };
  return p;
}

}  // namespace

GptConfig gpt_preset(const std::string& name) {
  auto it = presets().find(name);
  if (it == presets().end()) {
    std::string known;
    for (const auto& [k, v] : presets()) known += (known.empty() ? "" : ", ") + k;
    user_error("model.preset: unknown preset '", name, "' (known: ", known, ")");
  }
  return it->second;
}

std::vector<std::string> gpt_preset_names() {
  std::vector<std::string> r;
  for (const auto& [k, v] : presets()) r.push_back(k);
  return r;
}

void validate_gpt(const GptConfig& c) {
  auto positive = [](const char* field, int v) {
    if (v <= 0) user_error(field, " must be a positive integer, got ", v);
  };
  positive("model.n_layer", c.n_layer);
  positive("model.n_head", c.n_head);
  positive("model.n_embd", c.n_embd);
  positive("model.vocab_size", c.vocab_size);
  positive("model.max_seq_len", c.max_seq_len);
  if (c.n_embd % c.n_head != 0)
    user_error("model.n_embd (", c.n_embd, ") must be divisible by model.n_head (", c.n_head, ")");
}

GptGraph build_gpt(const GptConfig& c, const GptBuildOptions& o) {
  validate_gpt(c);
  FERRY_CHECK(o.seq_len <= c.max_seq_len && o.batch > 0 && o.seq_len > 0, "build_gpt batch shape");
  GptGraph m;
  Graph& g = m.graph;
  const int64_t B = o.batch, T = o.seq_len, C = c.n_embd, V = c.vocab_size;
  const DType dt = o.dtype;
  m.tokens = g.add_input("tokens", {B, T}, DType::I32);
  if (o.with_loss) m.targets = g.add_input("targets", {B, T}, DType::I32);

  const int wte = g.add_param("wte", {V, C}, dt, true, -1);
  const int wpe = g.add_param("wpe", {c.max_seq_len, C}, dt, true, -1);
  struct Block {
    int ln1w, ln1b, qkvw, qkvb, projw, projb, ln2w, ln2b, fcw, fcb, fc2w, fc2b;
  };
  std::vector<Block> blocks(c.n_layer);
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    Block& b = blocks[l];
    b.ln1w = g.add_param(p + "ln_1.weight", {C}, dt, false, l);
    b.ln1b = g.add_param(p + "ln_1.bias", {C}, dt, false, l);
    b.qkvw = g.add_param(p + "attn.qkv.weight", {3 * C, C}, dt, true, l);
    b.qkvb = g.add_param(p + "attn.qkv.bias", {3 * C}, dt, false, l);
    b.projw = g.add_param(p + "attn.proj.weight", {C, C}, dt, true, l);
    b.projb = g.add_param(p + "attn.proj.bias", {C}, dt, false, l);
    b.ln2w = g.add_param(p + "ln_2.weight", {C}, dt, false, l);
    b.ln2b = g.add_param(p + "ln_2.bias", {C}, dt, false, l);
    b.fcw = g.add_param(p + "mlp.fc.weight", {4 * C, C}, dt, true, l);
    b.fcb = g.add_param(p + "mlp.fc.bias", {4 * C}, dt, false, l);
    b.fc2w = g.add_param(p + "mlp.proj.weight", {C, 4 * C}, dt, true, l);
    b.fc2b = g.add_param(p + "mlp.proj.bias", {C}, dt, false, l);
  }
  const int lnfw = g.add_param("ln_f.weight", {C}, dt, false, -1);
  const int lnfb = g.add_param("ln_f.bias", {C}, dt, false, -1);
  const int head = c.tied_head ? wte : g.add_param("lm_head.weight", {V, C}, dt, true, -1);

  int resid = g.add("embedding", {m.tokens, wte, wpe}, {}, "embed")[0];
  int pending = -1;  // the branch output still to be added into the residual stream
  int normed = -1;
  for (int l = 0; l < c.n_layer; ++l) {
    const Block& b = blocks[l];
    const std::string p = "h" + std::to_string(l) + ".";
    if (pending < 0) {
      normed = g.add("layernorm", {resid, b.ln1w, b.ln1b}, {}, p + "ln1")[0];
    } else {
      auto o1 = g.add("residual_layernorm", {resid, pending, b.ln1w, b.ln1b}, {}, p + "ln1");
      resid = o1[0];
      normed = o1[1];
    }
    const int qkv = g.add("matmul", {normed, b.qkvw, b.qkvb}, {}, p + "qkv")[0];
    const int att = g.add("attention", {qkv, -1}, {{"n_head", c.n_head}, {"causal", c.causal ? 1 : 0}},
                          p + "attn")[0];
    const int proj = g.add("matmul", {att, b.projw, b.projb}, {}, p + "proj")[0];
    auto o2 = g.add("residual_layernorm", {resid, proj, b.ln2w, b.ln2b}, {}, p + "ln2");
    resid = o2[0];
    const int fc = g.add("matmul", {o2[1], b.fcw, b.fcb}, {}, p + "fc")[0];
    const int act = g.add("gelu", {fc}, {}, p + "gelu")[0];
    pending = g.add("matmul", {act, b.fc2w, b.fc2b}, {}, p + "fc2")[0];
  }
  const int final_norm = g.add("residual_layernorm", {resid, pending, lnfw, lnfb}, {}, "ln_f")[1];
  m.logits = g.add("matmul", {final_norm, head}, {}, "lm_head")[0];
  if (o.with_loss) {
    auto ce = g.add("cross_entropy", {m.logits, m.targets},
                    {{"scale", o.loss_scale}, {"ignore_index", o.ignore_index}}, "loss");
    m.loss = ce[1];
    g.mark_output(m.loss);
    g.loss = m.loss;
  } else {
    g.mark_output(m.logits);
  }
  return m;
}

void init_gpt_params(const Graph& g, const GptConfig& c, uint64_t seed, std::vector<double>& out) {
  out.assign(static_cast<size_t>(g.param_count()), 0.0);
  Rng rng(seed);
  const double residual_std = 0.02 / std::sqrt(2.0 * c.n_layer);
  for (const ParamInfo& p : g.params) {
    const std::string& n = p.name;
    double* w = out.data() + p.offset;
    auto ends_with = [&](const char* s) {
      const std::string suf(s);
      return n.size() >= suf.size() && n.compare(n.size() - suf.size(), suf.size(), suf) == 0;
    };
    if (ends_with(".bias")) continue;  // zeros
    if (n.find("ln_") != std::string::npos) {
      for (int64_t i = 0; i < p.numel; ++i) w[i] = 1.0;
      continue;
    }
    const double std = (ends_with("attn.proj.weight") || ends_with("mlp.proj.weight")) ? residual_std : 0.02;
    // Each tensor draws from its own stream so that adding a parameter does not shift the others.
    Rng tensor_rng(rng.next_u64());
    for (int64_t i = 0; i < p.numel; ++i) w[i] = std * tensor_rng.normal();
  }
}

double gpt_flops_per_token(const GptConfig& c, int seq_len, int64_t n_params) {
  return 6.0 * static_cast<double>(n_params) + 6.0 * c.n_layer * seq_len * c.n_embd;
}

}  // namespace ferry
