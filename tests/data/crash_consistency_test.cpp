// tests/data/crash_consistency_test.cpp — SIGKILL at any moment never costs a checkpoint or a shard.
//
// `ferry pretrain` writes a checkpoint every step (keep_checkpoints = 2, so older ones are deleted as
// it goes) and is killed, in each trial, after a random delay (four in five drawn across its
// checkpoint writes, one in five across the whole run, start-up included); then, once
// for every phase of a write, at a point injected through FERRY_TEST_KILL_IN_WRITE (temporary file
// created, partly written, fsynced, renamed, folder fsynced, an old checkpoint deleted). After every
// kill: each file named like a checkpoint loads and is bit for bit the checkpoint an uninterrupted run
// wrote at that step (no partial file is ever taken for one), and `--resume auto` continues from the
// newest and ends bit-exactly where the uninterrupted run ended, metrics included.
//
// `ferry data prepare` (small shards, many writes) is killed the same way, into an empty folder and
// over a finished corpus of another seed: every shard left that passes the check `ferry data check`
// makes is whole — the new run's shard of that name or the old one, never a torn mixture — a
// manifest is only there when the corpus is complete, and the next prepare finishes the corpus.
//
// FERRY_KILL_TRIALS sets the random trials per command (default 8, sized for CI on 2 cores);
// FERRY_KILLS=N goes on past them until N kills have landed (a run that finishes before its kill
// is a trial without one; at least one kill is wanted, at most 4N more trials). The run reported in benchmarks/RESULTS.md is
// FERRY_KILL_TRIALS=200 FERRY_KILLS=200.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/checkpoint/checkpoint.h"
#include "base/error.h"
#include "engine/data/shard.h"
#include "tests/support/support.h"
#include "tools/tokenizer/gpt2_tokenizer.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;

constexpr int kSteps = 8;

int trial_count() {
  const char* v = std::getenv("FERRY_KILL_TRIALS");
  return v && *v ? std::max(1, std::atoi(v)) : 8;
}

int kills_wanted() {
  const char* v = std::getenv("FERRY_KILLS");
  return v && *v ? std::max(0, std::atoi(v)) : 0;
}

// Whether trial i runs: the first trial_count(), then more while fewer than kills_wanted() (at least
// one) landed, up to trial_count() + 4 × that many more.
bool another_trial(int i, int killed) {
  const int wanted = std::max(1, kills_wanted());
  return i < trial_count() || (killed < wanted && i < trial_count() + 4 * wanted);
}


// Starts `args` with its output in `log`; `env` ("NAME=value") is added to this process's environment.
pid_t spawn(const std::vector<std::string>& args, const fs::path& log, const std::string& env = "") {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    if (!env.empty()) ::putenv(const_cast<char*>(env.c_str()));
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits for `pid`; true when it was killed by SIGKILL, false when it exited (then with status 0).
bool wait_killed(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) {
    EXPECT_EQ(WTERMSIG(status), SIGKILL);
    return true;
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  return false;
}

// Runs `args` to the end, timing it and the moment the first entry appeared in `watched` (polled
// every 200 us): where the writes start, so that most kill delays can be drawn across them.
struct RunTiming {
  double first_write_s = 0, whole_s = 0;
};
// A trial that finished before its kill ran faster than the reference did (the reference is timed
// once, often while other tests load the machine): the windows that follow are drawn over half the
// time, so the kills catch up with the runs whatever the load was when the reference ran.
void shorten_after_a_miss(RunTiming& t) {
  t.first_write_s *= 0.5;
  t.whole_s *= 0.5;
}
RunTiming timed_run(const std::vector<std::string>& args, const fs::path& watched, const fs::path& log) {
  const auto t0 = std::chrono::steady_clock::now();
  auto since = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  const pid_t pid = spawn(args, log);
  RunTiming t;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    std::error_code ec;
    if (t.first_write_s == 0 && fs::is_directory(watched, ec) && !fs::is_empty(watched, ec)) t.first_write_s = since();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  t.whole_s = since();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  return t;
}

// Kills `pid` at a random moment, or finds it done; true when the kill landed. Four in five kills
// fall across the writing part of the run: the delay is drawn from the moment `writing` first holds
// (so start-up time, which the machine's load stretches, does not shift the window),
// over the reference run's writing time and a little past it, so some runs finish. One in five
// falls across the whole run, start-up included. `delay` reports the moment, from the start.
bool has_entries(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && !fs::is_empty(dir, ec);
}

bool kill_at_random(pid_t pid, const std::function<bool()>& writing, const RunTiming& t, std::mt19937_64& rng,
                    std::chrono::microseconds& delay) {
  const auto t0 = std::chrono::steady_clock::now();
  auto micros = [](double s) { return std::chrono::microseconds(static_cast<int64_t>(s * 1e6)); };
  if (rng() % 5 == 0) {
    std::this_thread::sleep_for(micros(std::uniform_real_distribution<double>(0, t.whole_s * 1.05)(rng)));
  } else {
    const double window = std::uniform_real_distribution<double>(0, (t.whole_s - t.first_write_s) * 1.05)(rng);
    int status = 0;
    while (!writing()) {
      if (::waitpid(pid, &status, WNOHANG) == pid) {  // done before its first write
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
        delay = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
        return false;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    std::this_thread::sleep_for(micros(window));
  }
  delay = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
  ::kill(pid, SIGKILL);
  return wait_killed(pid);
}

std::vector<std::string> deterministic_metrics(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    j.erase("tokens_per_s");
    j.erase("mfu");
    lines.push_back(j.dump());
  }
  return lines;
}

size_t temporaries_in(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename().string().find(".tmp.") != std::string::npos) ++n;
  return n;
}

// ---- ferry pretrain ------------------------------------------------------------------------------

void write_run_config(const fs::path& file, int keep) {
  std::ofstream(file) << "[model]\npreset = \"nano\"\nvocab_size = 256\nn_layer = 1\n\n"
                         "[train]\nbatch_size = 2\nseq_len = 16\nmax_steps = " << kSteps << "\n"
                         "warmup_steps = 2\nlr = 3e-3\neval_every = 0\nlog_every = 1\n"
                         "checkpoint_every = 1\nkeep_checkpoints = " << keep << "\n\n[data]\nsource = \"synthetic\"\n";
}

class KilledPretrain : public ::testing::Test {
 protected:
  void SetUp() override {
    write_run_config(dir_.path() / "reference.toml", 0);
    write_run_config(dir_.path() / "run.toml", 2);
    timing_ = timed_run({test::ferry_binary(), "pretrain", "--config", (dir_.path() / "reference.toml").string(),
                         "--out", reference().string()},
                        reference() / "checkpoints", dir_.path() / "reference.log");
    if (HasFailure()) return;
    for (const auto& [step, path] : list_checkpoints(reference() / "checkpoints")) expected_[step] = read_checkpoint(path);
    ASSERT_EQ(expected_.size(), size_t(kSteps));
  }

  fs::path reference() const { return dir_.path() / "reference"; }
  std::vector<std::string> command(const fs::path& out) const {
    return {test::ferry_binary(), "pretrain", "--config", (dir_.path() / "run.toml").string(), "--out", out.string()};
  }

  void expect_same_as_reference(const Checkpoint& c, const std::string& what) {
    ASSERT_TRUE(expected_.count(c.step)) << what;
    const Checkpoint& e = expected_.at(c.step);
    auto same = [](const std::vector<float>& a, const std::vector<float>& b) {
      return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
    };
    EXPECT_TRUE(same(c.parameters, e.parameters)) << what;
    EXPECT_TRUE(same(c.adam_m, e.adam_m) && same(c.adam_v, e.adam_v)) << what;
    EXPECT_EQ(c.adam_steps, e.adam_steps) << what;
    for (const char* key : {"rng", "data", "schedule", "initial_val_loss"})
      EXPECT_EQ(c.state.at(key), e.state.at(key)) << what << ": state." << key;
  }

  // What a killed run left must be sound, and resuming it must end where the reference ended.
  void check_and_resume(const fs::path& out, const std::string& what) {
    const auto found = list_checkpoints(out / "checkpoints");
    for (const auto& [step, path] : found) {
      Checkpoint c;
      try {
        c = read_checkpoint(path);
      } catch (const std::exception& e) {
        ADD_FAILURE() << what << ": " << path << " has a checkpoint's name but does not load: " << e.what();
        continue;
      }
      EXPECT_EQ(c.step, step) << what;
      expect_same_as_reference(c, what + ", " + path.filename().string());
    }
    const auto r = test::run_command(test::ferry_binary() + " pretrain --config " + (dir_.path() / "run.toml").string() +
                                     " --out " + out.string() + " --resume auto");
    ASSERT_EQ(r.exit_code, 0) << what << "\n" << r.out;
    if (found.empty()) {
      EXPECT_EQ(r.out.find("resuming"), std::string::npos) << what << "\n" << r.out;
    } else {
      EXPECT_NE(r.out.find("resuming from " + found.back().second.string()), std::string::npos) << what << "\n" << r.out;
    }
    const Checkpoint last = read_checkpoint(checkpoint_file(out / "checkpoints", kSteps));
    expect_same_as_reference(last, what + ", after --resume auto");
    EXPECT_EQ(deterministic_metrics(out / "metrics.jsonl"), deterministic_metrics(reference() / "metrics.jsonl")) << what;
    // keep_checkpoints = 2; a third survives only when the kill fell between the last checkpoint's
    // rename and its pruning (the resumed run then has no step left to save and prune after).
    const size_t kept = list_checkpoints(out / "checkpoints").size();
    EXPECT_TRUE(kept == 2 || kept == 3) << what << ": " << kept << " checkpoints kept";
  }

  test::TempDir dir_;
  RunTiming timing_;
  std::map<int64_t, Checkpoint> expected_;
};

TEST_F(KilledPretrain, AtRandomMomentsNewestCompleteCheckpointResumesBitExactly) {
  std::mt19937_64 rng(test::test_seed());
  int killed = 0, mid_write = 0, no_checkpoint = 0;
  int trials = 0;
  RunTiming window = timing_;
  for (int i = 0; another_trial(i, killed); ++i, ++trials) {
    const fs::path out = dir_.path() / ("trial" + std::to_string(i));
    std::chrono::microseconds delay{};
    const bool was_killed =
        kill_at_random(spawn(command(out), dir_.path() / "trial.log"), [&] { return has_entries(out / "checkpoints"); },
                       window, rng, delay);
    killed += was_killed;
    if (!was_killed) shorten_after_a_miss(window);
    mid_write += temporaries_in(out / "checkpoints") > 0;
    no_checkpoint += list_checkpoints(out / "checkpoints").empty();
    check_and_resume(out, "trial " + std::to_string(i) + " (killed after " + std::to_string(delay.count()) + " us)");
    fs::remove_all(out);
    if (HasFatalFailure()) return;
  }
  std::printf("pretrain: %d trials, %d killed (%d inside a checkpoint write, %d before the first checkpoint), "
              "a whole run %.2f s, its first checkpoint write at %.2f s\n",
              trials, killed, mid_write, no_checkpoint, timing_.whole_s, timing_.first_write_s);
  EXPECT_GT(killed, 0);
}

TEST_F(KilledPretrain, AtEveryPhaseOfAWriteNewestCompleteCheckpointResumesBitExactly) {
  const uint64_t size = fs::file_size(reference() / "checkpoints" / "step_00000003.ckpt");
  const std::vector<std::string> points = {
      "created:step_00000003.ckpt",         "bytes=1:step_00000003.ckpt",
      "bytes=40:step_00000003.ckpt",        "bytes=" + std::to_string(size / 2) + ":step_00000003.ckpt",
      "bytes=" + std::to_string(size - 1) + ":step_00000003.ckpt",
      "synced:step_00000003.ckpt",          "renamed:step_00000003.ckpt",
      "committed:step_00000003.ckpt",       "deleted:step_00000001.ckpt",
      "created:step_00000001.ckpt",         "renamed:step_00000008.ckpt"};
  for (const std::string& point : points) {
    // As long a name as "reference": the run config in a checkpoint holds its out_dir, so the byte
    // offsets above land in this run's file where they land in the reference's.
    const fs::path out = dir_.path() / "phase_out";
    const std::string env = "FERRY_TEST_KILL_IN_WRITE=" + point;
    EXPECT_TRUE(wait_killed(spawn(command(out), dir_.path() / "phase.log", env))) << point;
    const bool in_write = point.rfind("committed", 0) != 0 && point.rfind("deleted", 0) != 0 &&
                          point.rfind("renamed", 0) != 0;
    EXPECT_EQ(temporaries_in(out / "checkpoints"), in_write ? 1u : 0u) << point;
    check_and_resume(out, point);
    fs::remove_all(out);
    if (HasFatalFailure()) return;
  }
}

// ---- ferry data prepare --------------------------------------------------------------------------

void write_text(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

class KilledPrepare : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(tokenizer::Gpt2Tokenizer::default_dir() / "encoder.json"))
      GTEST_SKIP() << "GPT-2 vocabulary not fetched; run scripts/fetch_assets.sh";
    const fs::path a = assets();
    std::string book;
    for (int i = 0; i < 400; ++i)
      book += "Paragraph " + std::to_string(i) + ": the whale was seen again off the starboard bow.\n\n";
    write_text(a / "gutenberg/gutenberg/melville-test.txt", book);
    write_text(a / "sotu/data/1790_george_washington_n.txt", "Fellow-Citizens of the Senate: I embrace...");
    nlohmann::json reviews = nlohmann::json::array();
    for (int i = 0; i < 40; ++i) reviews.push_back({{"t", "Review " + std::to_string(i) + ": a fine film."}, {"s", i % 2}});
    write_text(a / "imdb/reviews.json", reviews.dump());
    timing_ = timed_run(command(reference(), "1337"), reference(), dir_.path() / "reference.log");
    ASSERT_TRUE(prepare_to_end(other_seed(), "7"));
    ASSERT_GT(shards(reference()).size(), 20u);  // many writes to land in
  }

  fs::path assets() const { return dir_.path() / "assets"; }
  fs::path reference() const { return dir_.path() / "reference"; }
  fs::path other_seed() const { return dir_.path() / "other_seed"; }
  std::vector<std::string> command(const fs::path& out, const std::string& seed, bool force = false) const {
    std::vector<std::string> c = {test::ferry_binary(), "data", "prepare", "--assets", assets().string(),
                                  "--vocab", tokenizer::Gpt2Tokenizer::default_dir().string(), "--out", out.string(),
                                  "--shard-tokens", "128", "--val-fraction", "0.2", "--seed", seed};
    if (force) c.push_back("--force");
    return c;
  }
  bool prepare_to_end(const fs::path& out, const std::string& seed) {
    return !wait_killed(spawn(command(out, seed), dir_.path() / "prepare.log"));
  }
  static std::map<std::string, std::vector<char>> shards(const fs::path& dir) {
    std::map<std::string, std::vector<char>> s;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".bin") s[e.path().filename().string()] = test::file_bytes(e.path());
    return s;
  }

  test::TempDir dir_;
  RunTiming timing_;
};

TEST_F(KilledPrepare, NeverLeavesATornShardAndTheNextRunFinishesTheCorpus) {
  std::mt19937_64 rng(test::test_seed() + 1);
  const auto want = shards(reference()), old = shards(other_seed());
  int killed = 0, mid_write = 0;
  int trials = 0;
  RunTiming window = timing_;
  for (int i = 0; another_trial(i, killed); ++i, ++trials) {
    const std::string what = "trial " + std::to_string(i);
    const fs::path out = dir_.path() / "trial";
    // Odd trials rebuild over a finished corpus of another seed (its shards hold other tokens).
    const bool over_old = i % 2 == 1;
    if (over_old) fs::copy(other_seed(), out, fs::copy_options::recursive);
    std::chrono::microseconds delay{};
    // Over an old corpus the writing starts when prepare removes the old manifest.
    auto writing = [&] { return over_old ? !fs::exists(out / "manifest.json") : has_entries(out); };
    const bool was_killed = kill_at_random(spawn(command(out, "1337", over_old), dir_.path() / "trial.log"), writing,
                                           window, rng, delay);
    killed += was_killed;
    if (!was_killed) shorten_after_a_miss(window);
    mid_write += temporaries_in(out) > 0;
    const auto left = shards(out);
    for (const auto& [name, bytes] : left) {
      try {
        (void)data::read_shard(out / name, tokenizer::Gpt2Tokenizer::kVocabSize);  // what `ferry data check` does
      } catch (const UserError&) {
        continue;  // refused by the check: not taken for a shard
      }
      const bool new_one = want.count(name) && want.at(name) == bytes;
      const bool old_one = over_old && old.count(name) && old.at(name) == bytes;
      EXPECT_TRUE(new_one || old_one) << what << ": " << name << " passes the check but is neither run's shard";
    }
    // A manifest describes the folder it is in: the new corpus, or the old one not yet touched.
    if (fs::exists(out / "manifest.json"))
      EXPECT_TRUE(left == want || (over_old && left == old)) << what << ": a manifest beside an unfinished corpus";
    ASSERT_TRUE(prepare_to_end(out, "1337")) << what;
    EXPECT_TRUE(shards(out) == want) << what << ": the next prepare did not finish the corpus";
    fs::remove_all(out);
  }
  std::printf("data prepare: %d trials, %d killed (%d inside a shard or manifest write), a whole run %.2f s, "
              "its first write at %.2f s\n", trials, killed, mid_write, timing_.whole_s, timing_.first_write_s);
  EXPECT_GT(killed, 0);
}

}  // namespace
}  // namespace ferry
