// engine/config_fields.h — one field table per config struct, and the readers and writers built on it.
//
// A config struct lists its fields once, beside its definition, as an overload of visit_fields:
//
//   template <typename Self, typename F>
//   std::enable_if_t<std::is_same_v<std::remove_const_t<Self>, GptConfig>> visit_fields(Self& c, F&& f) {
//     f("n_layer", c.n_layer);  ...
//   }
//
// (Self is the struct or the const struct, so one table serves reading and writing.) Everything that
// reads or writes the struct — the TOML of a run config, the JSON of config.json, checkpoints and
// task models, the comparison of two models — goes through it, so a new field is one new line.
// Field types: std::string, bool, integers, floating point.
#pragma once
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace ferry {

// The struct as a JSON object, one member per field (nlohmann orders members by name).
template <typename T>
nlohmann::json fields_to_json(const T& c) {
  nlohmann::json j = nlohmann::json::object();
  visit_fields(c, [&](const char* key, const auto& value) { j[key] = value; });
  return j;
}

// Every field from a JSON object; a missing member or one of the wrong type is a UserError naming
// `where`, what the object is (`what`: "model config") and the field.
template <typename T>
void fields_from_json(const nlohmann::json& j, T& c, const std::string& where, const char* what) {
  visit_fields(c, [&](const char* key, auto& value) {
    if (!j.is_object() || !j.contains(key)) user_error(where, ": ", what, " lacks '", key, "'");
    using V = std::remove_reference_t<decltype(value)>;
    const nlohmann::json& v = j.at(key);
    const bool ok = std::is_same_v<V, bool>          ? v.is_boolean()
                    : std::is_same_v<V, std::string> ? v.is_string()
                    : std::is_integral_v<V>          ? v.is_number_integer()
                                                     : v.is_number();
    if (!ok) user_error(where, ": ", what, " field '", key, "' has the wrong type");
    try {
      v.get_to(value);
    } catch (const nlohmann::json::exception&) {
      user_error(where, ": ", what, " field '", key, "' has the wrong type");
    }
  });
}

// Each field as text, in the table's order ("4", "true"): for messages and comparisons.
template <typename T>
std::vector<std::pair<std::string, std::string>> fields_as_text(const T& c) {
  std::vector<std::pair<std::string, std::string>> out;
  visit_fields(c, [&](const char* key, const auto& value) {
    using V = std::remove_cv_t<std::remove_reference_t<decltype(value)>>;
    if constexpr (std::is_same_v<V, std::string>) {
      out.emplace_back(key, value);
    } else if constexpr (std::is_same_v<V, bool>) {
      out.emplace_back(key, value ? "true" : "false");
    } else {
      out.emplace_back(key, nlohmann::json(value).dump());
    }
  });
  return out;
}

}  // namespace ferry
