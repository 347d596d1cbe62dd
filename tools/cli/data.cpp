// tools/cli/data.cpp — `ferry data`: build the pretraining corpus, and check token shards.
//   ferry data prepare [--out DIR] [--val-fraction F] [--seed S] [--shard-tokens N] [--sources a,b]
//   ferry data prepare --task translate [--out DIR] [--seed S]   (English–Spanish verse pairs)
//   ferry data check data/corpus              (or a glob: 'data/corpus/*_val_*.bin')
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "engine/assets.h"
#include "engine/data/shard.h"
#include "base/error.h"
#include "tools/cli/command.h"
#include "tools/data/prepare_corpus.h"
#include "tools/tokenizer/gpt2_tokenizer.h"
#include "tools/translate/prepare.h"

namespace {

using ferry::data::PrepareOptions;
using ferry::data::PrepareSummary;

struct PrepareFlags {
  std::string task = "corpus";
  ferry::translate::TranslatePrepareOptions translate;
  std::string out;
  std::string assets;
  std::string vocab;
  PrepareOptions options;
};

std::string with_commas(size_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

void print_summary(const PrepareSummary& s, const std::filesystem::path& out, double seconds) {
  if (s.up_to_date) {
    std::printf("corpus in %s is up to date (nothing to do)\n", out.c_str());
  } else {
    std::printf("corpus written to %s in %.1f s\n", out.c_str(), seconds);
  }
  for (const auto& [name, src] : s.sources) {
    std::printf("  %-10s %7zu documents %5zu in val %13s tokens %6.1f MB of text\n", name.c_str(), src.documents,
                src.val_documents, with_commas(src.tokens).c_str(), static_cast<double>(src.bytes) / 1e6);
  }
  const auto split = [](const char* name, const ferry::data::SplitSummary& x) {
    std::printf("  %-10s %7zu documents              %13s tokens in %zu shard%s\n", name, x.documents, with_commas(x.tokens).c_str(),
                x.shards.size(), x.shards.size() == 1 ? "" : "s");
  };
  split("train", s.train);
  split("val", s.val);
  std::fflush(stdout);
}

void prepare_translate(const PrepareFlags& f, uint64_t seed, bool force) {
  auto o = f.translate;
  o.out = f.out.empty() ? ferry::translate::default_translate_dir() : std::filesystem::path(f.out);
  o.seed = seed;
  o.force = force;
  const auto start = std::chrono::steady_clock::now();
  const auto s = ferry::translate::prepare_translate(o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (s.up_to_date)
    std::printf("translation pairs in %s are up to date (nothing to do)\n", o.out.c_str());
  else
    std::printf("translation pairs written to %s in %.1f s\n", o.out.c_str(), seconds);
  auto join = [](const std::vector<std::string>& v) {
    std::string r;
    for (const auto& x : v) r += (r.empty() ? "" : ", ") + x;
    return r;
  };
  std::printf("  %zu English and %zu Spanish verses, %zu pairs joined on the reference\n", s.en_verses, s.es_verses,
              s.pairs);
  std::printf("  train %zu pairs | dev %zu (%s) | test %zu (%s)\n", s.train, s.dev, join(s.dev_books).c_str(), s.test,
              join(s.test_books).c_str());
  std::fflush(stdout);
}

void setup_prepare(CLI::App& app) {
  auto flags = std::make_shared<PrepareFlags>();
  auto& o = flags->options;
  app.add_option("--task", flags->task, "corpus (pretraining shards) | translate (English–Spanish verse pairs)")
      ->capture_default_str();
  app.add_option("--test-fraction", flags->translate.test_fraction,
                 "translate: share of pairs in held-out test books (whole books)")
      ->capture_default_str();
  app.add_option("--dev-fraction", flags->translate.dev_fraction, "translate: share of pairs in dev books")
      ->capture_default_str();
  app.add_option("--out", flags->out, "Folder for the shards and manifest.json (default: data/corpus)");
  app.add_option("--val-fraction", o.val_fraction, "Share of documents in the validation split")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the train/val split and of the document order")->capture_default_str();
  app.add_option("--shard-tokens", o.shard_tokens, "Tokens per shard at most")->capture_default_str();
  app.add_option("--sources", o.sources, "Corpus sources to include: gutenberg, sotu, imdb (the IMDB pretraining pool)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--assets", flags->assets, "Folder of fetched packages (default: $FERRY_ASSETS or data/cache)");
  app.add_option("--vocab", flags->vocab, "Folder with the GPT-2 encoder.json and vocab.bpe (default: <assets>/gpt2)");
  app.add_flag("--force", o.force, "Rebuild even when the manifest says the corpus is up to date");
  app.callback([flags] {
    if (flags->task == "translate") return prepare_translate(*flags, flags->options.seed, flags->options.force);
    if (flags->task != "corpus") ferry::user_error("--task: '", flags->task, "' (corpus or translate)");
    auto o = flags->options;
    o.assets = flags->assets.empty() ? ferry::assets_dir() : std::filesystem::path(flags->assets);
    o.out = flags->out.empty() ? ferry::data::default_corpus_dir() : std::filesystem::path(flags->out);
    o.tokenizer_dir = !flags->vocab.empty()   ? std::filesystem::path(flags->vocab)
                      : !flags->assets.empty() ? o.assets / "gpt2"
                                               : ferry::tokenizer::Gpt2Tokenizer::default_dir();
    const auto start = std::chrono::steady_clock::now();
    const auto summary = ferry::data::prepare_corpus(o);
    print_summary(summary, o.out, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  });
}

void setup_check(CLI::App& app) {
  auto pattern = std::make_shared<std::string>();
  auto vocab_size = std::make_shared<int>(ferry::tokenizer::Gpt2Tokenizer::kVocabSize);
  app.add_option("shards", *pattern, "A folder of shards, a glob, or one shard file")->required();
  app.add_option("--vocab-size", *vocab_size, "Token ids must be below this")->capture_default_str();
  app.callback([pattern, vocab_size] {
    size_t total = 0;
    const auto files = ferry::data::resolve_shards(*pattern);
    for (const auto& file : files) {
      const ferry::data::MappedShard shard(file, *vocab_size);
      std::printf("%s  %s tokens\n", file.c_str(), with_commas(shard.size()).c_str());
      total += shard.size();
    }
    std::printf("%zu shard%s, %s tokens, all valid\n", files.size(), files.size() == 1 ? "" : "s",
                with_commas(total).c_str());
  });
}

void setup(CLI::App& app) {
  app.require_subcommand(1);
  setup_prepare(*app.add_subcommand("prepare", "Build the pretraining corpus as llm.c token shards"));
  setup_check(*app.add_subcommand("check", "Validate token shards (header, size, ids) and count their tokens"));
}

}  // namespace

FERRY_COMMAND(data, "data", "Prepare the pretraining corpus and check token shards", setup);
