// tools/cli/command.h — how a subcommand joins `ferry`.
//
// Each subcommand lives in its own file under tools/cli/ and registers itself:
//
//   static void setup(CLI::App& app) { ... add options ...; app.callback([]{ ... }); }
//   FERRY_COMMAND(tokenize, "tokenize", "Encode UTF-8 text from stdin to GPT-2 token ids", setup);
//
// Inside callbacks throw ferry::UserError for bad input (one line, exit 2); the exit status of a
// successful command is 0 unless it calls ferry::cli::set_exit_code.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace ferry::cli {

struct Command {
  std::string name;
  std::string help;
  std::function<void(CLI::App&)> setup;
};

int register_command(Command c);
const std::vector<Command>& commands();
void set_exit_code(int code);
int exit_code();

}  // namespace ferry::cli

#define FERRY_COMMAND(ident, name, help, setup_fn) \
  static const int ferry_command_##ident = ::ferry::cli::register_command({name, help, setup_fn})
