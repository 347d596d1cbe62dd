// tests/engine/bench_train_test.cpp — `ferry bench train` on the CPU backend: the same code path as
// on a GPU (timing on the backend's queue, the measured matmul ceiling, memory figures, the per-op
// profile), on a micro preset so that it takes a second.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/support/support.h"

namespace ferry {
namespace {

using nlohmann::json;

TEST(BenchTrain, CpuMicroPrintsEveryFigureAndWritesJson) {
  test::TempDir dir;
  const auto path = dir.path() / "bench.json";
  const auto r = test::run_command(test::ferry_binary() +
                                   " bench train --device cpu --model micro --batch 2 --seq-len 32 --steps 3 "
                                   "--warmup 1 --profile --json " +
                                   path.string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* field : {"matmul ceiling", "ms/step", "tokens/s", "MFU", "memory", "launches", "profile"})
    EXPECT_NE(r.out.find(field), std::string::npos) << "missing '" << field << "' in:\n" << r.out;

  std::ifstream in(path);
  const json j = json::parse(in);
  EXPECT_EQ(j["backend"], "cpu");
  EXPECT_GT(j["matmul_ceiling_tflops"].get<double>(), 0.0);
  ASSERT_EQ(j["runs"].size(), 1u);
  const json& run = j["runs"][0];
  EXPECT_EQ(run["status"], "ok");
  EXPECT_EQ(run["batch"], 2);
  EXPECT_EQ(run["seq_len"], 32);
  const double ms = run["ms_per_step"].get<double>();
  EXPECT_GT(ms, 0.0);
  EXPECT_LE(run["ms_min"].get<double>(), ms);
  EXPECT_GE(run["ms_max"].get<double>(), ms);
  // tokens/s and MFU follow from the median and the model's FLOPs.
  EXPECT_NEAR(run["tokens_per_s"].get<double>(), 2 * 32 / (ms * 1e-3), 1e-6 * run["tokens_per_s"].get<double>());
  const double mfu = run["tokens_per_s"].get<double>() * run["flops_per_token"].get<double>() /
                     (j["matmul_ceiling_tflops"].get<double>() * 1e12);
  EXPECT_NEAR(run["mfu"].get<double>(), mfu, 1e-9);
  EXPECT_GT(run["mfu"].get<double>(), 0.0);
  // Random tokens over 256 symbols: the first loss is near ln 256.
  EXPECT_NEAR(run["loss_first"].get<double>(), std::log(256.0), 0.5);
  EXPECT_EQ(run["planned_bytes"].get<size_t>(),
            run["arena_bytes"].get<size_t>() + run["param_bytes"].get<size_t>() + run["grad_bytes"].get<size_t>() +
                run["optimizer_bytes"].get<size_t>());
  EXPECT_GT(run["graph_ops"].get<size_t>(), 10u);

  // The profile accounts for every node once, and its shares sum to one.
  double share = 0;
  size_t nodes = 0;
  for (const json& op : run["profile"]["ops"]) {
    share += op["share"].get<double>();
    if (op["op"] != "optimizer (grad norm + AdamW)") nodes += op["nodes"].get<size_t>();
  }
  EXPECT_NEAR(share, 1.0, 1e-9);
  EXPECT_EQ(nodes, run["graph_ops"].get<size_t>());
}

TEST(BenchTrain, SweepSkipsNothingOnTinyShapesAndExtendsPositions) {
  const auto r = test::run_command(test::ferry_binary() +
                                   " bench train --device cpu --model nano --batch 1 --seq-len 16 --steps 1 --sweep");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* shape : {"B=1 T=16", "B=8 T=16", "B=32 T=16", "B=8 T=32", "B=16 T=32"})
    EXPECT_NE(r.out.find(shape), std::string::npos) << "missing " << shape << " in:\n" << r.out;
  EXPECT_NE(r.out.find("positions extended"), std::string::npos) << r.out;  // nano has 16 positions
}

TEST(BenchTrain, BadArgumentsAreOneLineErrors) {
  for (const std::string args : {"--device cpu --model micro --steps 0", "--device cpu --model nosuchmodel",
                                  "--device tpu --model micro", "--device cpu --model micro --batch 0"}) {
    const auto r = test::run_command(test::ferry_binary() + " bench train " + args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.out;
  }
}

}  // namespace
}  // namespace ferry
