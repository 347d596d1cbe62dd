// tests/fuzz/finetune_config_fuzz.cpp — `ferry finetune --config FILE`: a TOML file whose keys are the
// subcommand's flag names in snake_case, or their old kebab-case spelling (tools/config/flag_file.h),
// applied to the real finetune options (this
// target compiles tools/cli/finetune.cpp and takes its registered setup, without running it).
// Input: one byte, then the file. Byte bit 0 set: --batch-size is given on the command line first.
// Properties: the file applies or gives a UserError; every key of a file that applies is an option
// that now has a value; a flag given on the command line keeps the command line's value.
#include "engine/toml.h"

#include "base/error.h"
#include "tests/fuzz/fuzz_support.h"
#include "tools/cli/command.h"
#include "tools/config/flag_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry;
  if (size < 1) return 0;
  const cli::Command* finetune = nullptr;
  for (const auto& c : cli::commands())
    if (c.name == "finetune") finetune = &c;
  FUZZ_ASSERT(finetune, "finetune did not register");
  CLI::App app;
  finetune->setup(app);
  const bool batch_on_command_line = data[0] & 1;
  if (batch_on_command_line) {
    CLI::Option* batch = app.get_option("--batch-size");
    batch->add_result("3");
    batch->run_callback();
  }
  const auto path = fuzz::write_scratch("finetune.toml", fuzz::as_chars(data + 1, size - 1));
  try {
    config::apply_flag_file(app, path.string());
  } catch (const UserError&) {
    return 0;
  }
  // The file applied, so it is TOML and each of its keys names an option that now holds a value.
  const toml::table t = parse_toml(fuzz::read_file_bytes(path), path.string());
  for (auto&& [k, v] : t) {
    const CLI::Option* opt = app.get_option_no_throw(config::flag_of_key(std::string(k.str())));
    FUZZ_ASSERT(opt && opt->count() > 0, "key '" + std::string(k.str()) + "' applied but its option is unset");
  }
  if (batch_on_command_line)
    FUZZ_ASSERT(app.get_option("--batch-size")->as<int>() == 3, "the file overrode a flag from the command line");
  return 0;
}
