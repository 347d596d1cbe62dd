// base/setting_error.h — a UserError about one setting, named as a config file spells it.
//
// Below tools/ nothing names a command-line flag: an error about one setting names the setting
// (`setting_error("tp", 3, ": must be at least 1")` reads "tp 3: must be at least 1"), and the
// command line, which knows its flags, shows it as the flag the user typed ("--tp 3: must be at
// least 1"; tools/cli/main.cpp). A setting that is not a flag of the running command stays as it is.
#pragma once
#include <string>

#include "base/error.h"

namespace ferry {

class SettingError : public UserError {
 public:
  // what() is "<setting> <detail>".
  SettingError(const std::string& setting, const std::string& detail)
      : UserError(setting + " " + detail), setting_(setting), detail_(detail) {}
  // The setting's name in the config dialect (snake_case: "tp", "attention", "layer_lr_decay").
  const std::string& setting() const { return setting_; }
  // The message after the setting's name.
  const std::string& detail() const { return detail_; }

 private:
  std::string setting_, detail_;
};

template <typename... Args>
[[noreturn]] void setting_error(const std::string& setting, const Args&... detail) {
  throw SettingError(setting, str_cat(detail...));
}

}  // namespace ferry
