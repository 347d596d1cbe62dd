// engine/generate/sampler.cpp
#include "engine/generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/error.h"
#include "engine/graph_dtype.h"
#include "kernels/dtype.h"

namespace ferry {

int32_t sample_token(const float* logits, int V, const SamplingOptions& o, Rng& rng) {
  FERRY_CHECK(V > 0, "no logits to sample from");
  if (o.temperature <= 0) return static_cast<int32_t>(std::max_element(logits, logits + V) - logits);
  std::vector<int32_t> ids(static_cast<size_t>(V));
  std::iota(ids.begin(), ids.end(), 0);
  size_t keep = ids.size();
  if (o.top_k > 0 && o.top_k < V) {
    keep = static_cast<size_t>(o.top_k);
    // Higher logit first, lower id on ties: a total order, so the kept set never depends on the sort.
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep), ids.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    std::sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep));
  }
  double max_logit = -INFINITY;
  for (size_t i = 0; i < keep; ++i) max_logit = std::max(max_logit, double(logits[ids[i]]));
  std::vector<double> weight(keep);
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += weight[i] = std::exp((double(logits[ids[i]]) - max_logit) / o.temperature);
  const double u = rng.uniform() * total;
  double acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += weight[i];
    if (u < acc) return ids[i];
  }
  return ids[keep - 1];
}

Generator::Generator(const GptConfig& c, Backend& backend, int context)
    : config_(c), backend_(backend), context_(context) {
  if (!c.causal) user_error("generation needs a causal (GPT) model; this one has bidirectional attention");
  if (context_ <= 0 || context_ > c.max_seq_len)
    user_error("generation context ", context_, " must lie in [1, model.max_seq_len = ", c.max_seq_len, "]");
  GptBuildOptions o;
  o.batch = 1;
  o.seq_len = context_;
  o.with_loss = false;
  graph_ = build_gpt(c, o);
  // The device's dtype, as the step runner and Inference do: bf16 on the CUDA backend (parameters rounded
  // on the way in by the executor, logits widened on the way out below).
  retype_for_device(graph_.graph, backend_.device());
  executor_ = std::make_unique<Executor>(graph_.graph, backend_);
}

Generator::~Generator() = default;

void Generator::set_parameters(const std::vector<float>& flat) {
  if (flat.size() != static_cast<size_t>(graph_.graph.param_count()))
    user_error("generation: ", flat.size(), " parameter values for a model of ", graph_.graph.param_count());
  executor_->set_parameters(flat);
}

void Generator::run(const std::vector<int32_t>& text, size_t len, std::vector<float>& logits) {
  // The last `len` tokens; positions after them hold 0 and, the attention being causal, cannot
  // change the logits of the positions before.
  std::vector<int32_t> window(static_cast<size_t>(context_), 0);
  std::copy(text.end() - static_cast<std::ptrdiff_t>(len), text.end(), window.begin());
  executor_->set_input(graph_.tokens, window.data(), window.size() * sizeof(int32_t));
  executor_->forward(false);
  // Rows of the padded vocabulary (gpt.h: padded_vocab_size); only the first vocab_size columns
  // are tokens.
  const Value& l = graph_.graph.values[graph_.logits];
  const size_t Vp = static_cast<size_t>(l.shape.back()), V = static_cast<size_t>(config_.vocab_size);
  const size_t n = static_cast<size_t>(context_) * Vp;
  std::vector<float> padded(n);
  if (l.dtype == DType::BF16) {
    std::vector<bf16> raw(n);
    executor_->read(graph_.logits, raw.data(), n * sizeof(bf16));
    for (size_t i = 0; i < n; ++i) padded[i] = bf16_to_float(raw[i]);
  } else {
    FERRY_CHECK(l.dtype == DType::F32, "generation logits in ", dtype_name(l.dtype));
    executor_->read(graph_.logits, padded.data(), n * sizeof(float));
  }
  logits.resize(static_cast<size_t>(context_) * V);
  for (size_t r = 0; r < static_cast<size_t>(context_); ++r)
    std::copy_n(padded.begin() + static_cast<std::ptrdiff_t>(r * Vp), V, logits.begin() + static_cast<std::ptrdiff_t>(r * V));
}

std::vector<float> Generator::logits(const std::vector<int32_t>& tokens) {
  if (tokens.empty() || tokens.size() > static_cast<size_t>(context_))
    user_error("logits: ", tokens.size(), " tokens for a context of ", context_);
  for (int32_t id : tokens)
    if (id < 0 || id >= config_.vocab_size) user_error("token ", id, " is outside the model's vocabulary");
  std::vector<float> all;
  run(tokens, tokens.size(), all);
  all.resize(tokens.size() * static_cast<size_t>(config_.vocab_size));
  return all;
}

std::vector<int32_t> Generator::generate(const std::vector<int32_t>& prompt, const SamplingOptions& o, Rng& rng) {
  if (prompt.empty()) user_error("generation needs a prompt of at least one token");
  const int V = config_.vocab_size;
  for (int32_t id : prompt)
    if (id < 0 || id >= V) user_error("prompt token ", id, " is outside the model's vocabulary (", V, ")");
  std::vector<int32_t> text = prompt, out;
  std::vector<float> logits;
  for (int n = 0; n < o.max_new_tokens; ++n) {
    const size_t len = std::min(text.size(), static_cast<size_t>(context_));
    run(text, len, logits);
    const int32_t next = sample_token(logits.data() + (len - 1) * static_cast<size_t>(V), V, o, rng);
    text.push_back(next);
    out.push_back(next);
    if (next == o.stop_token) break;
  }
  return out;
}

}  // namespace ferry
