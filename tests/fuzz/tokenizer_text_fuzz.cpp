// tests/fuzz/tokenizer_text_fuzz.cpp — GPT-2's BPE tokenizer on arbitrary text and arbitrary ids, with
// GPT-2's real vocabulary (data/cache/gpt2, or $FERRY_ASSETS/gpt2).
// Input: one mode byte, then the payload.
//   mode % 8 < 6: encode the payload (any bytes, valid UTF-8 or not) with the full vocabulary or one
//     stopped after 0, 255, 1000 or 8000 merges (mode % 8 picks), then decode: the payload comes
//     back byte for byte; every id is a token of that vocabulary and never <|endoftext|>.
//   otherwise: the payload as little-endian int32 ids; decode gives the concatenated token bytes, or
//     a UserError when an id lies outside [0, 50257).
#include <optional>

#include "base/error.h"
#include "tests/fuzz/fuzz_support.h"
#include "tools/tokenizer/gpt2_tokenizer.h"

namespace {

using ferry::tokenizer::Gpt2Tokenizer;

const Gpt2Tokenizer& tokenizer_with(int which) {
  static const Gpt2Tokenizer full = Gpt2Tokenizer::load(Gpt2Tokenizer::default_dir());
  static const Gpt2Tokenizer limited[] = {full.with_merge_limit(0), full.with_merge_limit(255),
                                          full.with_merge_limit(1000), full.with_merge_limit(8000)};
  return which == 0 ? full : limited[(which - 1) % 4];
}

}  // namespace

// Loading the vocabulary (seconds under ASan) happens here, outside the per-input timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tokenizer_with(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry;
  if (size < 1) return 0;
  const int mode = data[0] % 8;
  const std::string_view payload = fuzz::as_chars(data + 1, size - 1);
  if (mode < 6) {
    const Gpt2Tokenizer& tok = tokenizer_with(mode % 5);
    const std::vector<int32_t> ids = tok.encode(payload);
    for (const int32_t id : ids)
      FUZZ_ASSERT(tok.has_token(id), "encode gave id " + std::to_string(id) + ", not a token of this vocabulary");
    FUZZ_ASSERT(ids.size() <= payload.size(), "more ids than bytes");
    FUZZ_ASSERT(tok.decode(ids) == payload, "decode(encode(text)) != text");
    return 0;
  }
  std::vector<int32_t> ids(payload.size() / 4);
  if (!ids.empty()) std::memcpy(ids.data(), payload.data(), ids.size() * 4);
  const Gpt2Tokenizer& tok = tokenizer_with(0);
  bool in_range = true;
  for (const int32_t id : ids) in_range = in_range && id >= 0 && id < Gpt2Tokenizer::kVocabSize;
  std::string text;
  try {
    text = tok.decode(ids);
  } catch (const UserError&) {
    FUZZ_ASSERT(!in_range, "decode refused ids that are all in range");
    return 0;
  }
  FUZZ_ASSERT(in_range, "decode accepted an id out of range");
  std::string expected;
  for (const int32_t id : ids) expected += tok.token_bytes(id);
  FUZZ_ASSERT(text == expected, "decode is not the concatenation of the tokens' bytes");
  return 0;
}
