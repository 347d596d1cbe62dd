// tools/tasks/batches.cpp
#include "tools/tasks/batches.h"

#include <algorithm>

#include "base/error.h"

namespace ferry::tasks {

Batch make_batch(const GraphInputs& in, HeadKind kind, const std::vector<const Example*>& rows, int B, int T,
                 int32_t pad) {
  FERRY_CHECK(static_cast<int>(rows.size()) <= B, "make_batch: ", rows.size(), " rows for batch ", B);
  const bool per_token = kind != HeadKind::SequenceClassification;
  std::vector<int32_t> tokens(static_cast<size_t>(B) * T, pad), lengths(B, 1);
  std::vector<int32_t> labels(per_token ? static_cast<size_t>(B) * T : static_cast<size_t>(B), kIgnoreLabel);
  for (size_t r = 0; r < rows.size(); ++r) {
    const Example& e = *rows[r];
    const int n = std::min<int>(T, static_cast<int>(e.ids.size()));
    std::copy(e.ids.begin(), e.ids.begin() + n, tokens.begin() + static_cast<std::ptrdiff_t>(r * T));
    lengths[r] = std::max(1, n);
    if (per_token) {
      for (int t = 0; t < n && t < static_cast<int>(e.token_labels.size()); ++t) labels[r * T + t] = e.token_labels[t];
    } else {
      labels[r] = e.label;
    }
  }
  Batch b;
  b.inputs.emplace_back(in.tokens, std::move(tokens));
  if (in.lengths >= 0) b.inputs.emplace_back(in.lengths, std::move(lengths));
  b.inputs.emplace_back(in.labels, std::move(labels));
  return b;
}

Batch make_multitask_batch(const MultiTaskInputs& in, const std::vector<std::pair<int, const Example*>>& rows, int B,
                           int T, int32_t pad) {
  FERRY_CHECK(static_cast<int>(rows.size()) <= B && in.labels.size() == in.kinds.size(), "make_multitask_batch shape");
  std::vector<const Example*> all;
  for (const auto& [task, e] : rows) all.push_back(e);
  // Tokens and lengths as for one task; then each head's labels from its own rows only.
  Batch b = make_batch({in.tokens, in.lengths, -1}, HeadKind::SequenceClassification, all, B, T, pad);
  b.inputs.pop_back();  // the placeholder labels
  for (size_t k = 0; k < in.labels.size(); ++k) {
    std::vector<const Example*> own(rows.size(), nullptr);
    for (size_t r = 0; r < rows.size(); ++r)
      if (rows[r].first == static_cast<int>(k)) own[r] = rows[r].second;
    const bool per_token = in.kinds[k] != HeadKind::SequenceClassification;
    std::vector<int32_t> labels(per_token ? static_cast<size_t>(B) * T : static_cast<size_t>(B), kIgnoreLabel);
    for (size_t r = 0; r < own.size(); ++r) {
      if (!own[r]) continue;
      const Example& e = *own[r];
      const int n = std::min<int>(T, static_cast<int>(e.ids.size()));
      if (per_token) {
        for (int t = 0; t < n && t < static_cast<int>(e.token_labels.size()); ++t) labels[r * T + t] = e.token_labels[t];
      } else {
        labels[r] = e.label;
      }
    }
    b.inputs.emplace_back(in.labels[k], std::move(labels));
  }
  return b;
}

std::vector<Example> lm_windows(const std::vector<int32_t>& stream, int T) {
  std::vector<Example> out;
  for (size_t s = 0; s + static_cast<size_t>(T) + 1 <= stream.size(); s += static_cast<size_t>(T)) {
    Example e;
    e.ids.assign(stream.begin() + static_cast<std::ptrdiff_t>(s), stream.begin() + static_cast<std::ptrdiff_t>(s + T));
    e.token_labels.assign(stream.begin() + static_cast<std::ptrdiff_t>(s + 1),
                          stream.begin() + static_cast<std::ptrdiff_t>(s + T + 1));
    out.push_back(std::move(e));
  }
  return out;
}

void mask_tokens(Example& e, int32_t mask, int32_t first_random, int32_t vocab, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  e.token_labels.assign(e.ids.size(), kIgnoreLabel);
  for (size_t t = 0; t < e.ids.size(); ++t) {
    if (u(rng) >= 0.15) continue;
    e.token_labels[t] = e.ids[t];
    const double r = u(rng);
    if (r < 0.8)
      e.ids[t] = mask;
    else if (r < 0.9)
      e.ids[t] = first_random + static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab - first_random));
  }
}

}  // namespace ferry::tasks
