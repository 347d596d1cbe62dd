// tools/tasks/lm_eval.h — `ferry eval --task lm|mlm`: a language model's mean loss over token shards.
//
//   lm   next-token loss of a causal model: window k of the shards (engine/data/eval_windows.h,
//        llm.c's validation order: B·T+1 tokens per window, in shard-name order, a shard's short tail
//        unread) through the pretraining graph (build_gpt with its cross_entropy, forward only); the
//        loss is the mean over the windows of each window's mean over its B·T targets, which is
//        llm.c's validation loss for the same B, T and N.
//   mlm  masked-token loss of a bidirectional encoder: the B rows of T input tokens of the same
//        windows, masked as fine-tuning masks its held-out windows (tools/tasks/runner.h
//        mask_for_mlm, heldout_mask_rng(seed): 15% of positions; 80% <mask>, 10% a random piece,
//        10% kept) in window order, through the task graph with its language-model head; the loss is
//        the mean over every masked position.
// Shard ids are the model's own ids (a shard stores no vocabulary); an id outside the model's
// vocabulary is refused. On the CUDA backend the graph runs in bf16 (engine/finetune/inference.h);
// on the CPU in fp32, deterministic whatever the thread count.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "engine/finetune/model_file.h"

namespace ferry::tasks {

struct LmEvalOptions {
  std::string task = "lm";  // lm | mlm
  std::string data;         // a folder (its *_val_* shards, else every *.bin), a glob or a file
  int batch = 0;            // 0: kDefaultBatch
  int seq_len = 0;          // 0: min(kDefaultSeqLen, the model's max_seq_len)
  size_t max_windows = 0;   // 0: every whole window
  uint64_t seed = 1337;     // mlm: the masking seed (fine-tuning's held-out masking uses its --seed)
};

// llm.c's defaults (train_gpt2.cu: -b 4 -t 1024), so `--batches 20` scores llm.c's default validation.
inline constexpr int kDefaultBatch = 4;
inline constexpr int kDefaultSeqLen = 1024;

struct LmEvalResult {
  double loss = 0;        // nats per scored token
  double perplexity = 0;  // exp(loss)
  uint64_t tokens = 0;    // tokens scored: windows·B·T (lm) or masked positions (mlm)
  uint64_t windows = 0;
  int batch = 0, seq_len = 0;
  // {"loss", "perplexity", "tokens", "windows"} in that order.
  nlohmann::ordered_json json() const;
};

// "lm" for a causal model, "mlm" for a bidirectional one.
std::string default_lm_task(const ModelFile& model);

// UserError (naming the flag) for a model that is not a language model of the task's kind, a
// sequence length beyond the model's positions, shards without one whole window, fewer windows than
// max_windows, or token ids outside the model's vocabulary. progress(done, total) after each window.
LmEvalResult evaluate_lm(const ModelFile& model, Backend& backend, const LmEvalOptions& o,
                         const std::function<void(size_t done, size_t total, double loss_so_far)>& progress = {});

}  // namespace ferry::tasks
