// tests/fuzz/tokenizer_vocab_fuzz.cpp — GPT-2's vocabulary files, encoder.json and vocab.bpe.
// A valid encoder.json holds exactly 50,257 tokens, far beyond what a fuzzer writes from nothing, so
// the input edits GPT-2's real files (data/cache/gpt2) instead:
//   input = ENCODER_EDIT '\0' MERGES_EDIT   (no '\0': all of it is ENCODER_EDIT)
//   ENCODER_EDIT: empty → encoder.json as it is; a JSON object → applied to it as a JSON merge patch
//     (RFC 7386: "tok": 5 sets an id, "tok": null removes a token); anything else → the whole file.
//   MERGES_EDIT: its lines replace the first merges of vocab.bpe (after the #version line), one each.
// Properties: the pair loads or gives a UserError; a loaded tokenizer encodes the input's bytes and
// decodes them back unchanged.
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tests/fuzz/fuzz_support.h"
#include "tools/tokenizer/gpt2_tokenizer.h"

namespace {

using ferry::tokenizer::Gpt2Tokenizer;

struct RealFiles {
  nlohmann::json encoder;
  std::string encoder_text;
  std::vector<std::string> merge_lines;  // vocab.bpe by line, the #version line first
  RealFiles() {
    const auto dir = Gpt2Tokenizer::default_dir();
    encoder_text = ferry::fuzz::read_file_bytes(dir / "encoder.json");
    encoder = nlohmann::json::parse(encoder_text);
    std::istringstream in(ferry::fuzz::read_file_bytes(dir / "vocab.bpe"));
    for (std::string line; std::getline(in, line);) merge_lines.push_back(line);
  }
};

const RealFiles& real_files() {
  static const RealFiles real;
  return real;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  real_files();
  return 0;
}

// Slow by nature: each input loads a whole 50,257-token vocabulary (0.7 to 2 s under ASan on the
// 2-core build machine at load 12), so a run executes thousands of inputs, not millions.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry;
  const RealFiles& real = real_files();
  const std::string_view input = fuzz::as_chars(data, size);
  const size_t cut = input.find('\0');
  const std::string_view encoder_edit = input.substr(0, cut);
  const std::string_view merges_edit = cut == std::string_view::npos ? std::string_view() : input.substr(cut + 1);

  const auto dir = fuzz::scratch_dir() / "gpt2";
  std::filesystem::create_directories(dir);
  std::string encoder_text = real.encoder_text;
  if (!encoder_edit.empty()) {
    const auto patch = nlohmann::json::parse(encoder_edit, nullptr, false);
    if (!patch.is_discarded() && patch.is_object()) {
      nlohmann::json edited = real.encoder;
      edited.merge_patch(patch);
      encoder_text = edited.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
      encoder_text = std::string(encoder_edit);
    }
  }
  fuzz::write_scratch("gpt2/encoder.json", encoder_text);
  std::string merges;
  {
    std::istringstream edits{std::string(merges_edit)};
    size_t k = 1;
    std::string line;
    std::vector<std::string> lines = real.merge_lines;
    while (std::getline(edits, line) && k < lines.size()) lines[k++] = line;
    for (const auto& l : lines) merges += l + "\n";
  }
  fuzz::write_scratch("gpt2/vocab.bpe", merges);

  std::optional<Gpt2Tokenizer> tok;
  try {
    tok.emplace(Gpt2Tokenizer::load(dir));
  } catch (const UserError&) {
    return 0;
  }
  const std::vector<int32_t> ids = tok->encode(input);
  for (const int32_t id : ids) FUZZ_ASSERT(tok->has_token(id), "encode gave an id that is no token");
  FUZZ_ASSERT(tok->decode(ids) == input, "decode(encode(text)) != text with a loaded vocabulary");
  return 0;
}
