// tools/tasks/electra.cpp
#include "tools/tasks/electra.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "base/error.h"
#include "engine/train/lr_schedule.h"

namespace ferry::tasks {

GptConfig generator_config(const GptConfig& disc, int width) {
  GptConfig g = disc;
  const int head_dim = disc.n_embd / disc.n_head;
  if (width <= 0 || width % head_dim != 0)
    user_error("--generator-width ", width, " must be a positive multiple of the head size ", head_dim);
  g.preset = disc.preset + "-generator";
  g.n_embd = width;
  g.n_head = width / head_dim;
  g.causal = false;
  return g;
}

RtdMasking choose_masked_positions(const std::vector<const Example*>& rows, int32_t mask_id, double fraction,
                                   std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  RtdMasking m;
  m.generator_rows.reserve(rows.size());
  m.chosen.resize(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    Example e;
    e.ids = rows[r]->ids;
    e.token_labels.assign(e.ids.size(), kIgnoreLabel);
    for (size_t t = 0; t < e.ids.size(); ++t) {
      if (u(rng) >= fraction) continue;
      e.token_labels[t] = e.ids[t];
      e.ids[t] = mask_id;
      m.chosen[r].push_back(static_cast<int>(t));
    }
    m.generator_rows.push_back(std::move(e));
  }
  return m;
}

std::vector<Example> replace_tokens(const std::vector<const Example*>& rows, const RtdMasking& m,
                                    const std::vector<float>& logits, int T, int V, int32_t first_piece,
                                    std::mt19937_64& rng) {
  FERRY_CHECK(logits.size() >= rows.size() * static_cast<size_t>(T) * V && first_piece < V, "replace_tokens shape");
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> p(static_cast<size_t>(V));
  std::vector<Example> out;
  out.reserve(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    Example e;
    e.ids = rows[r]->ids;
    e.token_labels.assign(e.ids.size(), 0);
    for (int t : m.chosen[r]) {
      if (t >= T) continue;
      // Inverse-CDF sampling from softmax over the ordinary pieces, in double, in id order: the same
      // sample for the same logits and RNG state on every machine.
      const float* l = logits.data() + (r * static_cast<size_t>(T) + t) * V;
      const double mx = *std::max_element(l + first_piece, l + V);
      double sum = 0;
      for (int v = first_piece; v < V; ++v) sum += (p[v] = std::exp(double(l[v]) - mx));
      double x = u(rng) * sum;
      int32_t pick = V - 1;
      for (int v = first_piece; v < V; ++v) {
        x -= p[v];
        if (x < 0) {
          pick = v;
          break;
        }
      }
      e.token_labels[t] = pick != rows[r]->ids[t] ? 1 : 0;
      e.ids[t] = pick;
    }
    out.push_back(std::move(e));
  }
  return out;
}

namespace {

std::vector<const Example*> pointers(const std::vector<Example>& v) {
  std::vector<const Example*> p;
  for (const auto& e : v) p.push_back(&e);
  return p;
}

}  // namespace

RtdResult train_rtd(const TaskModel& disc, const TaskModel& gen, const std::vector<Example>& train,
                    const std::vector<Example>& heldout, Backend& backend, const RtdConfig& c) {
  if (c.steps <= 0) user_error("--steps must be positive, got ", c.steps);
  if (train.empty()) user_error("rtd: no training windows");
  FERRY_CHECK(disc.meta.head.kind == HeadKind::TokenClassification && disc.meta.head.n_classes == 2 &&
                  gen.meta.head.kind == HeadKind::TokenClassification &&
                  gen.meta.head.n_classes == disc.meta.config.vocab_size,
              "train_rtd: discriminator or generator head");
  const int B = disc.batch, T = disc.meta.seq_len, V = disc.meta.config.vocab_size;
  const TaskVocab& vocab = disc.meta.vocab;
  const GraphInputs din = GraphInputs::of(disc.graph(true, 0)), gin = GraphInputs::of(gen.graph(true, 0));

  auto disc_step = disc.make_step(backend, -1);
  auto gen_step = gen.make_step(backend, -1);
  disc_step->set_parameters(disc.initial_parameters(c.seed, "", nullptr));
  gen_step->set_parameters(gen.initial_parameters(c.seed + 1, "", nullptr));
  auto gen_inference = gen.make_inference(backend);

  // One corrupted batch: the generator's masked batch, its logits (current parameters), and the
  // discriminator's batch.
  struct Corrupted {
    Batch generator, discriminator;
    long replaced = 0, positions = 0;
  };
  auto corrupt = [&](const std::vector<const Example*>& rows, std::mt19937_64& rng) {
    Corrupted k;
    const RtdMasking m = choose_masked_positions(rows, vocab.mask(), c.mask_fraction, rng);
    k.generator = make_batch(gin, HeadKind::TokenClassification, pointers(m.generator_rows), B, T, vocab.pad());
    const std::vector<float> logits = gen_inference->logits(k.generator);
    const std::vector<Example> d = replace_tokens(rows, m, logits, T, V, vocab.first_piece(), rng);
    for (const Example& e : d)
      for (int32_t l : e.token_labels) k.replaced += l == 1, ++k.positions;
    k.discriminator = make_batch(din, HeadKind::TokenClassification, pointers(d), B, T, vocab.pad());
    return k;
  };

  RtdResult res;
  auto evaluate = [&](int s) {
    // The same held-out windows and masked positions every time (a fixed seed); the samples follow
    // the generator as it is now.
    std::mt19937_64 rng(c.seed + 99);
    double sum = 0;
    long replaced = 0, positions = 0;
    size_t n = 0;
    for (size_t i = 0; i < heldout.size() && n < 16; i += static_cast<size_t>(B), ++n) {
      std::vector<const Example*> rows;
      for (size_t k = i; k < std::min(heldout.size(), i + B); ++k) rows.push_back(&heldout[k]);
      const Corrupted k = corrupt(rows, rng);
      sum += disc_step->evaluate(k.discriminator);
      replaced += k.replaced;
      positions += k.positions;
    }
    res.heldout_loss = n ? sum / double(n) : 0.0;
    res.heldout_replaced = positions ? double(replaced) / double(positions) : 0.0;
    if (!res.history.empty() && res.history.back().step == s) {
      res.history.back().dev_metric = -res.heldout_loss;
      res.history.back().evaluated = true;
    }
    std::fprintf(stderr, "step %5d | held-out discriminator loss %.4f (%.1f%% of positions replaced)\n", s,
                 res.heldout_loss, 100.0 * res.heldout_replaced);
  };

  std::mt19937_64 order_rng(c.seed + 2), mask_rng(c.seed + 3);
  std::vector<size_t> order;
  size_t cursor = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int s = 1; s <= c.steps; ++s) {
    std::vector<const Example*> rows;
    for (int k = 0; k < B; ++k) {
      if (cursor == order.size()) {
        order.resize(train.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[order_rng() % i]);
        cursor = 0;
      }
      rows.push_back(&train[order[cursor++]]);
    }
    const float lr = learning_rate(s - 1, c.steps, c.warmup, c.lr, c.min_lr);
    gen_inference->set_parameters(gen_step->parameters());
    const Corrupted k = corrupt(rows, mask_rng);
    const StepResult g = gen_step->train({k.generator}, lr * c.generator_lr_scale);
    const StepResult d = disc_step->train({k.discriminator}, lr);
    if (!std::isfinite(g.loss) || !std::isfinite(d.loss))
      user_error("rtd pretraining diverged at step ", s, " (generator loss ", g.loss, ", discriminator loss ", d.loss,
                 "; lower --lr)");
    res.generator_loss = g.loss;
    res.history.push_back({s, d.loss, lr, 0.0, false});
    if (c.log_every > 0 && (s % c.log_every == 0 || s == 1)) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::fprintf(stderr,
                   "step %5d/%d | discriminator %.4f (%.1f%% replaced) | generator %.4f | lr %.2e | %.0f tok/s | "
                   "%.1fs | eta %.0fs\n",
                   s, c.steps, d.loss, 100.0 * double(k.replaced) / double(std::max(1L, k.positions)), g.loss, lr,
                   c.tokens_per_step > 0 ? c.tokens_per_step * s / elapsed : 0.0, elapsed,
                   elapsed / s * (c.steps - s));
    }
    if ((c.eval_every > 0 && s % c.eval_every == 0) || s == c.steps) {
      gen_inference->set_parameters(gen_step->parameters());
      evaluate(s);
    }
  }
  res.discriminator = disc_step->parameters();
  return res;
}

}  // namespace ferry::tasks
