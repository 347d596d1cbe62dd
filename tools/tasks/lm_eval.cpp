// tools/tasks/lm_eval.cpp
#include "tools/tasks/lm_eval.h"

#include <algorithm>
#include <cmath>

#include "engine/data/eval_windows.h"
#include "base/error.h"
#include "engine/finetune/inference.h"
#include "engine/model/gpt.h"
#include "tools/tasks/model_setup.h"

namespace ferry::tasks {

namespace {

// Every parameter of g from the model file, by name; the first one it lacks is named.
std::vector<float> parameters_for(const ModelFile& model, const Graph& g) {
  for (const ParamInfo& p : g.params)
    if (!model.find(p.name))
      user_error("model '", model.path.string(), "' has no parameter '", p.name, "' (not a ",
                 model.config.causal ? "GPT" : "transformer", " language model of ferry's layout)");
  std::vector<float> flat(static_cast<size_t>(g.param_count()));
  load_params_by_name(model, g, flat);
  return flat;
}

}  // namespace

nlohmann::ordered_json LmEvalResult::json() const {
  nlohmann::ordered_json j;
  j["loss"] = loss;
  j["perplexity"] = perplexity;
  j["tokens"] = tokens;
  j["windows"] = windows;
  return j;
}

std::string default_lm_task(const ModelFile& model) { return model.config.causal ? "lm" : "mlm"; }

LmEvalResult evaluate_lm(const ModelFile& model, Backend& backend, const LmEvalOptions& o,
                         const std::function<void(size_t, size_t, double)>& progress) {
  const std::string name = model.path.string();
  const GptConfig& c = model.config;
  if (o.task != "lm" && o.task != "mlm") user_error("--task ", o.task, ": a loss over token shards is lm or mlm");
  ModelMeta meta;
  if (!model.pretraining()) {
    meta = ModelMeta::from_json(model.meta);
    if (meta.head.kind != HeadKind::LanguageModel)
      user_error("model '", name, "' is a ", meta.task, " model (a classification head), not a language model");
  }
  if (o.task == "lm" && !c.causal)
    user_error("--task lm: model '", name, "' is a bidirectional encoder; its loss is the masked-token loss (--task mlm)");
  if (o.task == "mlm" && c.causal)
    user_error("--task mlm: model '", name, "' is a causal GPT; its loss is the next-token loss (--task lm)");
  if (o.batch < 0 || o.seq_len < 0) user_error("--batch-size and --seq-len must be positive");
  const int B = o.batch > 0 ? o.batch : kDefaultBatch;
  const int T = o.seq_len > 0 ? o.seq_len : std::min(kDefaultSeqLen, c.max_seq_len);
  if (T > c.max_seq_len)
    user_error("--seq-len ", T, " exceeds the model's ", c.max_seq_len, " positions (model '", name, "')");
  if (o.data.empty()) user_error("--data is required with --task ", o.task, " (a folder, glob or file of token shards)");

  const data::EvalWindows windows(o.data, B, T, c.vocab_size);
  const uint64_t window_tokens = uint64_t(B) * uint64_t(T) + 1;
  if (windows.size() == 0)
    user_error("--data '", o.data, "': its ", windows.shard_count(), " shard(s) hold ", windows.total_tokens(),
               " tokens and none holds one window of ", B, " x ", T, " + 1 = ", window_tokens,
               " tokens (lower --batch-size or --seq-len)");
  if (o.max_windows > windows.size())
    user_error("--batches ", o.max_windows, ": the shards of '", o.data, "' hold ", windows.size(), " windows of ",
               window_tokens, " tokens");
  const size_t N = o.max_windows > 0 ? o.max_windows : windows.size();

  LmEvalResult r;
  r.batch = B;
  r.seq_len = T;
  std::vector<int32_t> inputs(size_t(B) * T), targets(size_t(B) * T);
  double sum = 0;  // lm: Σ window means; mlm: Σ batch mean × masked positions
  if (o.task == "lm") {
    GptBuildOptions bo;
    bo.batch = B;
    bo.seq_len = T;
    bo.dtype = DType::F32;  // Inference retypes it to the device's (bf16 on CUDA)
    GptGraph g = build_gpt(c, bo);
    const std::vector<float> params = parameters_for(model, g.graph);
    const int tokens = g.tokens, tgt = g.targets;
    Inference inf(std::move(g.graph), -1, backend);
    inf.set_parameters(params);
    for (size_t k = 0; k < N; ++k) {
      windows.read(k, inputs.data(), targets.data());
      Batch b;
      b.inputs.emplace_back(tokens, inputs);
      b.inputs.emplace_back(tgt, targets);
      sum += inf.loss(b);
      if (progress) progress(k + 1, N, sum / double(k + 1));
    }
    r.tokens = uint64_t(N) * uint64_t(B) * uint64_t(T);
    r.loss = sum / double(N);
  } else {
    if (model.pretraining()) meta = ModelMeta::of(model);  // GPT-2's vocabulary: <mask> = <|endoftext|>
    TaskModel m;
    m.meta = meta;
    m.meta.seq_len = T;
    m.batch = B;
    TaskGraph g = m.graph(false, 0);
    const std::vector<float> params = parameters_for(model, g.graph);
    const GraphInputs in = GraphInputs::of(g);
    Inference inf(std::move(g.graph), -1, backend);
    inf.set_parameters(params);
    std::mt19937_64 rng = heldout_mask_rng(o.seed);
    for (size_t k = 0; k < N; ++k) {
      windows.read(k, inputs.data(), targets.data());
      std::vector<Example> rows(static_cast<size_t>(B));
      std::vector<const Example*> ptrs;
      uint64_t masked = 0;
      for (int b = 0; b < B; ++b) {
        Example& e = rows[static_cast<size_t>(b)];
        e.ids.assign(inputs.begin() + std::ptrdiff_t(b) * T, inputs.begin() + std::ptrdiff_t(b + 1) * T);
        mask_for_mlm(e, m.meta, rng);
        masked += static_cast<uint64_t>(std::count_if(e.token_labels.begin(), e.token_labels.end(),
                                                      [](int32_t l) { return l != kIgnoreLabel; }));
        ptrs.push_back(&e);
      }
      if (masked > 0) sum += inf.loss(make_batch(in, HeadKind::LanguageModel, ptrs, B, T, m.meta.vocab.pad())) *
                             double(masked);
      r.tokens += masked;
      if (progress) progress(k + 1, N, r.tokens ? sum / double(r.tokens) : 0.0);
    }
    if (r.tokens == 0) user_error("--task mlm: no position of the ", N, " windows was masked (raise --seq-len)");
    r.loss = sum / double(r.tokens);
  }
  r.windows = N;
  r.perplexity = std::exp(r.loss);
  return r;
}

}  // namespace ferry::tasks
