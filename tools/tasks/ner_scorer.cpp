// tools/tasks/ner_scorer.cpp
#include "tools/tasks/ner_scorer.h"

#include <set>
#include <tuple>

#include "base/error.h"

namespace ferry::tasks {

std::vector<Entity> bio_entities(const std::vector<std::string>& tags) {
  std::vector<Entity> out;
  bool open = false;
  Entity cur;
  for (int i = 0; i <= static_cast<int>(tags.size()); ++i) {
    const std::string tag = i < static_cast<int>(tags.size()) ? tags[i] : "O";
    const char prefix = tag.empty() ? 'O' : tag[0];
    const std::string type = tag.size() > 2 ? tag.substr(2) : "";
    if (open && (prefix == 'B' || prefix == 'O' || type != cur.type)) {
      cur.end = i;
      out.push_back(cur);
      open = false;
    }
    if (!open && (prefix == 'B' || prefix == 'I')) {
      cur = {type, i, i};
      open = true;
    }
  }
  return out;
}

void NerScorer::add(const std::vector<std::string>& gold, const std::vector<std::string>& predicted) {
  FERRY_CHECK(gold.size() == predicted.size(), "NER scorer: ", gold.size(), " gold tags, ", predicted.size(),
              " predicted");
  tokens_ += static_cast<long>(gold.size());
  for (size_t i = 0; i < gold.size(); ++i) tokens_correct_ += gold[i] == predicted[i];
  const auto g = bio_entities(gold);
  const auto p = bio_entities(predicted);
  std::set<std::tuple<std::string, int, int>> gold_set;
  for (const auto& e : g) {
    gold_set.emplace(e.type, e.begin, e.end);
    ++overall_.gold;
    ++per_type_[e.type].gold;
  }
  for (const auto& e : p) {
    ++overall_.predicted;
    ++per_type_[e.type].predicted;
    if (gold_set.count({e.type, e.begin, e.end})) {
      ++overall_.correct;
      ++per_type_[e.type].correct;
    }
  }
}

}  // namespace ferry::tasks
