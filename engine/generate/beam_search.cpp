// engine/generate/beam_search.cpp
#include "engine/generate/beam_search.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "base/error.h"
#include "base/setting_error.h"
#include "engine/generate/kv_cache.h"

namespace ferry {

namespace {

struct Live {
  std::vector<int32_t> tokens;
  double log_prob = 0;
  int row = -1;  // the decoder row holding its cache (the last token not yet appended)
};

struct Candidate {
  int parent;
  int32_t token;
  double log_prob;
};

struct Source {
  std::vector<Live> live;
  std::vector<BeamHypothesis> finished;
  bool done = false;
};

double normalized(double log_prob, size_t length, float penalty) {
  return penalty == 0.0f ? log_prob : log_prob / std::pow(double(std::max<size_t>(length, 1)), double(penalty));
}

// log-softmax of one row of logits, in double.
std::vector<double> log_softmax(const float* logits, int V) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int v = 0; v < V; ++v) mx = std::max(mx, double(logits[v]));
  double sum = 0;
  for (int v = 0; v < V; ++v) sum += std::exp(double(logits[v]) - mx);
  const double lse = mx + std::log(sum);
  std::vector<double> out(V);
  for (int v = 0; v < V; ++v) out[v] = double(logits[v]) - lse;
  return out;
}

// The `k` likeliest tokens (higher first, lower id on ties: a total order).
std::vector<int32_t> top_tokens(const std::vector<double>& lp, int k) {
  std::vector<int32_t> ids(lp.size());
  std::iota(ids.begin(), ids.end(), 0);
  k = std::min<int>(k, static_cast<int>(ids.size()));
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](int32_t a, int32_t b) { return lp[a] > lp[b] || (lp[a] == lp[b] && a < b); });
  ids.resize(k);
  return ids;
}

void finish(Source& s, const Live& l, double log_prob, bool ended, float penalty) {
  BeamHypothesis h;
  h.tokens = l.tokens;
  h.log_prob = log_prob;
  h.finished = ended;
  h.score = normalized(log_prob, l.tokens.size() + (ended ? 1 : 0), penalty);
  s.finished.push_back(std::move(h));
}

}  // namespace

std::vector<BeamHypothesis> beam_search(const GptConfig& c, const std::vector<float>& flat,
                                        const std::vector<std::vector<int32_t>>& prompts, const BeamOptions& o,
                                        int max_len) {
  if (o.beam < 1) setting_error("beam", "must be at least 1, got ", o.beam);
  if (o.max_new_tokens < 1) user_error("max new tokens must be at least 1, got ", o.max_new_tokens);
  const int S = static_cast<int>(prompts.size()), K = o.beam, V = c.vocab_size;
  std::vector<BeamHypothesis> best(S);
  if (S == 0) return best;
  KvCacheDecoder dec(c, flat, S * K, max_len);
  std::vector<Source> src(S);

  // One prefill per prompt; every beam row of the source starts from its cache.
  std::vector<std::vector<double>> first(S);
  std::vector<int> copy_from(S * K);
  for (int s = 0; s < S; ++s) {
    const std::vector<float> logits = dec.prefill(s * K, prompts[s]);
    first[s] = log_softmax(logits.data(), V);
    for (int j = 0; j < K; ++j) copy_from[s * K + j] = s * K;
  }
  dec.reorder(copy_from);
  for (int s = 0; s < S; ++s) src[s].live.push_back({{}, 0.0, s * K});

  // Log-probabilities of the next token for every live hypothesis, by row.
  std::vector<std::vector<double>> next_lp(S * K);
  for (int s = 0; s < S; ++s) next_lp[s * K] = std::move(first[s]);

  const double longest = double(o.max_new_tokens);
  while (true) {
    std::vector<int> source_row(S * K);
    std::iota(source_row.begin(), source_row.end(), 0);
    std::vector<int> active;
    std::vector<int32_t> tokens;
    for (int s = 0; s < S; ++s) {
      Source& sr = src[s];
      if (sr.done) continue;
      std::vector<Candidate> cand;
      for (int p = 0; p < static_cast<int>(sr.live.size()); ++p) {
        const auto& lp = next_lp[sr.live[p].row];
        for (int32_t t : top_tokens(lp, 2 * K)) cand.push_back({p, t, sr.live[p].log_prob + lp[t]});
      }
      std::stable_sort(cand.begin(), cand.end(), [](const Candidate& a, const Candidate& b) {
        return a.log_prob > b.log_prob || (a.log_prob == b.log_prob && a.token < b.token);
      });
      if (cand.size() > static_cast<size_t>(2 * K)) cand.resize(2 * K);
      std::vector<Live> next;
      for (const Candidate& cd : cand) {
        const Live& parent = sr.live[cd.parent];
        if (cd.token == o.eos) {
          finish(sr, parent, cd.log_prob, true, o.length_penalty);
          continue;
        }
        if (static_cast<int>(next.size()) == K) continue;
        Live l{parent.tokens, cd.log_prob, parent.row};
        l.tokens.push_back(cd.token);
        next.push_back(std::move(l));
      }
      // Hypotheses out of room (length or cache) end here, unfinished.
      std::vector<Live> kept;
      for (Live& l : next) {
        const bool room = static_cast<int>(l.tokens.size()) < o.max_new_tokens && dec.length(l.row) < max_len;
        if (room)
          kept.push_back(std::move(l));
        else
          finish(sr, l, l.log_prob, false, o.length_penalty);
      }
      // Done when beam finished hypotheses exist and no live one can still overtake the best.
      if (!sr.finished.empty() && static_cast<int>(sr.finished.size()) >= K) {
        double best_done = -std::numeric_limits<double>::infinity();
        for (const auto& h : sr.finished) best_done = std::max(best_done, h.score);
        bool can_improve = false;
        for (const Live& l : kept) {
          const double bound = o.length_penalty == 0.0f ? l.log_prob : l.log_prob / std::pow(longest, double(o.length_penalty));
          can_improve = can_improve || bound > best_done;
        }
        if (!can_improve) kept.clear();
      }
      if (kept.empty()) {
        sr.done = true;
        sr.live.clear();
        continue;
      }
      // Survivor j of source s lives in row s·K + j, taking its parent's cache.
      for (int j = 0; j < static_cast<int>(kept.size()); ++j) {
        source_row[s * K + j] = kept[j].row;
        kept[j].row = s * K + j;
        active.push_back(s * K + j);
        tokens.push_back(kept[j].tokens.back());
      }
      sr.live = std::move(kept);
    }
    if (active.empty()) break;
    dec.reorder(source_row);
    const std::vector<float> logits = dec.step(active, tokens);
    for (size_t i = 0; i < active.size(); ++i)
      next_lp[active[i]] = log_softmax(logits.data() + i * static_cast<size_t>(V), V);
  }

  for (int s = 0; s < S; ++s) {
    const auto& f = src[s].finished;
    FERRY_CHECK(!f.empty(), "beam search ended a source without a hypothesis");
    size_t b = 0;
    for (size_t i = 1; i < f.size(); ++i)
      if (f[i].score > f[b].score) b = i;
    best[s] = f[b];
  }
  return best;
}

}  // namespace ferry
