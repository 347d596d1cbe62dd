// tools/tasks/electra.h — replaced-token detection (ELECTRA, Clark et al., ICLR 2020): pretraining a
// bidirectional trunk that learns from every position of a window, not only the 15% a masked LM
// scores. A small masked-LM generator fills masked positions with samples of its own predictions;
// the discriminator (the model kept) learns, at every real position, whether the token it sees is the
// original. ELECTRA's gain over MLM is largest at small compute, which is where a 2-core CPU is.
//
// One step:
//   1. positions of each window are chosen with probability `mask_fraction`; the generator reads the
//      window with <mask> there and is trained to predict the original tokens (masked-LM loss);
//   2. at each chosen position a token is sampled from the generator's softmax (the forward pass of
//      the same masked input, before that step's update), over ordinary pieces only;
//   3. the discriminator reads the window with the samples in place; its label is 1 ("replaced")
//      where the sample differs from the original, 0 everywhere else — a sample that happens to be
//      the original counts as original, as in the paper.
// The two networks are separate graphs with their own AdamW (no shared embeddings: ELECTRA's sharing
// needs the generator's width to match); the discriminator's loss is its own mean over positions.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "engine/backend.h"
#include "engine/finetune/loop.h"
#include "tools/tasks/batches.h"
#include "tools/tasks/model_setup.h"

namespace ferry::tasks {

struct RtdConfig {
  int steps = 1500;
  int warmup = 40;
  int eval_every = 500;  // held-out discriminator loss (0: at the end only)
  int log_every = 10;
  float lr = 2e-3f;      // both networks, warm-up + cosine
  float min_lr = 2e-4f;
  float generator_lr_scale = 1.0f;  // the generator's learning rate as a multiple of the discriminator's
  double mask_fraction = 0.15;
  uint64_t seed = 1337;
  int64_t tokens_per_step = 0;  // for tokens/s in the progress line
};

// The generator for a discriminator of config `disc`: the same depth and head size, `width` wide
// (ELECTRA: generators a quarter to half the discriminator's width work best; a stronger one makes
// the task too hard), bidirectional.
GptConfig generator_config(const GptConfig& disc, int width);

// Step 1 on a batch of windows: the generator's rows (ids with <mask> at chosen positions, labels =
// the original id there and −1 elsewhere) and the chosen positions per row.
struct RtdMasking {
  std::vector<Example> generator_rows;
  std::vector<std::vector<int>> chosen;  // per row, ascending positions
};
RtdMasking choose_masked_positions(const std::vector<const Example*>& rows, int32_t mask_id, double fraction,
                                   std::mt19937_64& rng);

// Steps 2–3: the discriminator's rows. `logits` are the generator's [B,T,V] for the masked rows
// (row r of the batch = rows[r]); samples are drawn from softmax over ids [first_piece, V).
// token_labels: 1 replaced, 0 original, at every position of the row.
std::vector<Example> replace_tokens(const std::vector<const Example*>& rows, const RtdMasking& m,
                                    const std::vector<float>& logits, int T, int V, int32_t first_piece,
                                    std::mt19937_64& rng);

struct RtdResult {
  std::vector<float> discriminator;  // final parameters, the discriminator's flat order
  std::vector<LoopRecord> history;   // train loss = discriminator's; dev = −held-out discriminator loss
  double heldout_loss = 0;           // discriminator, last evaluation
  double heldout_replaced = 0;       // fraction of held-out positions the generator changed
  double generator_loss = 0;         // last training step's masked-LM loss
};

// disc: a token-classification model with 2 classes; gen: one with V classes (generator_config).
// `train` and `heldout` are LM windows (only their ids are read).
RtdResult train_rtd(const TaskModel& disc, const TaskModel& gen, const std::vector<Example>& train,
                    const std::vector<Example>& heldout, Backend& backend, const RtdConfig& c);

}  // namespace ferry::tasks
