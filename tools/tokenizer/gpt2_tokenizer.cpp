// tools/tokenizer/gpt2_tokenizer.cpp — loading and checking the vocabulary files, encode and decode.
#include "tools/tokenizer/gpt2_tokenizer.h"

#include <array>
#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "engine/assets.h"
#include "base/error.h"
#include "tools/tokenizer/byte_pair_merge.h"
#include "tools/tokenizer/pretokenize.h"
#include "tools/tokenizer/token_index.h"

namespace ferry::tokenizer {

struct Gpt2Vocabulary {
  uint64_t identity = 0;                 // distinguishes vocabularies in the per-thread piece cache
  std::vector<std::string> token_bytes;  // id → bytes
  int32_t byte_tokens[256] = {};         // byte → id of the one-byte token
  // Every token except <|endoftext|>, by its bytes: a piece that is itself a token encodes to it
  // without merging (tiktoken's shortcut, and the common case for English words).
  TokenIndex token_of_bytes;
  MergeTable merges;
  std::vector<int32_t> rank_of;  // id → merge rank (−1: a byte or <|endoftext|>)
  int32_t merge_limit = INT32_MAX;  // only tokens of rank below this exist (with_merge_limit)
};

namespace {

// GPT-2 stores byte strings as printable text: bytes that are printable Latin-1 stand for themselves
// and the other 68 (controls, space, DEL, NBSP, soft hyphen...) are shifted, in order, to U+0100 up.
// This is the inverse: code point → byte, or -1.
std::array<int, 256 + 68> printable_to_byte() {
  std::array<int, 256 + 68> inverse;
  inverse.fill(-1);
  int shifted = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    inverse[printable ? b : 256 + shifted++] = b;
  }
  return inverse;
}

// Decodes one vocabulary string (UTF-8 of the printable form) to the bytes it stands for.
bool vocabulary_string_to_bytes(std::string_view s, std::string& bytes) {
  static const auto inverse = printable_to_byte();
  bytes.clear();
  for (size_t i = 0; i < s.size();) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    char32_t cp;
    if (b0 < 0x80) {
      cp = b0;
      i += 1;
    } else if ((b0 & 0xE0) == 0xC0 && i + 1 < s.size()) {  // the mapping never leaves two-byte UTF-8
      cp = ((b0 & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
      i += 2;
    } else {
      return false;
    }
    if (cp >= inverse.size() || inverse[cp] < 0) return false;
    bytes.push_back(static_cast<char>(inverse[cp]));
  }
  return true;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) user_error(path.string(), ": cannot be read (run scripts/fetch_assets.sh to fetch the GPT-2 vocabulary)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void read_encoder(const std::filesystem::path& path, Gpt2Vocabulary& vocab) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    user_error(path.string(), ": not valid JSON (", e.what(), ")");
  }
  if (!json.is_object() || json.size() != size_t(Gpt2Tokenizer::kVocabSize)) {
    user_error(path.string(), ": expected an object of ", Gpt2Tokenizer::kVocabSize, " tokens");
  }
  vocab.token_bytes.assign(Gpt2Tokenizer::kVocabSize, {});
  std::vector<bool> seen(Gpt2Tokenizer::kVocabSize, false);
  std::string bytes;
  for (const auto& [text, id_json] : json.items()) {
    if (!id_json.is_number_integer()) user_error(path.string(), ": token '", text, "' has a non-integer id");
    const int64_t id = id_json.get<int64_t>();
    if (id < 0 || id >= Gpt2Tokenizer::kVocabSize || seen[id]) {
      user_error(path.string(), ": token '", text, "' has id ", id, ", out of range or repeated");
    }
    if (!vocabulary_string_to_bytes(text, bytes) || bytes.empty()) {
      user_error(path.string(), ": token ", id, " is not a GPT-2 byte-level string");
    }
    seen[id] = true;
    vocab.token_bytes[id] = bytes;
  }
  if (vocab.token_bytes[Gpt2Tokenizer::kEndOfText] != "<|endoftext|>") {
    user_error(path.string(), ": token ", Gpt2Tokenizer::kEndOfText, " is not <|endoftext|>");
  }
  for (int32_t id = 0; id < Gpt2Tokenizer::kVocabSize; ++id) {
    if (id == Gpt2Tokenizer::kEndOfText) continue;
    if (!vocab.token_of_bytes.insert(vocab.token_bytes[id], id)) {
      user_error(path.string(), ": tokens ", vocab.token_of_bytes.find(vocab.token_bytes[id]), " and ", id,
                 " have the same bytes");
    }
  }
  for (int b = 0; b < 256; ++b) {
    const char byte = static_cast<char>(b);
    const int32_t id = vocab.token_of_bytes.find(std::string_view(&byte, 1));
    if (id == TokenIndex::kAbsent) user_error(path.string(), ": no token for the single byte ", b);
    vocab.byte_tokens[b] = id;
  }
}

// vocab.bpe lists the merges in the order they were learned: line k (after the "#version" line) is
// "LEFT RIGHT", and the token LEFT+RIGHT gets merge rank k. Returns rank per token id (-1: none).
std::vector<int32_t> read_merge_ranks(const std::filesystem::path& path, const Gpt2Vocabulary& vocab) {
  const std::string text = read_file(path);
  std::vector<int32_t> rank_of(Gpt2Tokenizer::kVocabSize, -1);
  std::string left, right;
  size_t line_no = 0;
  int32_t rank = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const size_t space = line.find(' ');
    if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos ||
        !vocabulary_string_to_bytes(line.substr(0, space), left) ||
        !vocabulary_string_to_bytes(line.substr(space + 1), right) || left.empty() || right.empty()) {
      user_error(path.string(), ":", line_no, ": expected 'LEFT RIGHT', two GPT-2 byte-level strings");
    }
    const int32_t merged = vocab.token_of_bytes.find(left + right);
    if (vocab.token_of_bytes.find(left) == TokenIndex::kAbsent ||
        vocab.token_of_bytes.find(right) == TokenIndex::kAbsent || merged == TokenIndex::kAbsent) {
      user_error(path.string(), ":", line_no, ": merge '", line, "' names a token missing from encoder.json");
    }
    if (rank_of[merged] < 0) rank_of[merged] = rank;  // a repeated merge keeps its first rank
    ++rank;
  }
  return rank_of;
}

// Every split of a token into two tokens is a possible merge (tiktoken ranks a pair by the token it
// concatenates to, whichever way it was learned), so the table holds all of them — for the tokens
// below the merge limit (every part of such a token is a byte or a token of lower rank).
void fill_merges(Gpt2Vocabulary& vocab) {
  for (int32_t id = 0; id < Gpt2Tokenizer::kVocabSize; ++id) {
    const std::string& bytes = vocab.token_bytes[id];
    if (id == Gpt2Tokenizer::kEndOfText || bytes.size() == 1 || vocab.rank_of[id] >= vocab.merge_limit) continue;
    for (size_t k = 1; k < bytes.size(); ++k) {
      const int32_t left = vocab.token_of_bytes.find(std::string_view(bytes).substr(0, k));
      const int32_t right = vocab.token_of_bytes.find(std::string_view(bytes).substr(k));
      if (left == TokenIndex::kAbsent || right == TokenIndex::kAbsent) continue;
      if (vocab.rank_of[left] >= vocab.merge_limit || vocab.rank_of[right] >= vocab.merge_limit) continue;
      vocab.merges.insert(left, right, {vocab.rank_of[id], id});
    }
  }
}

}  // namespace

Gpt2Tokenizer Gpt2Tokenizer::load(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir)) {
    user_error("GPT-2 tokenizer folder ", dir.string(), " does not exist (run scripts/fetch_assets.sh)");
  }
  static std::atomic<uint64_t> next_identity{1};
  auto vocab = std::make_shared<Gpt2Vocabulary>();
  vocab->identity = next_identity++;
  read_encoder(dir / "encoder.json", *vocab);

  vocab->rank_of = read_merge_ranks(dir / "vocab.bpe", *vocab);
  for (int32_t id = 0; id < kVocabSize; ++id) {
    if (id != kEndOfText && vocab->token_bytes[id].size() > 1 && vocab->rank_of[id] < 0)
      user_error((dir / "vocab.bpe").string(), ": no merge produces token ", id, " of encoder.json");
  }
  fill_merges(*vocab);
  return Gpt2Tokenizer(std::move(vocab));
}

Gpt2Tokenizer Gpt2Tokenizer::with_merge_limit(int merges) const {
  if (merges < 0) user_error("a BPE merge limit must be >= 0, got ", merges);
  static std::atomic<uint64_t> next_identity{1ull << 40};
  auto vocab = std::make_shared<Gpt2Vocabulary>();
  vocab->identity = next_identity++;
  vocab->token_bytes = vocab_->token_bytes;
  std::copy(std::begin(vocab_->byte_tokens), std::end(vocab_->byte_tokens), std::begin(vocab->byte_tokens));
  vocab->token_of_bytes = vocab_->token_of_bytes;
  vocab->rank_of = vocab_->rank_of;
  vocab->merge_limit = merges;
  fill_merges(*vocab);
  return Gpt2Tokenizer(std::move(vocab));
}

bool Gpt2Tokenizer::has_token(int32_t id) const {
  if (id < 0 || id >= kVocabSize || id == kEndOfText) return false;
  return vocab_->token_bytes[id].size() == 1 || vocab_->rank_of[id] < vocab_->merge_limit;
}

std::filesystem::path Gpt2Tokenizer::default_dir() { return assets_dir() / "gpt2"; }

namespace {

// Most pieces that are not whole tokens still repeat (names, inflections, numbers), so each thread
// remembers the ids of the pieces it merged. Per thread: no locks, and encode() stays const.
struct PieceCache {
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  static constexpr size_t kMaxEntries = 1 << 16;  // bounded: a long corpus must not grow it forever
  static constexpr size_t kMaxPieceBytes = 128;   // longer pieces are rare and would bloat it
  uint64_t vocabulary = 0;
  std::unordered_map<std::string, std::vector<int32_t>, Hash, std::equal_to<>> ids;
};

}  // namespace

void Gpt2Tokenizer::encode_append(std::string_view text, std::vector<int32_t>& out) const {
  const Gpt2Vocabulary& vocab = *vocab_;
  thread_local PieceCache cache;
  if (cache.vocabulary != vocab.identity) {
    cache.ids.clear();
    cache.vocabulary = vocab.identity;
  }
  std::string_view piece;
  for (Gpt2PieceSplitter splitter(text); splitter.next(piece);) {
    if (const int32_t whole = vocab.token_of_bytes.find(piece);
        whole != TokenIndex::kAbsent && (piece.size() == 1 || vocab.rank_of[whole] < vocab.merge_limit)) {
      out.push_back(whole);
      continue;
    }
    if (const auto hit = cache.ids.find(piece); hit != cache.ids.end()) {
      out.insert(out.end(), hit->second.begin(), hit->second.end());
      continue;
    }
    const size_t first = out.size();
    byte_pair_merge(piece, vocab.byte_tokens, vocab.merges, out);
    if (piece.size() <= PieceCache::kMaxPieceBytes) {
      if (cache.ids.size() >= PieceCache::kMaxEntries) cache.ids.clear();
      cache.ids.emplace(std::string(piece), std::vector<int32_t>(out.begin() + first, out.end()));
    }
  }
}

std::vector<int32_t> Gpt2Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 4 + 1);
  encode_append(text, ids);
  return ids;
}

std::string_view Gpt2Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= kVocabSize) user_error("token id ", id, " is out of range [0, ", kVocabSize, ")");
  return vocab_->token_bytes[id];
}

std::string Gpt2Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string text;
  for (const int32_t id : ids) text += token_bytes(id);
  return text;
}

}  // namespace ferry::tokenizer
