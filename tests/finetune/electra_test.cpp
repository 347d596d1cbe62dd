// tests/finetune/electra_test.cpp — replaced-token detection (tools/tasks/electra.h): the masking
// and sampling that make the discriminator's labels, and a short pretraining that must learn to spot
// replacements in a text whose every token is determined by its neighbours.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <map>

#include "engine/backend.h"
#include "tools/tasks/electra.h"

namespace ferry::tasks {
namespace {

TEST(Rtd, MaskedPositionsCarryTheOriginalAsLabel) {
  Example e;
  for (int i = 0; i < 20000; ++i) e.ids.push_back(3 + i % 50);
  std::mt19937_64 rng(7);
  const RtdMasking m = choose_masked_positions({&e}, 2, 0.15, rng);
  ASSERT_EQ(m.generator_rows.size(), 1u);
  const Example& g = m.generator_rows[0];
  size_t k = 0;
  for (size_t t = 0; t < e.ids.size(); ++t) {
    const bool chosen = k < m.chosen[0].size() && m.chosen[0][k] == static_cast<int>(t);
    if (chosen) {
      ++k;
      EXPECT_EQ(g.ids[t], 2);
      EXPECT_EQ(g.token_labels[t], e.ids[t]);
    } else {
      EXPECT_EQ(g.ids[t], e.ids[t]);
      EXPECT_EQ(g.token_labels[t], kIgnoreLabel);
    }
  }
  EXPECT_EQ(k, m.chosen[0].size());
  EXPECT_NEAR(double(m.chosen[0].size()) / 20000.0, 0.15, 0.01);
}

// Logits [rows, T, V] with every position's mass on `peak` (and a larger logit on a reserved id,
// which must never be sampled).
std::vector<float> peaked_logits(size_t rows, int T, int V, int peak) {
  std::vector<float> l(rows * T * V, 0.0f);
  for (size_t p = 0; p < rows * T; ++p) {
    l[p * V + peak] = 40.0f;
    l[p * V + 1] = 80.0f;  // <unk>: below first_piece
  }
  return l;
}

TEST(Rtd, ReplacedLabelsMarkExactlyTheChangedTokens) {
  const int T = 6, V = 10;
  Example a, b;
  a.ids = {3, 4, 5, 6, 7, 8};
  b.ids = {9, 9, 9, 9, 9, 9};
  RtdMasking m;
  m.chosen = {{0, 2, 5}, {1, 3}};
  std::mt19937_64 rng(1);
  const auto out = replace_tokens({&a, &b}, m, peaked_logits(2, T, V, 9), T, V, 3, rng);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].ids, (std::vector<int32_t>{9, 4, 9, 6, 7, 9}));
  EXPECT_EQ(out[0].token_labels, (std::vector<int32_t>{1, 0, 1, 0, 0, 1}));
  // Sampling the original back is "original" (label 0), as in the paper.
  EXPECT_EQ(out[1].ids, b.ids);
  EXPECT_EQ(out[1].token_labels, (std::vector<int32_t>(6, 0)));
}

TEST(Rtd, SamplesFollowTheGeneratorsSoftmax) {
  const int T = 1, V = 6;
  std::vector<float> l(V, -1e9f);
  const double p[3] = {0.5, 0.3, 0.2};  // ids 3, 4, 5
  for (int i = 0; i < 3; ++i) l[3 + i] = static_cast<float>(std::log(p[i]));
  Example e;
  e.ids = {0};
  RtdMasking m;
  m.chosen = {{0}};
  std::mt19937_64 rng(3);
  std::map<int, int> n;
  const int draws = 20000;
  for (int d = 0; d < draws; ++d) ++n[replace_tokens({&e}, m, l, T, V, 3, rng)[0].ids[0]];
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(double(n[3 + i]) / draws, p[i], 0.015) << "id " << 3 + i;
  EXPECT_EQ(n[0] + n[1] + n[2], 0);
}

// A text whose every window repeats one token: a bidirectional model can tell a replaced token from
// the rest of its window. A generator that learns this text soon stops replacing anything, so the
// discriminator is trained beside a frozen (untrained, near-uniform) generator and then checked on
// windows corrupted at random: it must call most replaced tokens replaced and almost every original
// one original (an untrained one calls everything one way). The generator's own learning is checked
// with its learning rate on.
struct Toy {
  TaskModel disc, gen;
  std::vector<Example> train, heldout;
};

Toy toy(int T) {
  Toy t;
  std::vector<int64_t> counts(tokenizer::Gpt2Tokenizer::kVocabSize, 0);
  for (int i = 0; i < 29; ++i) counts[100 + i] = 1000 - i;
  const TaskVocab vocab = TaskVocab::compact_from_counts(counts, 32);  // ids 3..31 are pieces
  t.disc.batch = 8;
  t.disc.meta.seq_len = T;
  t.disc.meta.vocab = vocab;
  t.disc.meta.config = {"toy", 2, 2, 32, vocab.size(), T, true, false};
  t.disc.meta.task = "rtd";
  t.disc.meta.head = {"rtd", HeadKind::TokenClassification, 2, Pooling::Mean};
  t.gen = t.disc;
  t.gen.meta.config = generator_config(t.disc.meta.config, 16);
  t.gen.meta.head = {"generator", HeadKind::TokenClassification, vocab.size(), Pooling::Mean};
  std::vector<int32_t> stream;
  for (int i = 0; i < 64 * T; ++i) stream.push_back(3 + (i / T * 7) % 29);
  for (int w = 0; w + T <= static_cast<int>(stream.size()); w += T) {
    Example e;
    e.ids.assign(stream.begin() + w, stream.begin() + w + T);
    (w < 32 * T ? t.train : t.heldout).push_back(e);
  }
  return t;
}

TEST(Rtd, DiscriminatorLearnsToSpotReplacements) {
  const Toy t = toy(16);
  auto backend = make_cpu_backend();
  RtdConfig c;
  c.steps = 1000;
  c.warmup = 10;
  c.eval_every = 0;
  c.log_every = 0;
  c.lr = 3e-3f;
  c.min_lr = 1e-3f;
  c.generator_lr_scale = 0.0f;
  const RtdResult r = train_rtd(t.disc, t.gen, t.train, t.heldout, *backend, c);
  ASSERT_EQ(r.history.size(), 1000u);
  EXPECT_TRUE(r.history.back().evaluated);

  // Held-out windows with 15% of positions replaced by uniform samples (zero logits).
  const int B = t.disc.batch, T = t.disc.meta.seq_len, V = t.disc.meta.config.vocab_size;
  auto inference = t.disc.make_inference(*backend);
  inference->set_parameters(r.discriminator);
  const GraphInputs in = GraphInputs::of(t.disc.graph(false, 0));
  std::mt19937_64 rng(11);
  long replaced = 0, caught = 0, originals = 0, kept = 0;
  for (size_t s = 0; s < t.heldout.size(); s += B) {
    std::vector<const Example*> rows;
    for (size_t k = s; k < std::min(t.heldout.size(), s + B); ++k) rows.push_back(&t.heldout[k]);
    const RtdMasking m = choose_masked_positions(rows, 2, 0.15, rng);
    const std::vector<Example> d = replace_tokens(rows, m, std::vector<float>(rows.size() * T * V, 0.0f), T, V, 3, rng);
    std::vector<const Example*> dp;
    for (const auto& e : d) dp.push_back(&e);
    const std::vector<float> logits = inference->logits(make_batch(in, HeadKind::TokenClassification, dp, B, T, 0));
    for (size_t r2 = 0; r2 < d.size(); ++r2)
      for (int p = 0; p < T; ++p) {
        const bool said_replaced = logits[(r2 * T + p) * 2 + 1] > logits[(r2 * T + p) * 2];
        if (d[r2].token_labels[p] == 1) {
          ++replaced;
          caught += said_replaced;
        } else {
          ++originals;
          kept += !said_replaced;
        }
      }
  }
  ASSERT_GT(replaced, 5);
  EXPECT_GT(double(caught) / replaced, 0.8) << caught << " of " << replaced << " replaced tokens caught";
  EXPECT_GT(double(kept) / originals, 0.95) << kept << " of " << originals << " originals kept";
}

TEST(Rtd, GeneratorLearnsTheMaskedTokens) {
  const Toy t = toy(16);
  auto backend = make_cpu_backend();
  RtdConfig c;
  c.steps = 300;
  c.warmup = 10;
  c.eval_every = 0;
  c.log_every = 0;
  c.lr = 3e-3f;
  const RtdResult r = train_rtd(t.disc, t.gen, t.train, t.heldout, *backend, c);
  // Uniform over the 29 pieces is ln 29 = 3.37 nats; a window's other tokens give the answer away.
  EXPECT_LT(r.generator_loss, 1.0);
  EXPECT_LT(r.heldout_replaced, 0.08);  // of 15% masked: the samples are mostly the original by then
}

TEST(Rtd, SameSeedSameBits) {
  const Toy t = toy(16);
  auto backend = make_cpu_backend();
  RtdConfig c;
  c.steps = 12;
  c.warmup = 2;
  c.eval_every = 0;
  c.log_every = 0;
  const RtdResult a = train_rtd(t.disc, t.gen, t.train, t.heldout, *backend, c);
  const RtdResult b = train_rtd(t.disc, t.gen, t.train, t.heldout, *backend, c);
  EXPECT_EQ(a.discriminator, b.discriminator);
  EXPECT_EQ(a.heldout_loss, b.heldout_loss);
  c.seed += 1;
  const RtdResult other = train_rtd(t.disc, t.gen, t.train, t.heldout, *backend, c);
  EXPECT_NE(a.discriminator, other.discriminator);
}

}  // namespace
}  // namespace ferry::tasks
