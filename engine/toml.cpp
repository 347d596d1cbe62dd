// engine/toml.cpp
#include "engine/toml.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

namespace ferry::detail {

void toml_check_failed(const char* condition) {
  // No position is known here; the callers name the file.
  const std::string what = std::string("malformed TOML (the parser's check '") + condition + "' failed)";
  throw toml::parse_error(what.c_str(), toml::source_region{});  // copies the text
}

}  // namespace ferry::detail

namespace ferry {

namespace {

[[noreturn]] void refuse(const char* what, uint32_t line, uint32_t column, const std::string& source) {
  throw toml::parse_error(what, toml::source_position{line, column}, std::make_shared<const std::string>(source));
}

// One UTF-8 sequence starting at t[i]: its code point and length, or length 0 when malformed
// (overlong, surrogate, beyond U+10FFFF, truncated).
std::pair<uint32_t, size_t> decode_utf8(std::string_view t, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(t[k]); };
  const unsigned char c = b(i);
  const size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
  if (n == 0 || c >= 0xf8 || i + n > t.size()) return {0, 0};
  uint32_t cp = c & (0x7fu >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return {0, 0};
    cp = (cp << 6) | (b(i + k) & 0x3fu);
  }
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return {0, 0};
  return {cp, n};
}

std::string unicode_escape(uint32_t cp) {
  char buf[12];
  if (cp <= 0xffff) std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned>(cp));
  else std::snprintf(buf, sizeof buf, "\\U%08X", static_cast<unsigned>(cp));
  return buf;
}

// The same document in ASCII only, so that toml++ never meets a non-ASCII character: its whitespace
// test is undefined behaviour for many of them, and on malformed input its lexer looks for
// whitespace inside what TOML would call a string (`_=-"Θ`, found by run_config_fuzz). Walks the
// text as TOML's lexer would, only far enough to know whether each byte lies in a comment, a string
// (basic, literal, multi-line) or neither: non-ASCII in a comment becomes '?'; in a basic string,
// a \u escape of the same code point; a literal string holding non-ASCII becomes the basic string
// with the same value. Non-ASCII anywhere else, or malformed UTF-8, is refused with its position.
std::string ascii_only(std::string_view t, const std::string& source) {
  enum class In { Code, Comment, Basic, Literal, MultiBasic, MultiLiteral };
  In in = In::Code;
  uint32_t line = 1, column = 1;
  std::string out;
  out.reserve(t.size());
  auto is_ascii = [](char ch) { return static_cast<unsigned char>(ch) < 0x80; };
  // Copies the escape that starts at t[i] (a backslash) and the character after it.
  auto copy_escape = [&](size_t& i) {
    out += '\\';
    ++i, ++column;
    if (i >= t.size()) return;
    if (!is_ascii(t[i])) refuse("a backslash before a non-ASCII character (not an escape)", line, column, source);
    if (t[i] == '\n') ++line, column = 0;
    out += t[i];
    ++column;
  };
  for (size_t i = 0; i < t.size(); ++i) {
    const auto c = static_cast<unsigned char>(t[i]);
    auto starts = [&](std::string_view s) { return t.substr(i, s.size()) == s; };
    if (c == '\n') {
      ++line;
      column = 1;
      if (in == In::Comment) in = In::Code;
      out += '\n';
      continue;
    }
    if (c >= 0x80) {
      if (in == In::Code) refuse("a non-ASCII character outside a string or comment", line, column, source);
      const auto [cp, n] = decode_utf8(t, i);
      if (n == 0) refuse("malformed UTF-8", line, column, source);
      out += in == In::Comment ? std::string("?") : unicode_escape(cp);
      i += n - 1;
      ++column;
      continue;
    }
    switch (in) {
      case In::Code:
        if (c == '#') {
          in = In::Comment;
        } else if (starts("\"\"\"")) {
          in = In::MultiBasic, out += "\"\"", i += 2, column += 2;
        } else if (c == '"') {
          in = In::Basic;
        } else if (c == '\'') {
          const bool multi = starts("'''");
          const size_t open = multi ? 3 : 1;
          // Where the literal's content ends and whether it closes at all.
          size_t content_end = t.size(), end = t.size();
          for (size_t j = i + open; j < t.size(); ++j) {
            if (!multi && t[j] == '\'') {
              content_end = j, end = j + 1;
              break;
            }
            if (multi && t.substr(j, 3) == "'''") {
              while (j + 3 < t.size() && t[j + 3] == '\'') ++j;  // up to two quotes end the content
              content_end = j, end = j + 3;
              break;
            }
          }
          const std::string_view body = t.substr(i + open, content_end - (i + open));
          if (end == t.size() && content_end == t.size()) {
            // Unterminated (an error either way): the walk goes on as a literal.
          } else if (std::all_of(body.begin(), body.end(), is_ascii)) {
            // Nothing to rewrite: copied through as a literal, skipped as a whole.
            out.append(t.substr(i, end - i));
            for (const char ch : t.substr(i, end - i)) ch == '\n' ? (++line, column = 1) : ++column;
            i = end - 1;
            continue;
          } else {
            // The same value as a basic string: backslashes and quotes escaped, non-ASCII as \u.
            const char* quote = multi ? "\"\"\"" : "\"";
            out += quote;
            column += static_cast<uint32_t>(open);
            for (size_t k = i + open; k < content_end; ++k) {
              const auto ch = static_cast<unsigned char>(t[k]);
              if (ch >= 0x80) {
                const auto [cp, n] = decode_utf8(t, k);
                if (n == 0) refuse("malformed UTF-8", line, column, source);
                out += unicode_escape(cp);
                k += n - 1;
              } else {
                if (ch == '\\' || ch == '"') out += '\\';
                out += static_cast<char>(ch);
              }
              ch == '\n' ? (++line, column = 1) : ++column;
            }
            out += quote;
            column += static_cast<uint32_t>(end - content_end);
            i = end - 1;
            continue;
          }
          in = multi ? In::MultiLiteral : In::Literal;
          if (multi) out += "''", i += 2, column += 2;
        }
        break;
      case In::Comment:
        break;
      case In::Basic:
        if (c == '\\') {
          copy_escape(i);
          continue;
        }
        if (c == '"') in = In::Code;
        break;
      case In::Literal:
        if (c == '\'') in = In::Code;
        break;
      case In::MultiBasic:
        if (c == '\\') {
          // A backslash, then only blanks up to the line's end, is a line ending (the walk goes on);
          // otherwise an escape, whose next character is not a delimiter.
          size_t j = i + 1;
          while (j < t.size() && (t[j] == ' ' || t[j] == '\t' || t[j] == '\r')) ++j;
          if (!(j < t.size() && t[j] == '\n')) {
            copy_escape(i);
            continue;
          }
        } else if (starts("\"\"\"")) {
          while (i + 3 < t.size() && t[i + 3] == '"') out += '"', ++i, ++column;
          in = In::Code, out += "\"\"", i += 2, column += 2;
        }
        break;
      case In::MultiLiteral:
        if (starts("'''")) {
          while (i + 3 < t.size() && t[i + 3] == '\'') out += '\'', ++i, ++column;
          in = In::Code, out += "''", i += 2, column += 2;
        }
        break;
    }
    out += static_cast<char>(c);
    ++column;
  }
  return out;
}

}  // namespace

toml::table parse_toml(std::string_view text, const std::string& source) {
  const std::string ascii = ascii_only(text, source);
  return toml::parse(ascii, source);
}

}  // namespace ferry
