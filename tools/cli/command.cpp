// tools/cli/command.cpp — the subcommand registry (tools/cli/command.h). Apart from main.cpp so that a
// test or fuzz target compiling one subcommand's file (finetune.cpp) collects its setup through the
// same registry the `ferry` binary uses.
#include "tools/cli/command.h"

#include <utility>

namespace ferry::cli {

namespace {
std::vector<Command>& registry() {
  static std::vector<Command> r;
  return r;
}
int g_exit_code = 0;
}  // namespace

int register_command(Command c) {
  registry().push_back(std::move(c));
  return static_cast<int>(registry().size());
}
const std::vector<Command>& commands() { return registry(); }
void set_exit_code(int code) { g_exit_code = code; }
int exit_code() { return g_exit_code; }

}  // namespace ferry::cli
