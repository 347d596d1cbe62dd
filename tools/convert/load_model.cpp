// tools/convert/load_model.cpp
#include "tools/convert/load_model.h"

#include <memory>

#include "base/error.h"
#include "tools/convert/model_file.h"
#include "tools/tokenizer/gpt2_tokenizer.h"

namespace ferry::convert {

Checkpoint load_any_model(const std::filesystem::path& path, std::optional<int> n_head) {
  const std::filesystem::path file = resolve_model_path(path);
  const std::string kind = detect_model_file(file);
  if (kind == "ferry") return read_checkpoint(file);
  if (kind == "llmc") return read_llmc(file);
  return read_safetensors(file, n_head);
}

ModelFile load_any_model_file(const std::filesystem::path& path, std::optional<int> n_head) {
  return model_file_of(load_any_model(path, n_head), resolve_model_path(path));
}

TextCodec codec_for_vocab(int vocab_size) {
  using tokenizer::Gpt2Tokenizer;
  if (vocab_size == Gpt2Tokenizer::kVocabSize) {
    auto tok = std::make_shared<Gpt2Tokenizer>(Gpt2Tokenizer::load(Gpt2Tokenizer::default_dir()));
    return {[tok](const std::string& s) { return tok->encode(s); },
            [tok](const std::vector<int32_t>& ids) { return tok->decode(ids); }};
  }
  if (vocab_size <= 256) {
    return {[](const std::string& s) {
              std::vector<int32_t> ids;
              for (unsigned char ch : s) ids.push_back(ch);
              return ids;
            },
            [](const std::vector<int32_t>& ids) {
              std::string s;
              for (int32_t id : ids) s.push_back(static_cast<char>(id));
              return s;
            }};
  }
  user_error("no tokenizer for a vocabulary of ", vocab_size, " (GPT-2's 50257 or byte-level ≤ 256)");
}

}  // namespace ferry::convert
