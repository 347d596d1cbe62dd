// tools/tasks/ner_scorer.h — entity-level precision, recall and F1 with conlleval's semantics.
//
// Entities are maximal chunks read from BIO tags as conlleval reads them: a chunk starts at B-t, or
// at I-t after O or after a chunk of another type (an "orphan" I starts a chunk); it ends before
// B-*, O, or a tag of another type. A predicted entity is correct only when the gold has an entity
// with the same type, start and end. P = correct/predicted, R = correct/gold, F1 their harmonic
// mean (0 when undefined), overall and per type.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace ferry::tasks {

struct Entity {
  std::string type;
  int begin = 0, end = 0;  // words [begin, end)
  bool operator==(const Entity&) const = default;
};

std::vector<Entity> bio_entities(const std::vector<std::string>& tags);

struct PrfCounts {
  long correct = 0, predicted = 0, gold = 0;
  double precision() const { return predicted ? double(correct) / predicted : 0.0; }
  double recall() const { return gold ? double(correct) / gold : 0.0; }
  double f1() const {
    const double p = precision(), r = recall();
    return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
  }
};

class NerScorer {
 public:
  // One sentence: gold and predicted tags, one per word.
  void add(const std::vector<std::string>& gold, const std::vector<std::string>& predicted);
  const PrfCounts& overall() const { return overall_; }
  const std::map<std::string, PrfCounts>& per_type() const { return per_type_; }
  long tokens() const { return tokens_; }
  long tokens_correct() const { return tokens_correct_; }

 private:
  PrfCounts overall_;
  std::map<std::string, PrfCounts> per_type_;
  long tokens_ = 0, tokens_correct_ = 0;
};

}  // namespace ferry::tasks
