// kernels/emulator/translate.cpp — rewrites CUDA sources (kernels/cuda/*.cu, *.cuh,
// engine/cuda/engine_kernels.cu) into C++ that g++ compiles against the emulator (device.h).
// The kernels' statements are kept as written; only what nvcc alone understands changes:
//
//   kernel<<<grid, block, smem, stream>>>(args)  →  ::ferry::emu::launch_kernel("kernel",
//        __PRETTY_FUNCTION__, LaunchConfig(grid, block, smem, stream), [](auto... a) { kernel(a...); }, args)
//   asm volatile("op.x.y ..." : outs : ins)      →  ::ferry::emu::ptx::op_x_y("op.x.y ...", outs..., ins...)
//   __shared__ T name[N];                        →  T (&name)[N] = <the block's static shared slot>
//   extern __shared__ T name[];                  →  T* const name = <the block's dynamic shared memory>
//   __global__ ... kernel(...) {                 →  the same, plus a first statement that tells the
//                                                   emulator which kernel runs and its launch bounds
//   *reinterpret_cast<T*>(p)                     →  *::ferry::emu::aligned_cast<T*>(p) (checks T's alignment)
//   #include <cub/...>                           →  #include "kernels/emulator/cub.h"
//
// Line numbers are preserved (a `#line` directive names the original file), so compiler errors and
// the emulator's messages point into the real source. --mutations applies literal replacements first:
// the broken-variant tests build deliberately wrong kernels from the real source this way; a
// mutation that no longer applies is an error, so such a test cannot silently become vacuous.
//
// Usage: ferry_emu_translate --root SRC --out DIR [--mutations LIST] FILE...
//   LIST holds mutations, each four lines: "file: F", "occurrence: N", "from: TEXT", "to: TEXT"
//   (TEXT to the end of the line; a line starting with '#' is a comment).
//   (FILE relative to SRC; a .cu file is written as DIR/FILE.cpp, a header as DIR/FILE.)
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& what) {
  std::cerr << "ferry_emu_translate: " << what << "\n";
  std::exit(2);
}

struct Mutation {
  std::string file, from, to;
  int occurrence;
};

// Which characters are code (not comment, string or character literal); `comment` marks comments.
std::vector<bool> code_mask(const std::string& s, std::vector<bool>* comment = nullptr) {
  std::vector<bool> code(s.size(), true);
  if (comment) comment->assign(s.size(), false);
  size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, 2, "//") == 0) {
      while (i < s.size() && s[i] != '\n') {
        if (comment) (*comment)[i] = true;
        code[i++] = false;
      }
    } else if (s.compare(i, 2, "/*") == 0) {
      const size_t end = s.find("*/", i + 2);
      const size_t stop = end == std::string::npos ? s.size() : end + 2;
      while (i < stop) {
        if (comment) (*comment)[i] = true;
        code[i++] = false;
      }
    } else if (s[i] == 'R' && i + 1 < s.size() && s[i + 1] == '"' && (i == 0 || !(std::isalnum(s[i - 1]) || s[i - 1] == '_'))) {
      const size_t open = s.find('(', i + 2);
      const std::string delim = ")" + s.substr(i + 2, open - i - 2) + "\"";
      const size_t end = s.find(delim, open);
      const size_t stop = end == std::string::npos ? s.size() : end + delim.size();
      while (i < stop) code[i++] = false;
    } else if (s[i] == '"' || s[i] == '\'') {
      const char q = s[i];
      // A digit separator (1'000) is not a character literal.
      if (q == '\'' && i > 0 && std::isalnum(static_cast<unsigned char>(s[i - 1]))) {
        ++i;
        continue;
      }
      code[i++] = false;
      while (i < s.size() && s[i] != q) {
        if (s[i] == '\\') code[i++] = false;
        if (i < s.size()) code[i++] = false;
      }
      if (i < s.size()) code[i++] = false;
    } else {
      ++i;
    }
  }
  return code;
}

bool ident(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

struct Source {
  std::string path, text;
  std::vector<bool> code, comment;
  void remask() { code = code_mask(text, &comment); }

  // Next occurrence of `token` in code, as a whole word when it is an identifier.
  size_t find(const std::string& token, size_t from) const {
    for (size_t p = text.find(token, from); p != std::string::npos; p = text.find(token, p + 1)) {
      if (!code[p]) continue;
      if (ident(token.front()) && p > 0 && ident(text[p - 1])) continue;
      if (ident(token.back()) && p + token.size() < text.size() && ident(text[p + token.size()])) continue;
      return p;
    }
    return std::string::npos;
  }
  size_t skip_ws(size_t p) const {
    while (p < text.size() && (std::isspace(static_cast<unsigned char>(text[p])) || comment[p])) ++p;
    return p;
  }
  // Index of the last non-space code character before p (npos if none).
  size_t skip_ws_back(size_t p) const {
    while (p > 0) {
      --p;
      if (!comment[p] && !std::isspace(static_cast<unsigned char>(text[p]))) return p;
    }
    return std::string::npos;
  }
  // The bracket closing the one at `open` ((, [, {), counting all three kinds.
  size_t close(size_t open) const {
    int depth = 0;
    for (size_t p = open; p < text.size(); ++p) {
      if (!code[p]) continue;
      const char c = text[p];
      if (c == '(' || c == '[' || c == '{') ++depth;
      if (c == ')' || c == ']' || c == '}') {
        if (--depth == 0) return p;
      }
    }
    die(path + ": unbalanced bracket at line " + std::to_string(line_of(open)));
  }
  int line_of(size_t p) const { return 1 + int(std::count(text.begin(), text.begin() + long(p), '\n')); }
  std::string ident_at(size_t p) const {
    size_t e = p;
    while (e < text.size() && ident(text[e])) ++e;
    return text.substr(p, e - p);
  }
};

struct Edit {
  size_t begin, end;
  std::string text;
};

// Replaces [begin, end) by `text`, padded with the newlines it removed so that lines keep their numbers.
void apply(Source& s, std::vector<Edit> edits) {
  std::sort(edits.begin(), edits.end(), [](const Edit& a, const Edit& b) { return a.begin > b.begin; });
  for (Edit& e : edits) {
    const auto removed = std::count(s.text.begin() + long(e.begin), s.text.begin() + long(e.end), '\n');
    const auto added = std::count(e.text.begin(), e.text.end(), '\n');
    if (added > removed) die(s.path + ": an edit would add lines");
    e.text.append(size_t(removed - added), '\n');
    s.text.replace(e.begin, e.end - e.begin, e.text);
  }
  s.remask();
}

std::string trim(const std::string& x) {
  size_t b = 0, e = x.size();
  while (b < e && std::isspace(static_cast<unsigned char>(x[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(x[e - 1]))) --e;
  return x.substr(b, e - b);
}

// Top-level pieces of s[begin, end) split at `sep` (',' or ':'; "::" is never a separator).
std::vector<std::pair<size_t, size_t>> split(const Source& s, size_t begin, size_t end, char sep) {
  std::vector<std::pair<size_t, size_t>> parts;
  int depth = 0;
  size_t start = begin;
  for (size_t p = begin; p < end; ++p) {
    if (!s.code[p]) continue;
    const char c = s.text[p];
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (depth == 0 && c == sep) {
      if (sep == ':' && ((p + 1 < end && s.text[p + 1] == ':') || (p > begin && s.text[p - 1] == ':'))) continue;
      parts.push_back({start, p});
      start = p + 1;
    }
  }
  parts.push_back({start, end});
  return parts;
}

// ---- passes -------------------------------------------------------------------------------------

void includes(Source& s) {
  std::vector<Edit> edits;
  for (size_t p = s.find("#include", 0); p != std::string::npos; p = s.find("#include", p + 1)) {
    const size_t eol = s.text.find('\n', p);
    const std::string line = s.text.substr(p, eol - p);
    if (line.find("<cub/") != std::string::npos) edits.push_back({p, eol, "#include \"kernels/emulator/cub.h\""});
  }
  apply(s, edits);
}

const char* const kKnownPtx[] = {
    "mma_sync_aligned_m16n8k16_row_col_f32_bf16_bf16_f32", "ldmatrix_sync_aligned_m8n8_x4_shared_b16",
    "ldmatrix_sync_aligned_m8n8_x4_trans_shared_b16",      "cp_async_cg_shared_global",
    "cp_async_ca_shared_global",                           "cp_async_commit_group",
    "cp_async_wait_group",                                 "cp_async_wait_all"};

void asm_statements(Source& s) {
  std::vector<Edit> edits;
  for (size_t p = s.find("asm", 0); p != std::string::npos; p = s.find("asm", p + 1)) {
    size_t q = s.skip_ws(p + 3);
    for (const char* kw : {"volatile", "__volatile__"})
      if (s.ident_at(q) == kw) q = s.skip_ws(q + std::string(kw).size());
    if (s.text[q] != '(') continue;
    const size_t close = s.close(q);
    // The template: adjacent string literals; then outputs, inputs and clobbers, each after a ':'
    // (adjacent colons included: "::" means no outputs).
    size_t t = s.skip_ws(q + 1);
    const size_t template_begin = t;
    while (t < close && s.text[t] == '"') {
      ++t;
      while (t < close && s.text[t] != '"') t += s.text[t] == '\\' ? 2 : 1;
      t = s.skip_ws(t + 1);
    }
    const std::string literals = trim(s.text.substr(template_begin, t - template_begin));
    std::vector<std::pair<size_t, size_t>> sections{{template_begin, t}};
    {
      int depth = 0;
      size_t start = t;
      for (size_t x = t; x < close; ++x) {
        if (!s.code[x]) continue;
        const char c = s.text[x];
        if (c == '(' || c == '[' || c == '{') ++depth;
        if (c == ')' || c == ']' || c == '}') --depth;
        if (depth == 0 && c == ':') {
          if (x > start || !sections.empty()) sections.push_back({start, x});
          start = x + 1;
        }
      }
      sections.push_back({start, close});
      // sections[1] is the text between the template and the first ':' (empty); drop it.
      sections.erase(sections.begin() + 1);
    }
    std::string decoded;
    for (size_t i = 0; i < literals.size(); ++i)
      if (literals[i] == '"') {
        for (++i; i < literals.size() && literals[i] != '"'; ++i) decoded += literals[i];
      }
    const std::string op = decoded.substr(0, decoded.find_first_of(" \t\\;"));
    std::string name = op;
    for (char& c : name)
      if (c == '.') c = '_';
    bool known = false;
    for (const char* k : kKnownPtx) known = known || name == k;
    if (!known)
      die(s.path + ":" + std::to_string(s.line_of(p)) + ": an asm statement the emulator does not model: \"" + decoded +
          "\" (add it to kernels/emulator/device.h and ptx.cpp)");
    std::string call = "::ferry::emu::ptx::" + name + "(" + literals;
    for (size_t sec = 1; sec <= 2 && sec < sections.size(); ++sec) {
      const auto [b, e] = sections[sec];
      if (trim(s.text.substr(b, e - b)).empty()) continue;
      for (const auto& [ob, oe] : split(s, b, e, ',')) {
        // "constraint"(expression)
        const size_t open = s.text.find('(', ob);
        if (open == std::string::npos || open >= oe) die(s.path + ": cannot read asm operand at line " + std::to_string(s.line_of(ob)));
        const size_t close_op = s.close(open);
        call += ", " + trim(s.text.substr(open + 1, close_op - open - 1));
      }
    }
    call += ")";
    edits.push_back({p, close + 1, call});
  }
  apply(s, edits);
}

int path_hash(const std::string& path) {
  unsigned h = 2166136261u;
  for (char c : path) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  return int(h % 100000u);
}

void shared_declarations(Source& s) {
  std::vector<Edit> edits;
  int counter = 0;
  for (size_t p = s.find("__shared__", 0); p != std::string::npos; p = s.find("__shared__", p + 1)) {
    size_t begin = p;
    bool is_extern = false;
    const size_t before = s.skip_ws_back(p);
    if (before != std::string::npos && before >= 5 && s.text.compare(before - 5, 6, "extern") == 0) {
      is_extern = true;
      begin = before - 5;
    }
    const size_t semi = s.text.find(';', p);
    std::string decl = s.text.substr(p + 10, semi - p - 10);
    std::string align;
    const size_t al = decl.find("__align__(");
    if (al != std::string::npos) {
      const size_t ae = decl.find(')', al);
      align = decl.substr(al + 10, ae - al - 10);
      decl.erase(al, ae + 1 - al);
    }
    decl = trim(decl);
    const size_t bracket = decl.find('[');
    const std::string head = trim(decl.substr(0, bracket));
    const std::string dims = bracket == std::string::npos ? "" : decl.substr(bracket);
    size_t name_begin = head.size();
    while (name_begin > 0 && ident(head[name_begin - 1])) --name_begin;
    const std::string name = head.substr(name_begin), type = trim(head.substr(0, name_begin));
    if (name.empty() || type.empty())
      die(s.path + ":" + std::to_string(s.line_of(p)) + ": cannot read the __shared__ declaration");
    std::string text;
    if (is_extern) {
      if (dims != "[]") die(s.path + ":" + std::to_string(s.line_of(p)) + ": extern __shared__ must be an unsized array");
      text = type + "* const " + name + " = static_cast<" + type + "*>(::ferry::emu::dynamic_shared());";
    } else {
      const int id = path_hash(s.path) * 1000 + counter++;
      const std::string alignment =
          align.empty() ? "alignof(" + type + ")" : "((" + align + ") > alignof(" + type + ") ? (" + align + ") : alignof(" + type + "))";
      const std::string ref = dims.empty() ? type + "& " + name : type + " (&" + name + ")" + dims;
      const std::string ptr = dims.empty() ? type + "*" : type + "(*)" + dims;
      text = ref + " = *static_cast<" + ptr + ">(::ferry::emu::static_shared(" + std::to_string(id) + ", sizeof(" +
             type + dims + "), " + alignment + "));";
    }
    edits.push_back({begin, semi + 1, text});
  }
  apply(s, edits);
}

// The identifier ending at `end` (inclusive).
std::string ident_before(const Source& s, size_t end) {
  size_t b = end + 1;
  while (b > 0 && ident(s.text[b - 1])) --b;
  return s.text.substr(b, end + 1 - b);
}

// Whether the '*' at `star` dereferences (rather than multiplies): it follows an operator, an
// opening bracket, a keyword like `return`, or the condition of an if/while/for.
bool unary_star(const Source& s, size_t star) {
  const size_t before = s.skip_ws_back(star);
  if (before == std::string::npos) return true;
  const char c = s.text[before];
  if (ident(c)) {
    const std::string word = ident_before(s, before);
    return word == "return" || word == "case" || word == "else" || word == "do" || word == "throw";
  }
  if (c == ']') return false;
  if (c == ')') {
    int depth = 0;
    size_t open = before;
    for (;; --open) {
      if (s.code[open] && s.text[open] == ')') ++depth;
      if (s.code[open] && s.text[open] == '(' && --depth == 0) break;
      if (open == 0) return false;
    }
    const size_t kw = s.skip_ws_back(open);
    if (kw == std::string::npos || !ident(s.text[kw])) return false;
    const std::string word = ident_before(s, kw);
    return word == "if" || word == "while" || word == "for" || word == "switch";
  }
  return true;
}

// *reinterpret_cast<T*>(p) and reinterpret_cast<T*>(p)[i] — a pointer turned into T and used at
// once — become ::ferry::emu::aligned_cast<T*>(p), which checks p against T's alignment.
void vector_casts(Source& s) {
  std::vector<Edit> edits;
  const std::string kw = "reinterpret_cast";
  for (size_t p = s.find(kw, 0); p != std::string::npos; p = s.find(kw, p + 1)) {
    const size_t lt = s.skip_ws(p + kw.size());
    if (s.text[lt] != '<') continue;
    int depth = 0;
    size_t gt = lt;
    for (; gt < s.text.size(); ++gt) {
      if (s.text[gt] == '<') ++depth;
      if (s.text[gt] == '>' && --depth == 0) break;
    }
    const std::string type = trim(s.text.substr(lt + 1, gt - lt - 1));
    const size_t open = s.skip_ws(gt + 1);
    if (s.text[open] != '(' || type.empty() || type.back() != '*' || type.find("void") != std::string::npos) continue;
    const size_t close = s.close(open);
    bool used = false;
    const size_t star = s.skip_ws_back(p);
    if (star != std::string::npos && s.text[star] == '*') used = unary_star(s, star);
    const size_t after = s.skip_ws(close + 1);
    used = used || (after < s.text.size() && s.text[after] == '[');
    if (!used) continue;
    edits.push_back({p, gt + 1, "::ferry::emu::aligned_cast<" + type + ">"});
  }
  apply(s, edits);
}

void kernel_prologues(Source& s) {
  std::vector<Edit> edits;
  for (size_t p = s.find("__global__", 0); p != std::string::npos; p = s.find("__global__", p + 1)) {
    // template <...> right before?
    std::string targs;
    const size_t before = s.skip_ws_back(p);
    if (before != std::string::npos && s.text[before] == '>') {
      int depth = 0;
      size_t lt = before;
      for (;; --lt) {
        if (!s.code[lt]) continue;
        if (s.text[lt] == '>') ++depth;
        if (s.text[lt] == '<' && --depth == 0) break;
        if (lt == 0) die(s.path + ": unbalanced template header");
      }
      const size_t kw = s.skip_ws_back(lt);
      if (kw != std::string::npos && kw >= 7 && s.text.compare(kw - 7, 8, "template") == 0) {
        const std::string params = s.text.substr(lt + 1, before - lt - 1);
        std::vector<std::string> names;
        std::stringstream ps(params);
        std::string item;
        while (std::getline(ps, item, ',')) {
          item = trim(item.substr(0, item.find('=')));
          size_t e = item.size(), b = e;
          while (b > 0 && ident(item[b - 1])) --b;
          names.push_back(item.substr(b, e - b));
        }
        targs = "<";
        for (size_t i = 0; i < names.size(); ++i) targs += (i ? ", " : "") + names[i];
        targs += ">";
      }
    }
    std::string bounds = "0", name;
    size_t q = s.skip_ws(p + 10);
    size_t params_open = std::string::npos;
    while (q < s.text.size()) {
      if (ident(s.text[q])) {
        const std::string id = s.ident_at(q);
        size_t r = s.skip_ws(q + id.size());
        if (id == "__launch_bounds__") {
          const size_t close = s.close(r);
          const auto args = split(s, r + 1, close, ',');
          bounds = "unsigned(" + trim(s.text.substr(args[0].first, args[0].second - args[0].first)) + ")";
          q = s.skip_ws(close + 1);
          continue;
        }
        if (s.text[r] == '(') {
          name = id;
          params_open = r;
          break;
        }
        q = r;
      } else {
        ++q;
      }
    }
    if (params_open == std::string::npos) die(s.path + ": cannot read the kernel at line " + std::to_string(s.line_of(p)));
    const size_t body = s.skip_ws(s.close(params_open) + 1);
    if (s.text[body] != '{') continue;  // a declaration
    edits.push_back({body + 1, body + 1,
                     " ::ferry::emu::kernel_entry(__PRETTY_FUNCTION__, reinterpret_cast<const void*>(&" + name + targs +
                         "), " + bounds + ");"});
  }
  apply(s, edits);
}

void launches(Source& s) {
  std::vector<Edit> edits;
  for (size_t p = s.find("<<<", 0); p != std::string::npos; p = s.find("<<<", p + 3)) {
    size_t end = s.skip_ws_back(p);
    size_t begin = end;
    if (s.text[end] == '>') {
      int depth = 0;
      for (;; --begin) {
        if (s.text[begin] == '>') ++depth;
        if (s.text[begin] == '<' && --depth == 0) break;
        if (begin == 0) die(s.path + ": cannot read the kernel before <<< at line " + std::to_string(s.line_of(p)));
      }
    }
    while (begin > 0 && (ident(s.text[begin - 1]) || s.text[begin - 1] == ':')) --begin;
    const std::string kernel = s.text.substr(begin, end + 1 - begin);
    const size_t cfg_end = s.find(">>>", p + 3);
    if (cfg_end == std::string::npos) die(s.path + ": <<< without >>> at line " + std::to_string(s.line_of(p)));
    const std::string config = s.text.substr(p + 3, cfg_end - p - 3);
    const size_t open = s.skip_ws(cfg_end + 3);
    if (s.text[open] != '(') die(s.path + ": no arguments after >>> at line " + std::to_string(s.line_of(p)));
    const size_t close = s.close(open);
    const std::string args = s.text.substr(open + 1, close - open - 1);
    std::string text = "::ferry::emu::launch_kernel(\"" + kernel + "\", __PRETTY_FUNCTION__, ::ferry::emu::LaunchConfig(" +
                       config + "), [](auto... ferry_emu_args) { " + kernel + "(ferry_emu_args...); }";
    if (!trim(args).empty()) text += ", " + args;
    text += ")";
    edits.push_back({begin, close + 1, text});
  }
  apply(s, edits);
}

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) die("cannot read " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path root, out;
  std::vector<Mutation> mutations;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--root" && i + 1 < argc) {
      root = argv[++i];
    } else if (a == "--out" && i + 1 < argc) {
      out = argv[++i];
    } else if (a == "--mutations" && i + 1 < argc) {
      std::stringstream list(read(argv[++i]));
      std::string line;
      Mutation m{"", "", "", 0};
      int fields = 0;
      auto value = [&](const std::string& key) {
        if (line == key + ":") line += " ";  // an empty value
        if (line.rfind(key + ": ", 0) != 0) die(std::string(argv[i]) + ": expected \"" + key + ": \", got \"" + line + "\"");
        ++fields;
        return line.substr(key.size() + 2);
      };
      while (std::getline(list, line)) {
        if (line.empty() || line[0] == '#') continue;
        switch (fields % 4) {
          case 0: m.file = value("file"); break;
          case 1: m.occurrence = std::atoi(value("occurrence").c_str()); break;
          case 2: m.from = value("from"); break;
          case 3:
            m.to = value("to");
            mutations.push_back(m);
            break;
        }
      }
      if (fields % 4 != 0) die(std::string(argv[i]) + ": an incomplete mutation");
    } else if (a.rfind("--", 0) == 0) {
      die("unknown option " + a);
    } else {
      files.push_back(a);
    }
  }
  if (root.empty() || out.empty() || files.empty())
    die("usage: ferry_emu_translate --root SRC --out DIR [--mutations LIST] FILE...");
  for (const Mutation& m : mutations)
    if (std::find(files.begin(), files.end(), m.file) == files.end()) die("a mutation names " + m.file + ", not translated");

  for (const std::string& rel : files) {
    Source s;
    s.path = rel;
    s.text = read(root / rel);
    for (const Mutation& m : mutations) {
      if (m.file != rel) continue;
      size_t p = std::string::npos;
      for (int k = 0, from = 0; k < m.occurrence; ++k) {
        p = s.text.find(m.from, size_t(from));
        if (p == std::string::npos)
          die("mutation: \"" + m.from + "\" occurs fewer than " + std::to_string(m.occurrence) + " times in " + rel +
              " (the source changed: update the broken-variant test)");
        from = int(p + 1);
      }
      s.text.replace(p, m.from.size(), m.to);
    }
    s.remask();
    includes(s);
    asm_statements(s);
    shared_declarations(s);
    vector_casts(s);
    kernel_prologues(s);
    launches(s);
    const bool is_cu = rel.size() > 3 && rel.compare(rel.size() - 3, 3, ".cu") == 0;
    const std::filesystem::path target = out / (is_cu ? rel + ".cpp" : rel);
    const std::string text = "#line 1 \"" + rel + "\"\n" + s.text;
    std::filesystem::create_directories(target.parent_path());
    if (std::filesystem::exists(target) && read(target) == text) continue;
    std::ofstream o(target, std::ios::binary);
    o << text;
    if (!o) die("cannot write " + target.string());
  }
  return 0;
}
