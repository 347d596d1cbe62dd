// benchmarks/sentiment_bow_bench.cpp — the bag-of-words ceiling of the transfer experiment: what
// the labels alone teach a linear model, on exactly the reviews, pieces and splits `ferry finetune
// --task sentiment` uses (benchmarks/RESULTS.md, "Transfer learning on IMDB").
//
// For each seed: the same split, stratified training labels, dev and test subsets as the fine-tuning
// runs (tools/tasks/runner.h load_task), each review encoded with the model's vocabulary and cut to
// --seq-len pieces the way the transformer sees it (head and tail; --seq-len 0: the whole review).
// Features: presence of each piece and of each pair of adjacent pieces (hashed into 2^20 slots),
// scaled to unit length. Model: logistic regression with L2, trained by full-batch-free SGD (AdaGrad,
// 40 shuffled epochs); the L2 strength is chosen on dev from a grid, then the test accuracy of that
// one is printed. Deterministic.
//
//   sentiment_bow_bench [--model M] [--labels N] [--seeds 1,2,3] [--seq-len T] [--dev-limit N]
//                       [--test-limit N] [--unigrams]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "engine/finetune/model_file.h"
#include "tools/tasks/runner.h"

namespace {

using Sparse = std::vector<std::pair<uint32_t, float>>;
constexpr uint32_t kSlots = 1u << 20;

Sparse features(const std::vector<int32_t>& ids, bool bigrams) {
  std::vector<uint32_t> keys;
  for (size_t i = 0; i < ids.size(); ++i) {
    keys.push_back(static_cast<uint32_t>(ids[i]) % kSlots);
    if (bigrams && i + 1 < ids.size()) {
      uint64_t h = (static_cast<uint64_t>(ids[i]) * 0x9E3779B97F4A7C15ull) ^ (static_cast<uint64_t>(ids[i + 1]) + 0x632BE59BD9B4E019ull);
      h ^= h >> 29;
      h *= 0xBF58476D1CE4E5B9ull;
      h ^= h >> 32;
      keys.push_back(static_cast<uint32_t>(h % kSlots));
    }
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  Sparse s;
  const float v = keys.empty() ? 0.f : 1.f / std::sqrt(static_cast<float>(keys.size()));
  for (uint32_t k : keys) s.emplace_back(k, v);
  return s;
}

struct Model {
  std::vector<float> w = std::vector<float>(kSlots, 0.f);
  float b = 0;
  double score(const Sparse& x) const {
    double z = b;
    for (auto [k, v] : x) z += w[k] * v;
    return z;
  }
};

Model train(const std::vector<Sparse>& x, const std::vector<int>& y, double l2, uint64_t seed) {
  Model m;
  std::vector<float> g2(kSlots, 0.f);
  float gb2 = 0;
  const double lr = 0.5;
  std::vector<size_t> order(x.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  for (int epoch = 0; epoch < 40; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t i : order) {
      const double p = 1.0 / (1.0 + std::exp(-m.score(x[i])));
      const double err = p - y[i];
      for (auto [k, v] : x[i]) {
        const float g = static_cast<float>(err * v + l2 * m.w[k]);
        g2[k] += g * g;
        m.w[k] -= static_cast<float>(lr * g / (std::sqrt(g2[k]) + 1e-8));
      }
      const float gb = static_cast<float>(err);
      gb2 += gb * gb;
      m.b -= static_cast<float>(lr * gb / (std::sqrt(gb2) + 1e-8));
    }
  }
  return m;
}

double accuracy(const Model& m, const std::vector<Sparse>& x, const std::vector<int>& y) {
  size_t right = 0;
  for (size_t i = 0; i < x.size(); ++i) right += (m.score(x[i]) > 0) == (y[i] == 1);
  return x.empty() ? 0 : static_cast<double>(right) / x.size();
}

void encode(const std::vector<ferry::tasks::Example>& ex, bool bigrams, std::vector<Sparse>& x, std::vector<int>& y) {
  for (const auto& e : ex) {
    x.push_back(features(e.ids, bigrams));
    y.push_back(e.label);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = "models/ferry-release.ckpt";
  std::vector<uint64_t> seeds = {1, 2, 3};
  ferry::tasks::DataOptions o;
  o.train_labels = 1000;
  o.dev_limit = 300;
  o.test_limit = 2000;
  bool bigrams = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sentiment_bow_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    try {
      if (a == "--model") model = next();
      else if (a == "--labels") o.train_labels = std::stoul(next());
      else if (a == "--seq-len") o.seq_len = std::stoi(next());
      else if (a == "--dev-limit") o.dev_limit = std::stoul(next());
      else if (a == "--test-limit") o.test_limit = std::stoul(next());
      else if (a == "--unigrams") bigrams = false;
      else if (a == "--seeds") {
        seeds.clear();
        std::string s = next();
        for (size_t p = 0; p <= s.size();) {
          size_t q = s.find(',', p);
          if (q == std::string::npos) q = s.size();
          seeds.push_back(std::stoull(s.substr(p, q - p)));
          p = q + 1;
        }
      } else {
        std::fprintf(stderr, "sentiment_bow_bench: unknown argument '%s'\n", a.c_str());
        return 2;
      }
    } catch (const std::logic_error&) {
      std::fprintf(stderr, "sentiment_bow_bench: %s: not a number\n", a.c_str());
      return 2;
    }
  }
  if (o.seq_len == 0) o.seq_len = 1 << 20;
  try {
    const auto meta = ferry::tasks::ModelMeta::of(ferry::load_model_file(model));
    const double grid[] = {1e-5, 1e-4, 1e-3, 1e-2};
    double sum = 0;
    std::printf("bag of %s over %s's vocabulary, %zu labels, reviews cut to %s pieces\n",
                bigrams ? "pieces and adjacent pairs" : "pieces", model.c_str(), o.train_labels,
                o.seq_len >= (1 << 20) ? "no" : std::to_string(o.seq_len).c_str());
    for (uint64_t seed : seeds) {
      o.seed = seed;
      const auto d = ferry::tasks::load_task("sentiment", meta.vocab, o);
      std::vector<Sparse> xt, xd, xs;
      std::vector<int> yt, yd, ys;
      encode(d.train, bigrams, xt, yt);
      encode(d.dev, bigrams, xd, yd);
      encode(d.test, bigrams, xs, ys);
      double best_dev = -1, best_l2 = 0, test = 0;
      for (double l2 : grid) {
        const Model m = train(xt, yt, l2, seed);
        const double dev = accuracy(m, xd, yd);
        if (dev > best_dev) best_dev = dev, best_l2 = l2, test = accuracy(m, xs, ys);
      }
      std::printf("seed %llu: train %zu, dev %zu, test %zu | l2 %.0e | dev %.1f%% | test %.1f%%\n",
                  static_cast<unsigned long long>(seed), xt.size(), xd.size(), xs.size(), best_l2, 100 * best_dev,
                  100 * test);
      sum += test;
    }
    std::printf("mean test accuracy: %.1f%% over %zu seeds\n", 100 * sum / seeds.size(), seeds.size());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sentiment_bow_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
