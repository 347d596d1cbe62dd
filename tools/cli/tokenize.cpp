// tools/cli/tokenize.cpp — `ferry tokenize`: GPT-2 token ids of stdin's text, or with --decode the
// bytes of stdin's ids.
//   echo "Hello world" | ferry tokenize            → 15496 995 198
//   echo "15496 995" | ferry tokenize --decode     → Hello world
#include <charconv>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "base/error.h"
#include "tools/cli/command.h"
#include "tools/tokenizer/gpt2_tokenizer.h"

namespace {

struct TokenizeOptions {
  bool decode = false;
  std::string vocab_dir;
};

std::string read_stdin() {
  std::ios::sync_with_stdio(false);
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

void write_stdout(const std::string& bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size() || std::fflush(stdout) != 0) {
    ferry::user_error("cannot write to stdout");
  }
}

void encode_stdin(const ferry::tokenizer::Gpt2Tokenizer& tok) {
  const std::vector<int32_t> ids = tok.encode(read_stdin());
  std::string line;
  line.reserve(ids.size() * 6 + 1);
  char number[16];
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line.push_back(' ');
    const auto [end, ec] = std::to_chars(number, number + sizeof number, ids[i]);
    line.append(number, end);
  }
  line.push_back('\n');
  write_stdout(line);
}

void decode_stdin(const ferry::tokenizer::Gpt2Tokenizer& tok) {
  const std::string text = read_stdin();
  std::vector<int32_t> ids;
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  for (size_t pos = 0; pos < text.size();) {
    if (is_space(text[pos])) {
      ++pos;
      continue;
    }
    size_t end = pos;
    while (end < text.size() && !is_space(text[end])) ++end;
    const std::string_view word(text.data() + pos, end - pos);
    int64_t id = -1;
    const auto [stop, ec] = std::from_chars(word.data(), word.data() + word.size(), id);
    if (ec != std::errc() || stop != word.data() + word.size()) {
      ferry::user_error("stdin: '", word.substr(0, 40), "' is not a token id (expected integers separated by whitespace)");
    }
    if (id < 0 || id >= ferry::tokenizer::Gpt2Tokenizer::kVocabSize) {
      ferry::user_error("stdin: token id ", id, " is out of range [0, ", ferry::tokenizer::Gpt2Tokenizer::kVocabSize, ")");
    }
    ids.push_back(static_cast<int32_t>(id));
    pos = end;
  }
  write_stdout(tok.decode(ids));
}

void setup(CLI::App& app) {
  auto opts = std::make_shared<TokenizeOptions>();
  app.add_flag("--decode", opts->decode, "Read whitespace-separated token ids from stdin and write their bytes");
  app.add_option("--vocab", opts->vocab_dir,
                 "Folder with encoder.json and vocab.bpe (default: $FERRY_ASSETS/gpt2 or data/cache/gpt2)");
  app.callback([opts] {
    const auto dir = opts->vocab_dir.empty() ? ferry::tokenizer::Gpt2Tokenizer::default_dir()
                                             : std::filesystem::path(opts->vocab_dir);
    const auto tok = ferry::tokenizer::Gpt2Tokenizer::load(dir);
    if (opts->decode) {
      decode_stdin(tok);
    } else {
      encode_stdin(tok);
    }
  });
}

}  // namespace

FERRY_COMMAND(tokenize, "tokenize", "Encode UTF-8 text from stdin to GPT-2 token ids (--decode: ids back to text)", setup);
