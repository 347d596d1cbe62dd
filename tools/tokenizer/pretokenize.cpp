// tools/tokenizer/pretokenize.cpp — GPT-2's split pattern, compiled by hand into one forward scan.
#include "tools/tokenizer/pretokenize.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>

namespace ferry::tokenizer {

namespace {

struct CodePointRange {
  char32_t first;
  char32_t last;
  CodePointClass cls;
};

constexpr CodePointRange kRanges[] = {
#include "tools/tokenizer/unicode_tables.inc"
};

// Nearly all text lives in the Basic Multilingual Plane: one byte per code point there (64 KiB,
// built once) makes classification a load; the astral planes fall back to binary search.
const std::array<CodePointClass, 0x10000>& bmp_classes() {
  static const auto table = [] {
    auto t = std::make_unique<std::array<CodePointClass, 0x10000>>();
    t->fill(CodePointClass::kOther);
    for (const auto& r : kRanges) {
      if (r.first > 0xFFFF) break;
      for (char32_t cp = r.first; cp <= std::min<char32_t>(r.last, 0xFFFF); ++cp) (*t)[cp] = r.cls;
    }
    return t;
  }();
  return *table;
}

struct Char {
  CodePointClass cls;
  unsigned len;  // bytes, 1..4
};

// Decodes the character at text[pos] (pos < size). Overlong forms, surrogates, code points past
// U+10FFFF and truncated sequences are invalid: their first byte becomes a one-byte kOther character,
// which is what makes every byte string round-trip.
inline Char char_at(std::string_view text, size_t pos) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data()) + pos;
  const size_t left = text.size() - pos;
  const unsigned b0 = s[0];
  if (b0 < 0x80) return {bmp_classes()[b0], 1};
  auto cont = [&](size_t i) { return i < left && (s[i] & 0xC0) == 0x80; };
  char32_t cp;
  unsigned len;
  if (b0 >= 0xC2 && b0 <= 0xDF && cont(1)) {
    cp = ((b0 & 0x1F) << 6) | (s[1] & 0x3F);
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF && cont(1) && cont(2)) {
    cp = ((b0 & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    len = 3;
    if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return {CodePointClass::kOther, 1};
  } else if (b0 >= 0xF0 && b0 <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    cp = ((b0 & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    len = 4;
    if (cp < 0x10000 || cp > 0x10FFFF) return {CodePointClass::kOther, 1};
  } else {
    return {CodePointClass::kOther, 1};
  }
  return {classify(cp), len};
}

}  // namespace

CodePointClass classify(char32_t cp) {
  if (cp <= 0xFFFF) return bmp_classes()[cp];
  const auto* end = std::end(kRanges);
  const auto* it = std::upper_bound(std::begin(kRanges), end, cp,
                                    [](char32_t c, const CodePointRange& r) { return c < r.first; });
  if (it == std::begin(kRanges)) return CodePointClass::kOther;
  --it;
  return cp <= it->last ? it->cls : CodePointClass::kOther;
}

bool Gpt2PieceSplitter::next(std::string_view& piece) {
  const size_t n = text_.size();
  const size_t start = pos_;
  if (start >= n) return false;
  auto emit = [&](size_t end) {
    piece = text_.substr(start, end - start);
    pos_ = end;
    return true;
  };

  // 's|'t|'re|'ve|'m|'ll|'d — case-sensitive, ASCII apostrophe only, as in GPT-2.
  if (text_[start] == '\'' && start + 1 < n) {
    const char c1 = text_[start + 1];
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return emit(start + 2);
    if (start + 2 < n) {
      const char c2 = text_[start + 2];
      if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return emit(start + 3);
    }
  }

  // ` ?X+` for X = letters, numbers, or neither-nor-space: an optional leading ASCII space, then a
  // maximal run of one class.
  size_t pos = start;
  Char c = char_at(text_, pos);
  if (text_[pos] == ' ' && pos + 1 < n) {
    const Char after = char_at(text_, pos + 1);
    if (after.cls != CodePointClass::kSpace) {
      pos += 1;
      c = after;
    }
  }
  if (c.cls != CodePointClass::kSpace) {
    const CodePointClass run = c.cls;
    pos += c.len;
    while (pos < n) {
      const Char d = char_at(text_, pos);
      if (d.cls != run) break;
      pos += d.len;
    }
    return emit(pos);
  }

  // \s+(?!\S)|\s+ — a whitespace run; when a non-space follows it, the run's last character is left
  // for that next piece (so " word" keeps its space), unless the run is a single character.
  size_t last_char_start = pos;
  while (pos < n) {
    const Char d = char_at(text_, pos);
    if (d.cls != CodePointClass::kSpace) break;
    last_char_start = pos;
    pos += d.len;
  }
  if (pos < n && last_char_start > start) return emit(last_char_start);
  return emit(pos);
}

}  // namespace ferry::tokenizer
