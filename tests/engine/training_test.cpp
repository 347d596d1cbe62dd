// tests/engine/training_test.cpp — training a small model on the generated corpus lowers the
// validation loss far below where it starts, and below what a model that learned only byte
// frequencies could reach.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/train/trainer.h"
#include "tests/support/support.h"
#include "parallel/step_factory.h"

namespace ferry {
namespace {

// The step as `ferry pretrain` composes it (parallel/step_factory.h).
PretrainOptions local_options() {
  PretrainOptions o;
  o.make_step = parallel::make_gpt_step;
  return o;
}

// Entropy (nats/byte) of the corpus's byte unigram distribution: the best loss of a model that
// ignores context. A model that trains must beat it by a wide margin.
double unigram_entropy(const std::string& text) {
  std::vector<double> count(256, 0.0);
  for (unsigned char ch : text) count[ch] += 1;
  double h = 0;
  for (double c : count)
    if (c > 0) h -= c / text.size() * std::log(c / text.size());
  return h;
}

TEST(Training, ValidationLossFallsWellBelowUnigramEntropy) {
  test::TempDir dir;
  RunConfig c;
  c.model = gpt_preset("micro");
  c.train.batch_size = 8;
  c.train.seq_len = 64;
  c.train.max_steps = 150;
  c.train.lr = 3e-3f;
  c.train.min_lr = 3e-4f;
  c.train.warmup_steps = 10;
  c.train.eval_every = 150;
  c.train.eval_batches = 8;
  c.train.log_every = 50;
  c.train.out_dir = dir.path().string();
  c.data.source = "synthetic";
  const TrainSummary s = pretrain(c, make_data_sources(c), local_options());
  const double uniform = std::log(256.0);
  const double unigram = unigram_entropy(synthetic_corpus(200000, 20240520));
  std::printf("val loss %.3f -> %.3f (uniform %.3f, unigram %.3f)\n", s.initial_val_loss, s.final_val_loss, uniform,
              unigram);
  // An untrained model sits at ln(256); a broken backward or optimizer stays near it.
  EXPECT_NEAR(s.initial_val_loss, uniform, 0.3);
  EXPECT_LT(s.final_val_loss, unigram - 0.8);
  EXPECT_LT(s.final_val_loss, s.initial_val_loss - 3.0);
}

}  // namespace
}  // namespace ferry
