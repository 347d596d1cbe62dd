// tests/fuzz/run_config_fuzz.cpp — `ferry pretrain --config`: the TOML run config.
// Properties: any bytes parse or give a UserError; a config that parses, written back as TOML
// (every field, from to_json), parses to the same config; validation never fails any other way.
#include <cmath>
#include <cstdio>

#include "base/error.h"
#include "engine/train/run_config.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

// A TOML basic string: quotes, backslashes and control characters escaped (the text is UTF-8:
// toml++ checked it while parsing).
std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string toml_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);  // round-trips every double
  // TOML reads "-0" or "1" as integers: a float's literal needs a point or an exponent.
  std::string s = buf;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string to_toml(const nlohmann::json& config) {
  std::string text;
  for (const auto& [section, fields] : config.items()) {
    text += "[" + section + "]\n";
    for (const auto& [key, v] : fields.items()) {
      text += key + " = ";
      if (v.is_string()) text += toml_string(v.get<std::string>());
      else if (v.is_boolean()) text += v.get<bool>() ? "true" : "false";
      else if (v.is_number_unsigned()) text += std::to_string(v.get<uint64_t>());
      else if (v.is_number_integer()) text += std::to_string(v.get<int64_t>());
      else text += toml_number(v.get<double>());
      text += "\n";
    }
  }
  return text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry;
  RunConfig config;
  try {
    config = parse_run_config(std::string(fuzz::as_chars(data, size)), "fuzz.toml");
  } catch (const UserError&) {
    return 0;
  }
  // to_json names every field, so this TOML sets all of them; dump() compares NaN as null.
  const nlohmann::json first = to_json(config);
  const std::string again = to_toml(first);
  RunConfig reread;
  try {
    reread = parse_run_config(again, "roundtrip.toml");
  } catch (const UserError& e) {
    FUZZ_ASSERT(false, std::string("a parsed config written back does not parse: ") + e.what() + "\n" + again);
  }
  FUZZ_ASSERT(to_json(reread).dump() == first.dump(), "round trip changed the config:\n" + again);
  try {
    validate_run_config(config);
  } catch (const UserError&) {
  }
  return 0;
}
