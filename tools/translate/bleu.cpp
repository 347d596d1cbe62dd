// tools/translate/bleu.cpp
#include "tools/translate/bleu.h"

#include <cmath>
#include <cstdio>
#include <unordered_map>

#include "base/error.h"

namespace ferry::translate {

namespace {

// Python's str.replace: every non-overlapping occurrence, left to right.
std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out.append(to);
  }
  out.append(s, pos, std::string::npos);
  return out;
}

// Length in bytes of the whitespace code point that starts at s[i] (0: none), for the code points
// Python's str.isspace() accepts.
size_t space_at(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
  const unsigned c = b(0);
  if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return 1;
  if (c == 0xc2 && (b(1) == 0x85 || b(1) == 0xa0)) return 2;             // U+0085, U+00A0
  if (c == 0xe1 && b(1) == 0x9a && b(2) == 0x80) return 3;              // U+1680
  if (c == 0xe2 && b(1) == 0x80 && ((b(2) >= 0x80 && b(2) <= 0x8a) || b(2) == 0xa8 || b(2) == 0xa9 || b(2) == 0xaf))
    return 3;                                                            // U+2000–200A, 2028, 2029, 202F
  if (c == 0xe2 && b(1) == 0x81 && b(2) == 0x9f) return 3;              // U+205F
  if (c == 0xe3 && b(1) == 0x80 && b(2) == 0x80) return 3;              // U+3000
  return 0;
}

size_t codepoint_length(unsigned char c) { return c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1; }

std::string_view rstrip(std::string_view s) {
  size_t end = 0;  // just past the last non-space code point
  for (size_t i = 0; i < s.size();) {
    const size_t sp = space_at(s, i);
    if (sp) {
      i += sp;
    } else {
      i += codepoint_length(static_cast<unsigned char>(s[i]));
      end = std::min(i, s.size());
    }
  }
  return s.substr(0, end);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_period_or_comma(char c) { return c == '.' || c == ','; }

// The first 13a class: { | } ~ [ \ ] ^ _ ` space ! " # $ % & ( ) * + : ; < = > ? @ /
bool is_split_symbol(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= 0x7b && u <= 0x7e) || (u >= 0x5b && u <= 0x60) || (u >= 0x20 && u <= 0x26) ||
         (u >= 0x28 && u <= 0x2b) || (u >= 0x3a && u <= 0x40) || u == '/';
}

// re.sub of a two-character pattern (first, second) with a replacement that places spaces around
// the pair: a left-to-right scan; after a match the scan resumes behind it (matches never overlap).
// On UTF-8 bytes this equals Python's scan over code points, because the ASCII side of each
// pattern can never be a byte inside a multi-byte character.
template <typename First, typename Second>
std::string substitute_pairs(const std::string& s, First first, Second second, const char* before,
                             const char* between, const char* after) {
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  size_t i = 0;
  while (i < s.size()) {
    if (i + 1 < s.size() && first(s[i]) && second(s[i + 1])) {
      out += before;
      out += s[i];
      out += between;
      out += s[i + 1];
      out += after;
      i += 2;
    } else {
      out += s[i++];
    }
  }
  return out;
}

std::vector<std::string> split_whitespace(std::string_view s) {
  std::vector<std::string> tokens;
  std::string cur;
  for (size_t i = 0; i < s.size();) {
    const size_t sp = space_at(s, i);
    if (sp) {
      if (!cur.empty()) tokens.push_back(std::move(cur));
      cur.clear();
      i += sp;
    } else {
      cur += s[i++];
    }
  }
  if (!cur.empty()) tokens.push_back(std::move(cur));
  return tokens;
}

using NgramCounts = std::array<std::unordered_map<std::string, int64_t>, kBleuMaxOrder>;

NgramCounts count_ngrams(const std::vector<std::string>& tokens) {
  NgramCounts counts;
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::string key;
    for (int n = 1; n <= kBleuMaxOrder && i + n <= tokens.size(); ++n) {
      if (n > 1) key += ' ';  // tokens hold no spaces, so the joined key is unambiguous
      key += tokens[i + n - 1];
      ++counts[n - 1][key];
    }
  }
  return counts;
}

}  // namespace

std::vector<std::string> tokens_13a(std::string_view raw) {
  std::string line(rstrip(raw));
  line = replace_all(std::move(line), "<skipped>", "");
  line = replace_all(std::move(line), "-\n", "");
  line = replace_all(std::move(line), "\n", " ");
  line = replace_all(std::move(line), "&quot;", "\"");
  line = replace_all(std::move(line), "&amp;", "&");
  line = replace_all(std::move(line), "&lt;", "<");
  line = replace_all(std::move(line), "&gt;", ">");
  line = " " + line + " ";

  std::string spaced;
  spaced.reserve(line.size() * 2);
  for (char c : line) {
    if (is_split_symbol(c)) {
      spaced += ' ';
      spaced += c;
      spaced += ' ';
    } else {
      spaced += c;
    }
  }
  const auto not_digit = [](char c) { return !is_digit(c); };
  spaced = substitute_pairs(spaced, not_digit, is_period_or_comma, "", " ", " ");
  spaced = substitute_pairs(spaced, is_period_or_comma, not_digit, " ", " ", "");
  spaced = substitute_pairs(spaced, is_digit, [](char c) { return c == '-'; }, "", " ", " ");
  return split_whitespace(spaced);
}

std::string tokenize_13a(std::string_view line) {
  std::string out;
  for (const auto& t : tokens_13a(line)) {
    if (!out.empty()) out += ' ';
    out += t;
  }
  return out;
}

BleuStats& BleuStats::operator+=(const BleuStats& o) {
  sys_len += o.sys_len;
  ref_len += o.ref_len;
  for (int n = 0; n < kBleuMaxOrder; ++n) {
    correct[n] += o.correct[n];
    total[n] += o.total[n];
  }
  return *this;
}

BleuStats segment_stats(std::string_view hypothesis, std::string_view reference) {
  const auto hyp = tokens_13a(hypothesis);
  const auto ref = tokens_13a(reference);
  const NgramCounts h = count_ngrams(hyp), r = count_ngrams(ref);
  BleuStats s;
  s.sys_len = static_cast<int64_t>(hyp.size());
  s.ref_len = static_cast<int64_t>(ref.size());
  for (int n = 0; n < kBleuMaxOrder; ++n) {
    for (const auto& [gram, count] : h[n]) {
      s.total[n] += count;
      const auto it = r[n].find(gram);
      if (it != r[n].end()) s.correct[n] += std::min(count, it->second);
    }
  }
  return s;
}

BleuScore bleu_from_stats(const BleuStats& s) {
  BleuScore b;
  b.stats = s;
  if (s.sys_len < s.ref_len)
    b.bp = s.sys_len > 0 ? std::exp(1.0 - double(s.ref_len) / double(s.sys_len)) : 0.0;
  else
    b.bp = 1.0;
  bool any = false;
  for (int64_t c : s.correct) any = any || c != 0;
  if (!any) return b;
  double smooth = 1.0;
  for (int n = 0; n < kBleuMaxOrder; ++n) {
    if (s.total[n] == 0) break;
    if (s.correct[n] == 0) {
      smooth *= 2;
      b.precisions[n] = 100.0 / (smooth * double(s.total[n]));
    } else {
      b.precisions[n] = 100.0 * double(s.correct[n]) / double(s.total[n]);
    }
  }
  double log_sum = 0;
  for (double p : b.precisions) log_sum += p == 0.0 ? -9999999999.0 : std::log(p);  // sacreBLEU's my_log
  b.score = b.bp * std::exp(log_sum / kBleuMaxOrder);
  return b;
}

BleuScore corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references) {
  if (hypotheses.size() != references.size())
    user_error("BLEU: ", hypotheses.size(), " hypotheses but ", references.size(), " references");
  BleuStats total;
  for (size_t i = 0; i < hypotheses.size(); ++i) total += segment_stats(hypotheses[i], references[i]);
  return bleu_from_stats(total);
}

std::string BleuScore::summary() const {
  char buf[256];
  const double ratio = stats.ref_len ? double(stats.sys_len) / double(stats.ref_len) : 0.0;
  std::snprintf(buf, sizeof buf, "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %lld ref_len = %lld)",
                score, precisions[0], precisions[1], precisions[2], precisions[3], bp, ratio,
                static_cast<long long>(stats.sys_len), static_cast<long long>(stats.ref_len));
  return buf;
}

}  // namespace ferry::translate
