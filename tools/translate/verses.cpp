// tools/translate/verses.cpp
#include "tools/translate/verses.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <random>
#include <set>

#include "base/error.h"

namespace ferry::translate {

namespace {

bool blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

void append_words(std::string& to, const std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t j = i;
    while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    if (j > i) {
      if (!to.empty()) to += ' ';
      to.append(text, i, j - i);
    }
    i = j;
  }
}

// diatheke ends its output with the module's name in parentheses: "(engWEB2015eb)".
bool module_trailer(const std::string& line) {
  if (line.size() < 3 || line.front() != '(' || line.back() != ')') return false;
  return std::all_of(line.begin() + 1, line.end() - 1, [](unsigned char c) { return std::isalnum(c); });
}

// "<Book> <c>:<v>: rest" after leading whitespace → ref and the rest; false when the line is no key.
bool parse_key(const std::string& line, VerseRef& ref, std::string& rest) {
  size_t start = 0;
  while (start < line.size() && std::isspace(static_cast<unsigned char>(line[start]))) ++start;
  const size_t colon_space = line.find(": ", start);
  if (colon_space == std::string::npos) return false;
  const size_t sp = line.rfind(' ', colon_space);
  if (sp == std::string::npos || sp <= start) return false;
  const std::string name = line.substr(start, sp - start);
  const std::string cv = line.substr(sp + 1, colon_space - sp - 1);
  const size_t mid = cv.find(':');
  if (mid == std::string::npos || mid == 0 || mid + 1 == cv.size()) return false;
  for (size_t k = 0; k < cv.size(); ++k)
    if (k != mid && !std::isdigit(static_cast<unsigned char>(cv[k]))) return false;
  // No chapter or verse runs past 176 (Psalm 119): longer digit runs are text, not a key (and would
  // overflow stoi).
  if (mid > 6 || cv.size() - mid - 1 > 6) return false;
  const int book = book_index(name);
  if (book < 0) return false;
  ref = {book, std::stoi(cv.substr(0, mid)), std::stoi(cv.substr(mid + 1))};
  rest = line.substr(colon_space + 2);
  return true;
}

}  // namespace

std::string clean_verse_text(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    // Markup: Strong's numbers (<H6240>, <G0846>) and stray OSIS tags (<title …>, <lg …/>).
    if (text[i] == '<') {
      const size_t close = text.find('>', i);
      if (close != std::string::npos && close - i < 256) {
        out += ' ';
        i = close + 1;
        continue;
      }
    }
    // Footnotes as diatheke prints them with -o f: "[1:1 note text]" (brackets may nest), or "[]".
    if (text[i] == '[') {
      size_t j = i + 1;
      while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
      const bool ref = j > i + 1 && j < text.size() && text[j] == ':';
      if (ref || (i + 1 < text.size() && text[i + 1] == ']')) {
        int depth = 0;
        size_t k = i;
        for (; k < text.size(); ++k) {
          if (text[k] == '[') ++depth;
          if (text[k] == ']' && --depth == 0) break;
        }
        if (k < text.size()) {
          out += ' ';
          i = k + 1;
          continue;
        }
      }
    }
    out += text[i++];
  }
  std::string collapsed;
  append_words(collapsed, out);
  // A footnote between a word and its punctuation leaves "word ," behind.
  std::string fixed;
  for (size_t i = 0; i < collapsed.size(); ++i) {
    if (collapsed[i] == ' ' && i + 1 < collapsed.size() && std::strchr(",.;:!?", collapsed[i + 1]) &&
        (i + 2 == collapsed.size() || collapsed[i + 2] == ' '))
      continue;
    fixed += collapsed[i];
  }
  return fixed;
}

const std::vector<std::string>& bible_books() {
  static const std::vector<std::string> books = {
      "Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy", "Joshua", "Judges", "Ruth", "I Samuel",
      "II Samuel", "I Kings", "II Kings", "I Chronicles", "II Chronicles", "Ezra", "Nehemiah", "Esther", "Job",
      "Psalms", "Proverbs", "Ecclesiastes", "Song of Solomon", "Isaiah", "Jeremiah", "Lamentations", "Ezekiel",
      "Daniel", "Hosea", "Joel", "Amos", "Obadiah", "Jonah", "Micah", "Nahum", "Habakkuk", "Zephaniah", "Haggai",
      "Zechariah", "Malachi", "Matthew", "Mark", "Luke", "John", "Acts", "Romans", "I Corinthians",
      "II Corinthians", "Galatians", "Ephesians", "Philippians", "Colossians", "I Thessalonians",
      "II Thessalonians", "I Timothy", "II Timothy", "Titus", "Philemon", "Hebrews", "James", "I Peter", "II Peter",
      "I John", "II John", "III John", "Jude", "Revelation of John"};
  return books;
}

int book_index(const std::string& name) {
  const auto& b = bible_books();
  const auto it = std::find(b.begin(), b.end(), name);
  return it == b.end() ? -1 : static_cast<int>(it - b.begin());
}

std::string VerseRef::str() const {
  const std::string name = book >= 0 && book < static_cast<int>(bible_books().size()) ? bible_books()[book] : "?";
  return name + " " + std::to_string(chapter) + ":" + std::to_string(verse);
}

std::map<VerseRef, std::string> parse_diatheke_plain(std::istream& in) {
  std::map<VerseRef, std::string> verses;
  std::string line, rest;
  std::string* current = nullptr;  // the verse that continuation lines extend; null after a blank line
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    VerseRef ref;
    if (parse_key(line, ref, rest)) {
      current = &verses[ref];
      current->clear();  // a repeated key replaces, never concatenates
      append_words(*current, rest);
    } else if (blank(line) || module_trailer(line)) {
      current = nullptr;
    } else if (current) {
      append_words(*current, line);
    }
  }
  for (auto& [ref, text] : verses) text = clean_verse_text(text);
  return verses;
}

std::vector<VersePair> join_verses(const std::map<VerseRef, std::string>& en,
                                   const std::map<VerseRef, std::string>& es) {
  std::vector<VersePair> pairs;
  for (const auto& [ref, text] : en) {
    const auto it = es.find(ref);
    if (it == es.end() || text.empty() || it->second.empty()) continue;
    pairs.push_back({ref, text, it->second});
  }
  return pairs;
}

BookSplit split_by_book(const std::vector<VersePair>& pairs, uint64_t seed, double test_fraction,
                        double dev_fraction) {
  if (test_fraction < 0 || dev_fraction < 0 || test_fraction + dev_fraction >= 1)
    user_error("translate split: test and dev fractions must be ≥ 0 and sum below 1");
  std::map<int, size_t> count;
  for (const auto& p : pairs) ++count[p.ref.book];
  std::vector<int> books;
  for (const auto& [b, n] : count) books.push_back(b);
  std::mt19937_64 rng(seed);
  for (size_t i = books.size(); i > 1; --i) std::swap(books[i - 1], books[rng() % i]);
  BookSplit s;
  const double total = static_cast<double>(pairs.size());
  size_t in_test = 0, in_dev = 0;
  for (int b : books) {
    if (in_test < test_fraction * total) {
      s.test.push_back(b);
      in_test += count[b];
    } else if (in_dev < dev_fraction * total) {
      s.dev.push_back(b);
      in_dev += count[b];
    } else {
      s.train.push_back(b);
    }
  }
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.dev.begin(), s.dev.end());
  std::sort(s.test.begin(), s.test.end());
  return s;
}

}  // namespace ferry::translate
