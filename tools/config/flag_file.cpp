// tools/config/flag_file.cpp
#include "tools/config/flag_file.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <set>
#include <sstream>

#include "engine/toml.h"

#include "base/error.h"

namespace ferry::config {

std::string flag_of_key(const std::string& key) {
  std::string flag = "--" + key;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

std::string snake_of(const std::string& key) {
  std::string snake = key;
  std::replace(snake.begin(), snake.end(), '-', '_');
  return snake;
}

void apply_flag_file(CLI::App& app, const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) user_error(file, ": cannot be read (missing or unreadable)");
  std::ostringstream text;
  text << in.rdbuf();
  toml::table t;
  try {
    t = parse_toml(text.str(), file);
  } catch (const toml::parse_error& e) {
    if (e.source().begin.line == 0) user_error(file, ": ", e.description());  // no position (engine/toml.h)
    user_error(file, ": ", e.description(), " (line ", e.source().begin.line, ")");
  }
  std::set<std::string> given;  // flags set by the file, under either spelling
  for (auto&& [k, v] : t) {
    const std::string key(k.str());
    const std::string flag = flag_of_key(key);
    CLI::Option* opt = key == "config" ? nullptr : app.get_option_no_throw(flag);
    if (!opt)
      user_error(file, ": unknown key '", key, "' (keys are the command's flag names in snake_case, e.g. batch_size)");
    if (!given.insert(flag).second)
      user_error(file, ": key '", key, "' is given twice (as ", snake_of(key), " and as the old ", flag.substr(2), ")");
    if (key.find('-') != std::string::npos)
      std::fprintf(stderr, "ferry: warning: %s: key '%s' is the old spelling; write %s (the old one is read until the next release)\n",
                   file.c_str(), key.c_str(), snake_of(key).c_str());
    if (opt->count() > 0) continue;  // the command line wins
    std::string value;
    if (auto s = v.value_exact<std::string>()) {
      value = *s;
    } else if (auto b = v.value_exact<bool>()) {
      value = *b ? "true" : "false";
    } else if (auto i = v.value_exact<int64_t>()) {
      value = std::to_string(*i);
    } else if (auto d = v.value_exact<double>()) {
      std::ostringstream o;
      o << std::setprecision(9) << *d;
      value = o.str();
    } else {
      user_error(file, ": key '", key, "' must be a string, number or boolean");
    }
    try {
      opt->add_result(value);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      user_error(file, ": ", key, " = ", value, ": ", e.what());
    }
  }
}

}  // namespace ferry::config
