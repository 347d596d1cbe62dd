// engine/generate/kv_cache.cpp
#include "engine/generate/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "kernels/attention.h"
#include "kernels/attention_decode.h"
#include "kernels/gelu.h"
#include "kernels/layernorm.h"
#include "kernels/matmul.h"

namespace ferry {

namespace kc = kernels::cpu;

KvCacheDecoder::KvCacheDecoder(const GptConfig& c, std::vector<float> flat, int rows, int max_len)
    : config_(c), params_(std::move(flat)), rows_(rows), max_len_(max_len) {
  if (!c.causal) user_error("decoding needs a causal (GPT) model; this one has bidirectional attention");
  if (rows <= 0) user_error("decoding: ", rows, " rows");
  if (max_len <= 0 || max_len > c.max_seq_len)
    user_error("decoding length ", max_len, " must lie in [1, model.max_seq_len = ", c.max_seq_len, "]");
  GptBuildOptions o;
  o.with_loss = false;
  const GptGraph table = build_gpt(c, o);  // batch 1, one position: only its parameter table is used
  if (params_.size() != static_cast<size_t>(table.graph.param_count()))
    user_error("decoding: ", params_.size(), " parameter values for a model of ", table.graph.param_count());
  auto at = [&](const std::string& name) {
    const int i = table.graph.param_index(name);
    FERRY_CHECK(i >= 0, "GPT parameter ", name, " missing");
    return params_.data() + table.graph.params[i].offset;
  };
  wte_ = at("wte");
  wpe_ = at("wpe");
  lnfw_ = at("ln_f.weight");
  lnfb_ = at("ln_f.bias");
  head_ = c.tied_head ? wte_ : at("lm_head.weight");
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    blocks_.push_back({at(p + "ln_1.weight"), at(p + "ln_1.bias"), at(p + "attn.qkv.weight"), at(p + "attn.qkv.bias"),
                       at(p + "attn.proj.weight"), at(p + "attn.proj.bias"), at(p + "ln_2.weight"),
                       at(p + "ln_2.bias"), at(p + "mlp.fc.weight"), at(p + "mlp.fc.bias"),
                       at(p + "mlp.proj.weight"), at(p + "mlp.proj.bias")});
  }
  layer_stride_ = static_cast<size_t>(rows) * c.n_embd * max_len;  // rows · NH · max_len · HS
  kv_.assign(layer_stride_ * 2 * c.n_layer, 0.0f);
  lengths_.assign(rows, 0);
}

// The graph's block (engine/model/gpt.cpp) on N rows: the residual add fused into the next
// layernorm, the same kernels in the same order.
template <typename Attend>
void KvCacheDecoder::blocks(std::vector<float>& x, int N, Attend attend, std::vector<float>& logits, bool all_rows) {
  const int C = config_.n_embd, V = config_.vocab_size;
  const size_t n = static_cast<size_t>(N);
  std::vector<float> resid = x, resid_next(n * C), normed(n * C), mean(n), rstd(n), qkv(n * 3 * C), att(n * C),
                     proj(n * C), fc(n * 4 * C), act(n * 4 * C), pending(n * C);
  bool has_pending = false;
  for (int l = 0; l < config_.n_layer; ++l) {
    const Block& b = blocks_[l];
    if (!has_pending) {
      kc::residual_layernorm_forward<float>(nullptr, normed.data(), mean.data(), rstd.data(), resid.data(), nullptr,
                                            b.ln1w, b.ln1b, N, C);
    } else {
      kc::residual_layernorm_forward<float>(resid_next.data(), normed.data(), mean.data(), rstd.data(), resid.data(),
                                            pending.data(), b.ln1w, b.ln1b, N, C);
      std::swap(resid, resid_next);
    }
    kc::matmul_forward<float>(qkv.data(), normed.data(), b.qkvw, b.qkvb, N, C, 3 * C);
    attend(l, qkv.data(), att.data());
    kc::matmul_forward<float>(proj.data(), att.data(), b.projw, b.projb, N, C, C);
    kc::residual_layernorm_forward<float>(resid_next.data(), normed.data(), mean.data(), rstd.data(), resid.data(),
                                          proj.data(), b.ln2w, b.ln2b, N, C);
    std::swap(resid, resid_next);
    kc::matmul_forward<float>(fc.data(), normed.data(), b.fcw, b.fcb, N, C, 4 * C);
    kc::gelu_forward<float>(act.data(), fc.data(), fc.size());
    kc::matmul_forward<float>(pending.data(), act.data(), b.fc2w, b.fc2b, N, 4 * C, C);
    has_pending = true;
  }
  kc::residual_layernorm_forward<float>(resid_next.data(), normed.data(), mean.data(), rstd.data(), resid.data(),
                                        pending.data(), lnfw_, lnfb_, N, C);
  // Only the rows whose next token is wanted go through the vocabulary head (the largest matmul).
  const int first = all_rows ? 0 : N - 1, count = all_rows ? N : 1;
  logits.resize(static_cast<size_t>(count) * V);
  kc::matmul_forward<float>(logits.data(), normed.data() + static_cast<size_t>(first) * C, head_, nullptr, count, C, V);
}

std::vector<float> KvCacheDecoder::prefill(int row, const std::vector<int32_t>& prompt) {
  FERRY_CHECK(row >= 0 && row < rows_, "prefill row ", row);
  const int P = static_cast<int>(prompt.size());
  if (P == 0 || P > max_len_) user_error("decoding: a prompt of ", P, " tokens (1 to ", max_len_, " fit)");
  const int C = config_.n_embd, NH = config_.n_head, HS = C / NH;
  std::vector<float> x(static_cast<size_t>(P) * C);
  for (int t = 0; t < P; ++t) {
    const int32_t id = prompt[t];
    if (id < 0 || id >= config_.vocab_size) user_error("token ", id, " is outside the model's vocabulary");
    for (int c = 0; c < C; ++c) x[size_t(t) * C + c] = wte_[size_t(id) * C + c] + wpe_[size_t(t) * C + c];
  }
  std::vector<int32_t> positions(P), cache_rows(P, row);
  for (int t = 0; t < P; ++t) positions[t] = t;
  std::vector<float> lse(static_cast<size_t>(NH) * P);
  auto attend = [&](int layer, const float* qkv, float* out) {
    kc::kv_cache_append<float>(k_cache(layer), v_cache(layer), qkv, cache_rows.data(), positions.data(), P, NH, HS,
                               max_len_);
    kc::attention_forward<float>(out, lse.data(), qkv, nullptr, 1, P, NH, HS, true);
  };
  std::vector<float> logits;
  blocks(x, P, attend, logits, false);
  lengths_[row] = P;
  return logits;
}

std::vector<float> KvCacheDecoder::step(const std::vector<int>& active, const std::vector<int32_t>& tokens) {
  FERRY_CHECK(active.size() == tokens.size(), "decode step: ", active.size(), " rows, ", tokens.size(), " tokens");
  const int N = static_cast<int>(active.size());
  const int C = config_.n_embd, NH = config_.n_head, HS = C / NH;
  std::vector<float> x(static_cast<size_t>(N) * C);
  std::vector<int32_t> cache_rows(N), positions(N), lengths(N);
  for (int i = 0; i < N; ++i) {
    const int r = active[i];
    FERRY_CHECK(r >= 0 && r < rows_ && lengths_[r] > 0, "decode step on row ", r, " before its prefill");
    if (lengths_[r] >= max_len_) user_error("decoding: row ", r, " is full (", max_len_, " positions)");
    const int32_t id = tokens[i];
    if (id < 0 || id >= config_.vocab_size) user_error("token ", id, " is outside the model's vocabulary");
    cache_rows[i] = r;
    positions[i] = lengths_[r];
    lengths[i] = lengths_[r] + 1;
    for (int c = 0; c < C; ++c)
      x[size_t(i) * C + c] = wte_[size_t(id) * C + c] + wpe_[size_t(positions[i]) * C + c];
  }
  auto attend = [&](int layer, const float* qkv, float* out) {
    kc::kv_cache_append<float>(k_cache(layer), v_cache(layer), qkv, cache_rows.data(), positions.data(), N, NH, HS,
                               max_len_);
    kc::attention_decode<float>(out, qkv, k_cache(layer), v_cache(layer), cache_rows.data(), lengths.data(), N, NH,
                                HS, max_len_);
  };
  std::vector<float> logits;
  if (N > 0) blocks(x, N, attend, logits, true);
  for (int i = 0; i < N; ++i) lengths_[active[i]] = lengths[i];
  return logits;
}

void KvCacheDecoder::reorder(const std::vector<int>& source) {
  FERRY_CHECK(static_cast<int>(source.size()) == rows_, "reorder: ", source.size(), " sources for ", rows_, " rows");
  bool identity = true;
  for (int r = 0; r < rows_; ++r) identity = identity && source[r] == r;
  if (identity) return;
  const size_t row_floats = layer_stride_ / static_cast<size_t>(rows_);
  kv_scratch_.resize(kv_.size());
  std::vector<int32_t> lengths(rows_);
  for (int r = 0; r < rows_; ++r) {
    const int s = source[r];
    FERRY_CHECK(s >= 0 && s < rows_, "reorder source ", s);
    lengths[r] = lengths_[s];
    for (size_t part = 0; part < 2 * static_cast<size_t>(config_.n_layer); ++part) {
      const float* from = kv_.data() + part * layer_stride_ + static_cast<size_t>(s) * row_floats;
      float* to = kv_scratch_.data() + part * layer_stride_ + static_cast<size_t>(r) * row_floats;
      // Only the filled positions matter; a row's block is [NH, max_len, HS], so copy per head.
      const size_t HS = static_cast<size_t>(config_.n_embd / config_.n_head), used = size_t(lengths_[s]) * HS;
      for (int h = 0; h < config_.n_head; ++h)
        std::memcpy(to + h * max_len_ * HS, from + h * max_len_ * HS, used * sizeof(float));
    }
  }
  std::swap(kv_, kv_scratch_);
  lengths_ = std::move(lengths);
}

std::vector<std::vector<int32_t>> generate_cached(const GptConfig& c, const std::vector<float>& flat,
                                                  const std::vector<std::vector<int32_t>>& prompts,
                                                  const SamplingOptions& o, Rng& rng, int max_len) {
  const int R = static_cast<int>(prompts.size());
  std::vector<std::vector<int32_t>> out(R);
  if (R == 0) return out;
  KvCacheDecoder dec(c, flat, R, max_len);
  const int V = c.vocab_size;
  std::vector<int> active;
  std::vector<int32_t> next;
  for (int r = 0; r < R; ++r) {
    const std::vector<float> logits = dec.prefill(r, prompts[r]);
    if (o.max_new_tokens <= 0) continue;
    const int32_t id = sample_token(logits.data(), V, o, rng);
    out[r].push_back(id);
    if (id != o.stop_token && o.max_new_tokens > 1 && dec.length(r) < max_len) {
      active.push_back(r);
      next.push_back(id);
    }
  }
  while (!active.empty()) {
    const std::vector<float> logits = dec.step(active, next);
    std::vector<int> still;
    std::vector<int32_t> still_next;
    for (size_t i = 0; i < active.size(); ++i) {
      const int r = active[i];
      const int32_t id = sample_token(logits.data() + i * static_cast<size_t>(V), V, o, rng);
      out[r].push_back(id);
      if (id != o.stop_token && static_cast<int>(out[r].size()) < o.max_new_tokens && dec.length(r) < max_len) {
        still.push_back(r);
        still_next.push_back(id);
      }
    }
    active = std::move(still);
    next = std::move(still_next);
  }
  return out;
}

}  // namespace ferry
