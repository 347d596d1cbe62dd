// tools/cli/main.cpp — the `ferry` entry point: collects the registered subcommands, parses, and
// turns errors into one line and an exit status (2 for bad input, 1 for internal failures).
// Started by a launcher (mpirun, srun), it first joins the job's MPI world: the communicator every
// parallel step runner uses (parallel/job_world.h), and a failure on one rank ends every rank.
// Started any other way it never touches MPI (`ferry --help` works without it).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "base/error.h"
#include "base/setting_error.h"
#include "parallel/failure.h"
#include "parallel/job_world.h"
#include "parallel/launch_env.h"
#include "tools/cli/command.h"

#if FERRY_WITH_MPI
#include "parallel/communicator_mpi.h"
#endif

namespace {

// A setting's error as the user typed it: "--tp 3: ..." when the running command has that flag
// (the setting's name with '-' for '_'), else the setting's own name (below tools/ no room names a
// flag: base/setting_error.h).
std::string as_typed(const CLI::App& app, const ferry::SettingError& e) {
  std::string flag = "--" + e.setting();
  for (char& c : flag)
    if (c == '_') c = '-';
  for (const CLI::App* sub : app.get_subcommands())
    if (sub->get_option_no_throw(flag)) return flag + " " + e.detail();
  return e.what();
}

int run_cli(int argc, char** argv) {
  CLI::App app{
      "ferry — a GPU-native training engine: pretrain GPT-2-family and BERT-style models, fine-tune them on new "
      "tasks, benchmark the kernels."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ferry 0.1.0");
  auto cmds = ferry::cli::commands();
  std::sort(cmds.begin(), cmds.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const auto& c : cmds) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    c.setup(*sub);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "ferry: %s\n", e.what());
    return 2;
  } catch (const ferry::SettingError& e) {
    std::fprintf(stderr, "ferry: error: %s\n", as_typed(app, e).c_str());
    return 2;
  } catch (const ferry::UserError& e) {
    std::fprintf(stderr, "ferry: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ferry: internal error: %s\n", e.what());
    return 1;
  }
  return ferry::cli::exit_code();
}

// True when mpirun or srun started this process as a rank of a job.
bool launched_as_rank() {
  try {
    return ferry::parallel::detect_launch_env().launcher != "none";
  } catch (const ferry::UserError& e) {
    std::fprintf(stderr, "ferry: error: %s\n", e.what());
    std::exit(2);
  }
}

}  // namespace

int main(int argc, char** argv) {
#if FERRY_WITH_MPI
  if (launched_as_rank()) {
    namespace par = ferry::parallel;
    par::MpiSession mpi(&argc, &argv);
    par::MpiOptions options;
    // A collective that waits this long means a peer hangs: end the job (failure.h).
    options.collective_timeout = std::chrono::seconds(600);
    par::set_job_world(par::make_mpi_world_communicator(options));
    const int status = par::run_rank([&] { return run_cli(argc, argv); });
    par::set_job_world(nullptr);
    return status;
  }
#endif
  return run_cli(argc, argv);
}
