// engine/generate/sampler.h — text continuation with a trained GPT: a forward-only graph (batch 1,
// a fixed context), the whole context recomputed for every new token (no KV cache yet), and the next
// token drawn from the last position's logits with temperature and top-k. The graph runs on the
// backend it is given, in that device's dtype (bf16 on CUDA, engine/graph_dtype.h), so a training
// run samples on the device it trains on.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/backend.h"
#include "engine/executor.h"
#include "engine/model/gpt.h"
#include "engine/random.h"

namespace ferry {

struct SamplingOptions {
  int max_new_tokens = 64;
  float temperature = 1.0f;  // 0: greedy (argmax)
  int top_k = 0;             // 0: the whole vocabulary
  int32_t stop_token = -1;   // stop after emitting it (-1: never)
};

// One token from a row of V logits. Ties in greedy mode go to the lowest id; sampling draws one
// uniform number from rng per call, so a seed fixes the output.
int32_t sample_token(const float* logits, int V, const SamplingOptions& o, Rng& rng);

class Generator {
 public:
  // context: positions the graph covers (≤ c.max_seq_len); longer texts slide a window over the end.
  Generator(const GptConfig& c, Backend& backend, int context);
  ~Generator();
  // Flat parameters in the training graph's order (the generation graph has the same table).
  void set_parameters(const std::vector<float>& flat);
  // Logits [len, V] of every position of `tokens` (at most context() of them), f32.
  std::vector<float> logits(const std::vector<int32_t>& tokens);
  // The new tokens only (not the prompt). An empty prompt is refused.
  std::vector<int32_t> generate(const std::vector<int32_t>& prompt, const SamplingOptions& o, Rng& rng);
  int context() const { return context_; }
  // The generation graph as the backend runs it (retyped for its device).
  const Graph& graph() const { return graph_.graph; }

 private:
  void run(const std::vector<int32_t>& text, size_t len, std::vector<float>& logits);
  GptConfig config_;
  Backend& backend_;
  int context_;
  GptGraph graph_;
  std::unique_ptr<Executor> executor_;
};

}  // namespace ferry
