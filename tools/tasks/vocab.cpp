// tools/tasks/vocab.cpp
#include "tools/tasks/vocab.h"

#include <algorithm>
#include <mutex>
#include <numeric>

#include "base/error.h"

namespace ferry::tasks {

TaskVocab TaskVocab::gpt2() { return TaskVocab{}; }

TaskVocab TaskVocab::compact_from_counts(const std::vector<int64_t>& counts, int size) {
  if (size <= kReserved) user_error("vocabulary size must exceed ", kReserved, ", got ", size);
  std::vector<int32_t> ids(counts.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return counts[a] > counts[b]; });
  std::vector<int32_t> kept;
  for (int32_t id : ids) {
    if (static_cast<int>(kept.size()) == size - kReserved || counts[id] == 0) break;
    if (id != tokenizer::Gpt2Tokenizer::kEndOfText) kept.push_back(id);
  }
  nlohmann::json j = {{"kind", "compact"}, {"gpt2_ids", kept}};
  return from_json(j);
}

namespace {

// GPT-2's tokenizer with a merge limit, made once per limit for the whole process: the vocabulary
// files are read and the merge table built only the first time a limit is asked for (a model's
// metadata is parsed several times per command).
std::shared_ptr<const tokenizer::Gpt2Tokenizer> limited_tokenizer(int merges) {
  static std::mutex mu;
  static std::vector<std::pair<int, std::shared_ptr<const tokenizer::Gpt2Tokenizer>>> made;
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& [m, t] : made)
    if (m == merges) return t;
  const auto full = tokenizer::Gpt2Tokenizer::load(tokenizer::Gpt2Tokenizer::default_dir());
  made.emplace_back(merges, std::make_shared<const tokenizer::Gpt2Tokenizer>(full.with_merge_limit(merges)));
  return made.back().second;
}

}  // namespace

TaskVocab TaskVocab::bpe(int size) {
  const int merges = size - kReserved - 256;
  if (merges < 0 || size > tokenizer::Gpt2Tokenizer::kVocabSize + kReserved - 1)
    user_error("a bpe vocabulary holds ", kReserved + 256, " to ", tokenizer::Gpt2Tokenizer::kVocabSize + kReserved - 1,
               " ids, got --vocab-size ", size);
  return from_json({{"kind", "bpe"}, {"merges", merges}});
}

TaskVocab TaskVocab::from_json(const nlohmann::json& j) {
  TaskVocab v;
  if (!j.is_object() || !j.contains("kind")) user_error("model vocabulary: expected {kind, ...}");
  const std::string kind = j["kind"].get<std::string>();
  if (kind == "gpt2") return v;
  if (kind == "bpe") {
    if (!j.contains("merges") || !j["merges"].is_number_integer()) user_error("model vocabulary: bpe without merges");
    v.merges_ = j["merges"].get<int>();
    if (v.merges_ < 0 || v.merges_ > tokenizer::Gpt2Tokenizer::kVocabSize - 257)
      user_error("model vocabulary: bpe merges ", v.merges_, " out of range");
    // The ids a tokenizer with that limit emits: the bytes and the tokens of rank < merges.
    v.limited_ = limited_tokenizer(v.merges_);
    v.compact_ = true;
    for (int32_t id = 0; id < tokenizer::Gpt2Tokenizer::kVocabSize; ++id) {
      if (!v.limited_->has_token(id)) continue;
      v.to_model_[id] = static_cast<int32_t>(v.kept_.size()) + kReserved;
      v.kept_.push_back(id);
    }
    return v;
  }
  if (kind != "compact" || !j.contains("gpt2_ids") || !j["gpt2_ids"].is_array())
    user_error("model vocabulary: unknown kind '", kind, "' (gpt2, bpe with merges, compact with gpt2_ids)");
  v.compact_ = true;
  for (const auto& e : j["gpt2_ids"]) {
    const int32_t id = e.get<int32_t>();
    if (id < 0 || id >= tokenizer::Gpt2Tokenizer::kVocabSize || v.to_model_.count(id))
      user_error("model vocabulary: bad or repeated GPT-2 id ", id);
    v.to_model_[id] = static_cast<int32_t>(v.kept_.size()) + kReserved;
    v.kept_.push_back(id);
  }
  return v;
}

nlohmann::json TaskVocab::to_json() const {
  if (!compact_) return {{"kind", "gpt2"}};
  if (merges_ >= 0) return {{"kind", "bpe"}, {"merges", merges_}};
  return {{"kind", "compact"}, {"gpt2_ids", kept_}};
}

int32_t TaskVocab::from_gpt2(int32_t id) const {
  if (!compact_) return id;
  if (id == tokenizer::Gpt2Tokenizer::kEndOfText) return separator();
  auto it = to_model_.find(id);
  return it == to_model_.end() ? unk() : it->second;
}

int32_t TaskVocab::to_gpt2(int32_t model_id) const {
  if (!compact_)
    return model_id >= 0 && model_id < tokenizer::Gpt2Tokenizer::kEndOfText ? model_id : -1;
  const int32_t k = model_id - kReserved;
  return k >= 0 && k < static_cast<int32_t>(kept_.size()) ? kept_[static_cast<size_t>(k)] : -1;
}

std::vector<int32_t> TaskVocab::encode(const tokenizer::Gpt2Tokenizer& tok, std::string_view text) const {
  std::vector<int32_t> ids = (limited_ ? *limited_ : tok).encode(text);
  for (auto& id : ids) id = from_gpt2(id);
  return ids;
}

std::vector<int32_t> head_and_tail(const std::vector<int32_t>& ids, int max_len) {
  if (static_cast<int>(ids.size()) <= max_len) return ids;
  const int head = max_len / 4;
  std::vector<int32_t> out(ids.begin(), ids.begin() + head);
  out.insert(out.end(), ids.end() - (max_len - head), ids.end());
  return out;
}

AlignedSentence align_words(const tokenizer::Gpt2Tokenizer& tok, const TaskVocab& vocab,
                            const std::vector<std::string>& words, int max_len) {
  AlignedSentence a;
  a.first_token.assign(words.size(), -1);
  for (size_t w = 0; w < words.size(); ++w) {
    const std::vector<int32_t> pieces = vocab.encode(tok, w == 0 ? words[w] : " " + words[w]);
    if (pieces.empty()) continue;
    if (static_cast<int>(a.ids.size() + pieces.size()) > max_len) break;
    a.first_token[w] = static_cast<int>(a.ids.size());
    a.ids.insert(a.ids.end(), pieces.begin(), pieces.end());
  }
  return a;
}

}  // namespace ferry::tasks
