// tests/translate/kv_cache_test.cpp — KV-cache decoding against full recomputation through the
// static graph (two independent paths to the same logits), and beam search against exhaustive
// search.
#include <algorithm>
#include <cmath>
#include <functional>

#include <gtest/gtest.h>

#include "engine/backend.h"
#include "engine/executor.h"
#include "engine/generate/beam_search.h"
#include "engine/generate/kv_cache.h"
#include "engine/model/gpt.h"
#include "kernels/attention.h"
#include "kernels/attention_decode.h"
#include "tests/support/support.h"

namespace ferry {
namespace {

GptConfig tiny_config(int vocab = 50) {
  GptConfig c;
  c.preset = "test";
  c.n_layer = 2;
  c.n_head = 4;
  c.n_embd = 32;
  c.vocab_size = vocab;
  c.max_seq_len = 40;
  return c;
}

// GPT-2 initialization scaled up ×12 (layernorm gains stay 1): logits far from uniform, so that
// greedy choices are not decided by rounding.
std::vector<float> random_params(const GptConfig& c, uint64_t seed) {
  GptBuildOptions o;
  o.with_loss = false;
  const GptGraph g = build_gpt(c, o);
  std::vector<double> init;
  init_gpt_params(g.graph, c, seed, init);
  std::vector<float> flat(init.size());
  for (const ParamInfo& p : g.graph.params) {
    const bool gain = p.name.find("ln_") != std::string::npos && p.name.find(".weight") != std::string::npos;
    Rng bias_rng(seed + p.offset);
    for (int64_t i = 0; i < p.numel; ++i) {
      const double v = init[p.offset + i];
      flat[p.offset + i] = static_cast<float>(gain ? v : (v == 0.0 ? 0.05 * bias_rng.normal() : 12.0 * v));
    }
  }
  return flat;
}

// The graph's forward over a whole padded context: logits of every position.
class FullRecompute {
 public:
  FullRecompute(const GptConfig& c, const std::vector<float>& flat) : c_(c), backend_(make_backend("cpu")) {
    GptBuildOptions o;
    o.batch = 1;
    o.seq_len = c.max_seq_len;
    o.with_loss = false;
    g_ = build_gpt(c, o);
    ex_ = std::make_unique<Executor>(g_.graph, *backend_);
    ex_->set_parameters(flat);
  }
  // Logits [V] after `tokens` (positions after them are padding the causal mask hides).
  std::vector<float> next_logits(const std::vector<int32_t>& tokens) {
    std::vector<int32_t> window(c_.max_seq_len, 0);
    std::copy(tokens.begin(), tokens.end(), window.begin());
    ex_->set_input(g_.tokens, window.data(), window.size() * sizeof(int32_t));
    ex_->forward(false);
    // Rows of the padded vocabulary (engine/model/gpt.h); the first vocab_size columns are tokens.
    const size_t Vp = static_cast<size_t>(g_.graph.values[g_.logits].shape.back());
    std::vector<float> all(static_cast<size_t>(c_.max_seq_len) * Vp);
    ex_->read(g_.logits, all.data(), all.size() * sizeof(float));
    const auto* row = all.data() + (tokens.size() - 1) * Vp;
    return {row, row + c_.vocab_size};
  }
  double log_prob(const std::vector<int32_t>& context, int32_t next) {
    const auto l = next_logits(context);
    double mx = *std::max_element(l.begin(), l.end()), sum = 0;
    for (float x : l) sum += std::exp(double(x) - mx);
    return double(l[next]) - mx - std::log(sum);
  }

 private:
  GptConfig c_;
  std::unique_ptr<Backend> backend_;
  GptGraph g_;
  std::unique_ptr<Executor> ex_;
};

int32_t argmax(const std::vector<float>& v, size_t off = 0, size_t n = 0) {
  if (n == 0) n = v.size();
  return static_cast<int32_t>(std::max_element(v.begin() + off, v.begin() + off + n) - (v.begin() + off));
}

TEST(AttentionDecode, OneRowEqualsTheFullReferenceLastRowInDouble) {
  const int T = 9, NH = 3, HS = 4, C = NH * HS, Tmax = 12;
  std::mt19937_64 rng(test::test_seed());
  const auto q = test::random_vector<double>(static_cast<size_t>(T) * 3 * C, rng);
  std::vector<double> out(T * C), lse(NH * T);
  kernels::cpu::attention_forward<double>(out.data(), lse.data(), q.data(), nullptr, 1, T, NH, HS, true);
  // Cache row 1 of 2 holds the sequence; the query row is the last position.
  std::vector<double> k(2 * NH * Tmax * HS, 99.0), v(2 * NH * Tmax * HS, 99.0);
  for (int t = 0; t < T; ++t) {
    const int32_t row = 1, pos = t;
    kernels::cpu::kv_cache_append<double>(k.data(), v.data(), q.data() + t * 3 * C, &row, &pos, 1, NH, HS, Tmax);
  }
  std::vector<double> dec(C);
  const int32_t row = 1, len = T;
  kernels::cpu::attention_decode<double>(dec.data(), q.data() + (T - 1) * 3 * C, k.data(), v.data(), &row, &len, 1, NH,
                                         HS, Tmax);
  for (int i = 0; i < C; ++i) EXPECT_NEAR(dec[i], out[(T - 1) * C + i], 1e-14) << i;
}

TEST(KvCache, CachedLogitsEqualFullRecomputationAtEveryStep) {
  const GptConfig c = tiny_config();
  const auto flat = random_params(c, 11);
  FullRecompute full(c, flat);
  const std::vector<std::vector<int32_t>> prompts = {{5}, {1, 2, 3}, {7, 7, 7, 9, 1, 4, 30}, {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8}};
  KvCacheDecoder dec(c, flat, static_cast<int>(prompts.size()), c.max_seq_len);
  std::vector<std::vector<int32_t>> text = prompts;
  std::vector<int> rows;
  std::vector<int32_t> next;
  for (int r = 0; r < static_cast<int>(prompts.size()); ++r) {
    const auto cached = dec.prefill(r, prompts[r]);
    const auto ref = full.next_logits(prompts[r]);
    for (int v = 0; v < c.vocab_size; ++v) ASSERT_NEAR(cached[v], ref[v], 2e-4 * (1 + std::fabs(ref[v])));
    rows.push_back(r);
    next.push_back(argmax(cached));
  }
  // 20 greedy steps for all rows at once (rows of different lengths in one batch).
  for (int step = 0; step < 20; ++step) {
    for (size_t i = 0; i < rows.size(); ++i) text[i].push_back(next[i]);
    const auto logits = dec.step(rows, next);
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto ref = full.next_logits(text[i]);
      for (int v = 0; v < c.vocab_size; ++v)
        ASSERT_NEAR(logits[i * c.vocab_size + v], ref[v], 2e-4 * (1 + std::fabs(ref[v])))
            << "row " << i << " step " << step << " token " << v;
      next[i] = argmax(logits, i * c.vocab_size, c.vocab_size);
      ASSERT_EQ(next[i], argmax(ref)) << "row " << i << " step " << step;
      EXPECT_EQ(dec.length(static_cast<int>(i)), static_cast<int>(text[i].size()));
    }
  }
}

TEST(KvCache, GreedyGenerationEqualsGreedyRecomputationTokenForToken) {
  const GptConfig c = tiny_config();
  const auto flat = random_params(c, 23);
  FullRecompute full(c, flat);
  const std::vector<std::vector<int32_t>> prompts = {{4, 8}, {1}, {2, 9, 9, 3, 40, 41}, {12, 13, 14, 15, 16}};
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 25;
  Rng rng(1);
  const auto got = generate_cached(c, flat, prompts, o, rng, c.max_seq_len);
  ASSERT_EQ(got.size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> text = prompts[i], expected;
    for (int s = 0; s < o.max_new_tokens; ++s) {
      const int32_t id = argmax(full.next_logits(text));
      expected.push_back(id);
      text.push_back(id);
    }
    EXPECT_EQ(got[i], expected) << "prompt " << i;
  }
  // A stop token ends its row only; a full row stops at max_len.
  o.stop_token = got[1][3];
  Rng rng2(1);
  const auto stopped = generate_cached(c, flat, prompts, o, rng2, c.max_seq_len);
  const auto first_stop = std::find(got[1].begin(), got[1].end(), o.stop_token) - got[1].begin();
  EXPECT_EQ(stopped[1].size(), static_cast<size_t>(first_stop + 1));
  o.stop_token = -1;
  o.max_new_tokens = 100;
  Rng rng3(1);
  const auto full_rows = generate_cached(c, flat, {{1, 2, 3}}, o, rng3, c.max_seq_len);
  EXPECT_EQ(full_rows[0].size(), static_cast<size_t>(c.max_seq_len - 3 + 1));  // the last token needs no cache slot
}

TEST(KvCache, SamplingIsSeededAndTopKOneIsGreedy) {
  const GptConfig c = tiny_config();
  const auto flat = random_params(c, 5);
  SamplingOptions o;
  o.temperature = 1.0f;
  o.top_k = 10;
  o.max_new_tokens = 12;
  Rng a(42), b(42), d(43);
  const auto x = generate_cached(c, flat, {{1, 2}, {3}}, o, a, c.max_seq_len);
  EXPECT_EQ(x, generate_cached(c, flat, {{1, 2}, {3}}, o, b, c.max_seq_len));
  EXPECT_NE(x, generate_cached(c, flat, {{1, 2}, {3}}, o, d, c.max_seq_len));
  o.top_k = 1;
  SamplingOptions greedy = o;
  greedy.temperature = 0;
  Rng e(1), f(2);
  EXPECT_EQ(generate_cached(c, flat, {{1, 2}, {3}}, o, e, c.max_seq_len),
            generate_cached(c, flat, {{1, 2}, {3}}, greedy, f, c.max_seq_len));
}

TEST(BeamSearch, FindsTheExhaustiveBestWhenTheBeamHoldsEveryHypothesis) {
  // V = 4, eos = 0, at most 3 new tokens: 1 + 3 + 9 eos-ended hypotheses and 27 cut at the limit,
  // 40 in all; a beam of 40 prunes nothing, so it must return the exhaustive optimum of
  // Σ log p / length (length counts eos).
  const GptConfig c = tiny_config(4);
  const auto flat = random_params(c, 3);
  FullRecompute full(c, flat);
  const std::vector<std::vector<int32_t>> prompts = {{1, 2}, {3}, {2, 2, 1}};
  BeamOptions o;
  o.beam = 40;
  o.max_new_tokens = 3;
  o.eos = 0;
  const auto got = beam_search(c, flat, prompts, o, c.max_seq_len);
  for (size_t i = 0; i < prompts.size(); ++i) {
    double best = -1e300;
    std::vector<int32_t> best_tokens;
    std::function<void(std::vector<int32_t>, double)> walk = [&](std::vector<int32_t> gen, double lp) {
      std::vector<int32_t> ctx = prompts[i];
      ctx.insert(ctx.end(), gen.begin(), gen.end());
      for (int32_t t = 0; t < 4; ++t) {
        const double l = lp + full.log_prob(ctx, t);
        const size_t len = gen.size() + 1;
        if (t == 0 || len == 3) {
          const double score = l / double(len);
          if (score > best) {
            best = score;
            best_tokens = gen;
            if (t != 0) best_tokens.push_back(t);
          }
        }
        if (t != 0 && len < 3) {
          auto g = gen;
          g.push_back(t);
          walk(g, l);
        }
      }
    };
    walk({}, 0.0);
    EXPECT_EQ(got[i].tokens, best_tokens) << "prompt " << i;
    EXPECT_NEAR(got[i].score, best, 1e-4) << "prompt " << i;
  }
}

TEST(BeamSearch, ScoresOfForkedBeamsMatchRecomputedLogProbabilities) {
  // Beams fork and their caches are reordered every step: a wrong cache row would change the
  // log-probabilities the search accumulates. Recompute them for the returned hypothesis.
  const GptConfig c = tiny_config(30);
  const auto flat = random_params(c, 17);
  FullRecompute full(c, flat);
  const std::vector<std::vector<int32_t>> prompts = {{5, 6, 7}, {1}, {9, 8, 7, 6, 5, 4}};
  BeamOptions o;
  o.beam = 4;
  o.max_new_tokens = 10;
  o.eos = 2;
  const auto got = beam_search(c, flat, prompts, o, c.max_seq_len);
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> ctx = prompts[i];
    double lp = 0;
    for (int32_t t : got[i].tokens) {
      lp += full.log_prob(ctx, t);
      ctx.push_back(t);
    }
    if (got[i].finished) lp += full.log_prob(ctx, o.eos);
    EXPECT_NEAR(got[i].log_prob, lp, 1e-3) << "prompt " << i;
    EXPECT_TRUE(got[i].finished || static_cast<int>(got[i].tokens.size()) == o.max_new_tokens);
  }
}

}  // namespace
}  // namespace ferry
