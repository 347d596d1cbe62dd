// tools/translate/verses.h — English–Spanish verse pairs from two Bible texts as `diatheke -f plain`
// prints them, joined on the verse reference, and a seeded split by book.
//
// diatheke's plain output: each verse starts on a line "<Book> <chapter>:<verse>: <text>", sometimes
// indented (the key's leading whitespace is not part of it); poetry continues on the next lines; a
// blank line ends the verse, and the lines between it and the next key are section headings (the
// World English Bible repeats a psalm's title before each of its verses) or, at the end, the module
// name and a glossary — none of them verse text. Each book is read with its own diatheke call:
// over a whole-canon range diatheke repeats the last heading it saw before every later verse
// (11,559 times "A praise psalm by David."), without the blank line that marks it. Books outside the 66 of the Protestant canon (the
// WEB's deuterocanon) have no Spanish counterpart and fall out of the join.
#pragma once
#include <cstdint>
#include <istream>
#include <map>
#include <string>
#include <vector>

namespace ferry::translate {

// The 66 books in canonical order, spelled as diatheke prints them ("I Samuel", "Revelation of John").
const std::vector<std::string>& bible_books();
int book_index(const std::string& name);  // -1 when not a canonical book

struct VerseRef {
  int book = -1, chapter = 0, verse = 0;
  auto operator<=>(const VerseRef&) const = default;
  std::string str() const;  // "Genesis 1:1"
};

// Verse text by reference: continuation lines joined with single spaces, cleaned.
std::map<VerseRef, std::string> parse_diatheke_plain(std::istream& in);

// Markup out (<H1234> Strong's numbers, <tags>), footnotes out ("[1:1 …]" as `diatheke -o f`
// prints them, "[]"), whitespace collapsed, no space left before , . ; : ! ? where a footnote was.
// Footnotes are asked for and then dropped because without them diatheke glues the words around
// a note's anchor ("Godcreated").
std::string clean_verse_text(const std::string& text);

struct VersePair {
  VerseRef ref;
  std::string en, es;
};

// References present, with non-empty text, in both; canonical order.
std::vector<VersePair> join_verses(const std::map<VerseRef, std::string>& en,
                                   const std::map<VerseRef, std::string>& es);

// Whole books per split: books are shuffled with the seed; test takes books from the front until it
// holds at least test_fraction of the pairs, dev the next ones until dev_fraction; the rest train.
struct BookSplit {
  std::vector<int> train, dev, test;  // book indices, sorted
};
BookSplit split_by_book(const std::vector<VersePair>& pairs, uint64_t seed, double test_fraction,
                        double dev_fraction);

}  // namespace ferry::translate
