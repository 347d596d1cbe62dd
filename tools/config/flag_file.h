// tools/config/flag_file.h — a TOML file whose keys are a subcommand's flag names in snake_case
// (`ferry finetune --config configs/finetune_sentiment.toml`): one source of configuration, the file
// plus the flags.
#pragma once
#include <string>

#include <CLI/CLI.hpp>

namespace ferry::config {

// Keys are the flags' names in snake_case, the one config dialect of every command (`batch_size =
// 16` for `--batch-size 16`, as in a run config's [train] table). The old spelling, the flag's own
// (`batch-size`), is still read for one release, with a one-line warning on stderr.
//
// Each key fills the option the command line left unset, through the option itself (the flag's own
// parsing and checks); the command line wins. An unknown key, a key given under both spellings, a
// value that is not a string, number or boolean, a value the option refuses, or a file that is not
// TOML is a UserError naming the file (and the key).
void apply_flag_file(CLI::App& app, const std::string& file);

// The flag a key sets ("batch_size" and the old "batch-size" → "--batch-size").
std::string flag_of_key(const std::string& key);
// A key in the one dialect ("batch-size" → "batch_size").
std::string snake_of(const std::string& key);

}  // namespace ferry::config
