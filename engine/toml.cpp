// engine/toml.cpp
#include "engine/toml.h"

#include <memory>
#include <string>

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

// Walks the text as TOML's lexer would, only far enough to know whether each byte lies in a
// comment, a string (basic, literal, multi-line) or neither.
void check_non_ascii(std::string_view t, const std::string& source) {
  enum class In { Code, Comment, Basic, Literal, MultiBasic, MultiLiteral };
  In in = In::Code;
  uint32_t line = 1, column = 1;
  bool trimming = false;  // after a line-ending backslash in a multi-line basic string
  for (size_t i = 0; i < t.size(); ++i) {
    const auto c = static_cast<unsigned char>(t[i]);
    auto starts = [&](std::string_view s) { return t.substr(i, s.size()) == s; };
    if (c == '\n') {
      ++line;
      column = 1;
      if (in == In::Comment) in = In::Code;
      continue;
    }
    ++column;
    if (c >= 0x80) {
      if (in == In::Code) refuse("a non-ASCII character outside a string or comment", line, column - 1, source);
      if (trimming)
        refuse("a non-ASCII character right after a line-ending backslash (move it after an ASCII one)", line,
               column - 1, source);
      continue;
    }
    switch (in) {
      case In::Code:
        if (c == '#') in = In::Comment;
        else if (starts("\"\"\"")) in = In::MultiBasic, i += 2, column += 2;
        else if (starts("'''")) in = In::MultiLiteral, i += 2, column += 2;
        else if (c == '"') in = In::Basic;
        else if (c == '\'') in = In::Literal;
        break;
      case In::Comment:
        break;
      case In::Basic:
        if (c == '\\') ++i, ++column;
        else if (c == '"') in = In::Code;
        break;
      case In::Literal:
        if (c == '\'') in = In::Code;
        break;
      case In::MultiBasic:
        if (trimming && c != ' ' && c != '\t' && c != '\r') trimming = false;
        if (c == '\\') {
          // A backslash, then only blanks up to the line's end: the next line's leading blanks go.
          size_t j = i + 1;
          while (j < t.size() && (t[j] == ' ' || t[j] == '\t' || t[j] == '\r')) ++j;
          if (j < t.size() && t[j] == '\n') trimming = true;
          else ++i, ++column;  // an escape: its next character is not a delimiter
        } else if (starts("\"\"\"")) {
          while (i + 3 < t.size() && t[i + 3] == '"') ++i, ++column;  // up to two quotes end the content
          in = In::Code, i += 2, column += 2;
        }
        break;
      case In::MultiLiteral:
        if (starts("'''")) {
          while (i + 3 < t.size() && t[i + 3] == '\'') ++i, ++column;
          in = In::Code, i += 2, column += 2;
        }
        break;
    }
  }
}

}  // namespace

toml::table parse_toml(std::string_view text, const std::string& source) {
  check_non_ascii(text, source);
  return toml::parse(text, source);
}

}  // namespace ferry
