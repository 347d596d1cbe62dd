// engine/model/gpt.cpp
#include "engine/model/gpt.h"

#include <cmath>
#include <map>

#include "base/error.h"
#include "engine/model/encoder.h"
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

int padded_vocab_size(int vocab_size) { return (vocab_size + kVocabPadding - 1) / kVocabPadding * kVocabPadding; }

GptGraph build_gpt(const GptConfig& c, const GptBuildOptions& o) {
  validate_gpt(c);
  FERRY_CHECK(o.seq_len <= c.max_seq_len && o.batch > 0 && o.seq_len > 0, "build_gpt batch shape");
  GptGraph m;
  Graph& g = m.graph;
  const int64_t B = o.batch, T = o.seq_len;
  m.tokens = g.add_input("tokens", {B, T}, DType::I32);
  if (o.with_loss) m.targets = g.add_input("targets", {B, T}, DType::I32);

  // The fine-tuning trunk without padding masks or adapters: one builder for every model.
  TrunkOptions to;
  to.batch = o.batch;
  to.seq_len = o.seq_len;
  to.dtype = o.dtype;
  to.key_lengths = false;
  to.tokens = m.tokens;
  to.lm_head = true;
  const Trunk trunk = build_trunk(g, c, to);
  m.logits = g.add("matmul", {trunk.hidden, trunk.lm_head}, {}, "lm_head")[0];
  if (o.with_loss) {
    auto ce = g.add("cross_entropy", {m.logits, m.targets},
                    {{"scale", o.loss_scale}, {"ignore_index", o.ignore_index}, {"classes", c.vocab_size}}, "loss");
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
