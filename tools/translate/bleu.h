// tools/translate/bleu.h — corpus BLEU exactly as sacreBLEU computes it by default
// (BLEU(), corpus_score: 13a tokenization, mixed case, n-grams 1..4, one reference per segment,
// smooth_method 'exp', no effective order), so that ferry's numbers compare with published ones.
//
// 13a tokenization (sacrebleu/tokenizers/tokenizer_13a.py + tokenizer_re.py, after mteval-v13a.pl):
//   1. drop "<skipped>", join "-\n" line breaks, other "\n" → " ", unescape &quot; &amp; &lt; &gt;
//   2. pad the line with one space on each side
//   3. four regex substitutions, each a left-to-right scan of non-overlapping matches:
//        ([\{-\~\[-\` -\&\(-\+\:-\@\/])  → " \1 "   split off ASCII punctuation and symbols except
//                                                   ' - . , (the class also holds the space itself)
//        ([^0-9])([\.,])                 → "\1 \2 " a period or comma not preceded by a digit
//        ([\.,])([^0-9])                 → " \1 \2" a period or comma not followed by a digit
//        ([0-9])(-)                      → "\1 \2 " a dash after a digit
//   4. split on whitespace (Python's str.split: Unicode whitespace), join with single spaces.
// Each segment is right-stripped before tokenization (BLEU._preprocess_segment).
//
// Scoring (BLEU.compute_bleu): counts clipped by the reference's n-gram counts, summed over the
// corpus; BP = exp(1 − r/c) when c < r (0 when c = 0), else 1; no match at all → 0; an order with no
// hypothesis n-grams stops the loop (its precision stays 0, which makes the score 0); an order with
// n-grams but no match gets precision 100 / (2^k · total) for the k-th such order ('exp', the NIST
// smoothing of mteval-v13a.pl); score = BP · exp(Σ log p_n / 4) with p_n in percent.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::translate {

inline constexpr int kBleuMaxOrder = 4;

// The 13a-tokenized segment: tokens joined by single spaces.
std::string tokenize_13a(std::string_view line);
std::vector<std::string> tokens_13a(std::string_view line);

// Sufficient statistics of one or many segments (they add up over a corpus).
struct BleuStats {
  int64_t sys_len = 0, ref_len = 0;
  std::array<int64_t, kBleuMaxOrder> correct{}, total{};
  BleuStats& operator+=(const BleuStats& o);
};

// One segment, raw (untokenized) hypothesis against its raw reference.
BleuStats segment_stats(std::string_view hypothesis, std::string_view reference);

struct BleuScore {
  double score = 0;  // 0..100
  double bp = 0;
  std::array<double, kBleuMaxOrder> precisions{};  // percent
  BleuStats stats;
  // sacreBLEU's line: "BLEU = 12.34 45.6/20.1/10.0/5.2 (BP = 1.000 ratio = 1.010 hyp_len = … ref_len = …)"
  std::string summary() const;
};

BleuScore bleu_from_stats(const BleuStats& s);
// hypotheses[i] is scored against references[i]; sizes must match (UserError otherwise).
BleuScore corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references);

}  // namespace ferry::translate
