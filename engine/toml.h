// engine/toml.h — toml++ as ferry includes it: every file that parses TOML includes this header,
// never <toml++/toml.h> directly (one definition of the parser in every translation unit).
//
// Debian 12's toml++ 3.3 checks some malformed inputs with an assertion instead of a parse error:
// a table header that opens with a character no key may start with ("[$") aborted `ferry pretrain
// --config` (found by tests/fuzz/run_config_fuzz). Its assertions throw toml::parse_error here, so
// such a file is one line and exit 2 like any other malformed TOML. NDEBUG is lifted around the
// include because toml++ drops its checks under NDEBUG and *assumes* them instead (undefined
// behaviour on such input).
//
// Its whitespace test also reaches `__builtin_unreachable()` (undefined behaviour) for many non-ASCII
// code points ('é', U+FEEF, 'Θ'...) wherever its lexer looks for whitespace, which on malformed
// input can be inside what TOML calls a string (found by tests/fuzz/finetune_config_fuzz and
// run_config_fuzz). So toml++ only ever sees ASCII: parse_toml() hands it the same document with
// non-ASCII escaped inside strings and blanked in comments, and refuses it anywhere else (TOML 1.0
// allows non-ASCII only in strings and comments).
#pragma once
#include <string>
#include <string_view>

namespace ferry::detail {
[[noreturn]] void toml_check_failed(const char* condition);
}  // namespace ferry::detail

#ifdef TOML_ASSERT
#error "include engine/toml.h before anything else that includes toml++"
#endif
#define TOML_ASSERT(expr) ((expr) ? static_cast<void>(0) : ::ferry::detail::toml_check_failed(#expr))
#pragma push_macro("NDEBUG")
#undef NDEBUG
#include <toml++/toml.h>
#pragma pop_macro("NDEBUG")

namespace ferry {

// toml::parse of the ASCII-only form above (same values); throws toml::parse_error (with a
// position) for non-ASCII outside strings and comments, or malformed UTF-8.
toml::table parse_toml(std::string_view text, const std::string& source);

}  // namespace ferry
