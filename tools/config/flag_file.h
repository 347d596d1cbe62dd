// tools/config/flag_file.h — a TOML file whose keys are a subcommand's flag names (`ferry finetune
// --config configs/finetune_sentiment.toml`): one source of configuration, the file plus the flags.
#pragma once
#include <string>

#include <CLI/CLI.hpp>

namespace ferry::config {

// Each key fills the option the command line left unset, through the option itself (the flag's own
// parsing and checks); the command line wins. An unknown key, a value that is not a string, number
// or boolean, a value the option refuses, or a file that is not TOML is a UserError naming the file
// (and the key).
void apply_flag_file(CLI::App& app, const std::string& file);

}  // namespace ferry::config
