// tests/finetune/tasks_test.cpp — task data and scoring: the conlleval-style scorer on hand-made
// cases, the CoNLL reader's TAB-only split, the IMDB split's contract with the pretraining pool,
// batches, and head-and-tail truncation.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "base/error.h"
#include "tools/data/imdb_pretrain.h"
#include "tools/tasks/batches.h"
#include "tools/tasks/conll.h"
#include "tools/tasks/imdb.h"
#include "tools/tasks/ner_scorer.h"
#include "tools/tasks/vocab.h"

namespace ferry::tasks {
namespace {

using Tags = std::vector<std::string>;

TEST(NerScorer, ExactMatchesCount) {
  NerScorer s;
  s.add({"B-PER", "I-PER", "O", "B-LOC"}, {"B-PER", "I-PER", "O", "B-LOC"});
  EXPECT_EQ(s.overall().correct, 2);
  EXPECT_DOUBLE_EQ(s.overall().f1(), 1.0);
}

TEST(NerScorer, PartialSpanIsWrong) {
  NerScorer s;
  s.add({"B-PER", "I-PER", "O"}, {"B-PER", "O", "O"});
  EXPECT_EQ(s.overall().correct, 0);
  EXPECT_EQ(s.overall().predicted, 1);
  EXPECT_EQ(s.overall().gold, 1);
  EXPECT_DOUBLE_EQ(s.overall().f1(), 0.0);
}

TEST(NerScorer, TypeMismatchIsWrongForBothTypes) {
  NerScorer s;
  s.add({"B-PER", "I-PER", "O", "B-LOC"}, {"B-ORG", "I-ORG", "O", "B-LOC"});
  EXPECT_EQ(s.overall().correct, 1);
  EXPECT_DOUBLE_EQ(s.overall().precision(), 0.5);
  EXPECT_DOUBLE_EQ(s.overall().recall(), 0.5);
  EXPECT_EQ(s.per_type().at("PER").gold, 1);
  EXPECT_EQ(s.per_type().at("PER").correct, 0);
  EXPECT_EQ(s.per_type().at("ORG").predicted, 1);
  EXPECT_DOUBLE_EQ(s.per_type().at("LOC").f1(), 1.0);
}

TEST(NerScorer, ConllevalChunkBoundaries) {
  // An orphan I- starts a chunk; a type change inside I- ends one; B- after B- makes two.
  EXPECT_EQ(bio_entities({"O", "I-PER", "I-PER", "O"}), (std::vector<Entity>{{"PER", 1, 3}}));
  EXPECT_EQ(bio_entities({"B-PER", "I-LOC", "I-LOC"}), (std::vector<Entity>{{"PER", 0, 1}, {"LOC", 1, 3}}));
  EXPECT_EQ(bio_entities({"B-PER", "B-PER"}), (std::vector<Entity>{{"PER", 0, 1}, {"PER", 1, 2}}));
  EXPECT_EQ(bio_entities({"I-PER"}), (std::vector<Entity>{{"PER", 0, 1}}));
  // Gold B-PER I-PER vs predicted orphan I-PER I-PER: the same chunk, so correct (as conlleval).
  NerScorer s;
  s.add({"B-PER", "I-PER"}, {"I-PER", "I-PER"});
  EXPECT_EQ(s.overall().correct, 1);
}

TEST(NerScorer, MicroAveragesOverSentences) {
  NerScorer s;
  s.add({"B-PER", "O"}, {"B-PER", "O"});              // 1 correct
  s.add({"O", "B-LOC"}, {"B-LOC", "O"});              // 1 wrong prediction, 1 missed
  s.add({"B-ORG", "I-ORG"}, {"B-ORG", "I-ORG"});      // 1 correct
  EXPECT_EQ(s.overall().correct, 2);
  EXPECT_EQ(s.overall().predicted, 3);
  EXPECT_EQ(s.overall().gold, 3);
  EXPECT_NEAR(s.overall().f1(), 2.0 / 3.0, 1e-12);
}

TEST(Conll, SplitsOnTabOnly) {
  const auto s = parse_conll("Hello\tO\n:) x\tO\n\tO\nParis\tB-LOC\n\nNext\tB-PER\n", "mem");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].words, (Tags{"Hello", ":) x", "", "Paris"}));
  EXPECT_EQ(s[0].tags, (Tags{"O", "O", "O", "B-LOC"}));
  EXPECT_THROW(parse_conll("word O\n", "mem"), UserError);
  EXPECT_THROW(parse_conll("word\tX-PER\n", "mem"), UserError);
  const TagSet t = tag_set_of(s);
  EXPECT_EQ(t.names, (Tags{"O", "B-LOC", "I-LOC", "B-PER", "I-PER"}));
}

std::vector<Review> synthetic_reviews() {
  std::vector<Review> r;
  for (int i = 0; i < 400; ++i) r.push_back({"review number " + std::to_string(i) + " text", i % 2});
  r.push_back({"review   number 3  text ", 1});  // a duplicate of #3 (whitespace differs), same label
  r.push_back({"review number 4 text", 1});       // #4 again with the other label: both dropped
  return r;
}

TEST(ImdbSplit, PoolGoesToTrainAndOnlyThere) {
  const auto reviews = synthetic_reviews();
  const ImdbSplit s = split_imdb(reviews, 7, 20);
  EXPECT_EQ(s.read, reviews.size());
  EXPECT_EQ(s.duplicates_dropped, 2u);
  EXPECT_EQ(s.conflicting_dropped, 1u);
  EXPECT_EQ(s.train.size() + s.dev.size() + s.test.size(), 399u);
  size_t pool = 0;
  for (const auto& r : s.train) EXPECT_TRUE(data::imdb_review_in_pretrain_pool(r.text)) << r.text;
  for (const auto& r : s.dev) EXPECT_FALSE(data::imdb_review_in_pretrain_pool(r.text));
  for (const auto& r : s.test) EXPECT_FALSE(data::imdb_review_in_pretrain_pool(r.text));
  for (const auto& r : reviews) pool += data::imdb_review_in_pretrain_pool(r.text);
  EXPECT_GT(s.train.size(), 150u);  // about half
  EXPECT_GT(s.test.size(), 120u);
  int dev_pos = 0;
  for (const auto& r : s.dev) dev_pos += r.label;
  EXPECT_EQ(s.dev.size(), 40u);
  EXPECT_EQ(dev_pos, 20);  // stratified
  // Same seed, same split; another seed, another dev slice.
  const ImdbSplit again = split_imdb(reviews, 7, 20);
  const ImdbSplit other = split_imdb(reviews, 8, 20);
  ASSERT_EQ(again.dev.size(), s.dev.size());
  bool same = true, differs = false;
  for (size_t i = 0; i < s.dev.size(); ++i) {
    same &= again.dev[i].text == s.dev[i].text;
    differs |= other.dev[i].text != s.dev[i].text;
  }
  EXPECT_TRUE(same);
  EXPECT_TRUE(differs);
}

TEST(ImdbSplit, StratifiedSubset) {
  const ImdbSplit s = split_imdb(synthetic_reviews(), 7, 20);
  const auto sub = stratified_subset(s.train, 20, 3);
  ASSERT_EQ(sub.size(), 20u);
  int pos = 0;
  std::set<std::string> texts;
  for (const auto& r : sub) {
    pos += r.label;
    texts.insert(r.text);
  }
  EXPECT_EQ(pos, 10);
  EXPECT_EQ(texts.size(), 20u);
  EXPECT_EQ(stratified_subset(s.train, 0, 3).size(), s.train.size());
}

TEST(Batches, PadsAndLabels) {
  Example a{{5, 6, 7}, 1, {}}, b{{9}, 0, {}};
  GraphInputs in{10, 11, 12};
  const Batch batch = make_batch(in, HeadKind::SequenceClassification, {&a, &b}, 3, 4, 0);
  ASSERT_EQ(batch.inputs.size(), 3u);
  EXPECT_EQ(batch.inputs[0].second, (std::vector<int32_t>{5, 6, 7, 0, 9, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(batch.inputs[1].second, (std::vector<int32_t>{3, 1, 1}));
  EXPECT_EQ(batch.inputs[2].second, (std::vector<int32_t>{1, 0, -1}));  // the filler row has no label
  Example t{{1, 2, 3}, -1, {4, -1, 2}};
  const Batch tb = make_batch(in, HeadKind::TokenClassification, {&t}, 1, 4, 0);
  EXPECT_EQ(tb.inputs[2].second, (std::vector<int32_t>{4, -1, 2, -1}));
}

TEST(Batches, LmWindowsAndMasking) {
  std::vector<int32_t> stream = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  const auto w = lm_windows(stream, 4);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].ids, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(w[0].token_labels, (std::vector<int32_t>{1, 2, 3, 4}));
  // Masking: about 15% chosen; labels hold the original there and −1 elsewhere.
  Example e;
  for (int i = 0; i < 20000; ++i) e.ids.push_back(3 + i % 100);
  const auto original = e.ids;
  std::mt19937_64 rng(1);
  mask_tokens(e, 2, 3, 103, rng);
  int chosen = 0, masked = 0;
  for (size_t t = 0; t < e.ids.size(); ++t) {
    if (e.token_labels[t] < 0) {
      EXPECT_EQ(e.ids[t], original[t]);
      continue;
    }
    ++chosen;
    EXPECT_EQ(e.token_labels[t], original[t]);
    masked += e.ids[t] == 2;
  }
  EXPECT_NEAR(chosen / 20000.0, 0.15, 0.01);
  EXPECT_NEAR(double(masked) / chosen, 0.8, 0.03);
}

TEST(Truncation, KeepsHeadAndTail) {
  std::vector<int32_t> ids(20);
  for (int i = 0; i < 20; ++i) ids[i] = i;
  EXPECT_EQ(head_and_tail(ids, 8), (std::vector<int32_t>{0, 1, 14, 15, 16, 17, 18, 19}));
  EXPECT_EQ(head_and_tail(ids, 30), ids);
}

TEST(Vocab, CompactMapsRarePiecesToUnk) {
  std::vector<int64_t> counts(tokenizer::Gpt2Tokenizer::kVocabSize, 0);
  counts[100] = 5;
  counts[7] = 9;
  counts[50256] = 50;  // the separator never takes a slot
  counts[3] = 1;
  const TaskVocab v = TaskVocab::compact_from_counts(counts, 5);
  EXPECT_EQ(v.size(), 5);
  EXPECT_EQ(v.from_gpt2(7), 3);
  EXPECT_EQ(v.from_gpt2(100), 4);
  EXPECT_EQ(v.from_gpt2(3), v.unk());
  EXPECT_EQ(v.from_gpt2(50256), v.separator());
  const TaskVocab back = TaskVocab::from_json(v.to_json());
  EXPECT_EQ(back.from_gpt2(100), 4);
  EXPECT_EQ(v.to_gpt2(4), 100);
  EXPECT_EQ(v.to_gpt2(v.unk()), -1);
  EXPECT_EQ(v.to_gpt2(5), -1);
}

// The bpe kind: GPT-2's first merges, so no text ever becomes <unk> — tweets and names included —
// and the model ids are the kept GPT-2 ids in order after the three reserved ones.
TEST(Vocab, BpeKindEncodesAnyTextWithoutUnk) {
  if (!std::filesystem::exists(tokenizer::Gpt2Tokenizer::default_dir() / "vocab.bpe"))
    GTEST_SKIP() << "GPT-2 vocabulary not fetched (scripts/fetch_assets.sh)";
  const auto tok = tokenizer::Gpt2Tokenizer::load(tokenizer::Gpt2Tokenizer::default_dir());
  const TaskVocab v = TaskVocab::bpe(4096);
  EXPECT_EQ(v.size(), 4096);
  const std::string text = "@paulwalk It 's the view from Empire State Building http://bit.ly/bgCyZ0 #photography \xF0\x9F\x98\x80";
  const auto ids = v.encode(tok, text);
  std::vector<int32_t> gpt2_ids;
  for (int32_t id : ids) {
    ASSERT_GE(id, 3);  // never <unk>, <mask> or the separator
    ASSERT_LT(id, 4096);
  }
  const auto limited = tok.with_merge_limit(4096 - 259);
  const auto expect = limited.encode(text);
  ASSERT_EQ(ids.size(), expect.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(ids[i], v.from_gpt2(expect[i]));
    EXPECT_EQ(v.to_gpt2(ids[i]), expect[i]);
  }
  EXPECT_EQ(limited.decode(expect), text);
  const TaskVocab back = TaskVocab::from_json(v.to_json());
  EXPECT_EQ(back.to_json(), v.to_json());
  EXPECT_EQ(back.encode(tok, text), ids);
  EXPECT_THROW(TaskVocab::bpe(100), UserError);
  EXPECT_THROW(TaskVocab::from_json({{"kind", "bpe"}, {"merges", -3}}), UserError);
}

}  // namespace
}  // namespace ferry::tasks
