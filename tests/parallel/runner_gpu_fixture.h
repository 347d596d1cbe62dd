// tests/parallel/runner_gpu_fixture.h — the model, batches and start that the runner's CUDA tests
// (runner_gpu_mpi_test: DP through MPI staging; runner_nccl_gpu_test: one NCCL rank) train, so
// both compare against the same one-process step.
#pragma once
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "engine/model/gpt.h"
#include "parallel/step_factory.h"

namespace ferry::test::runner_gpu {

constexpr int kB = 2, kT = 32, kMicro = 2, kSteps = 4;  // rows per rank, tokens, micro-batches, steps
constexpr float kLr = 1e-3f;

inline GptConfig tiny() {
  GptConfig c;
  c.preset = "runner-gpu-test";
  c.n_layer = 2;
  c.n_head = 4;
  c.n_embd = 64;
  c.vocab_size = 128;
  c.max_seq_len = kT;
  return c;
}

// Rows [first, first + rows) of global micro-batch k of step s: a noisy counter, so the loss moves.
inline Batch batch_of(int s, int k, int first, int rows) {
  static const GptGraph ids = build_gpt(tiny(), GptBuildOptions{});
  std::vector<int32_t> x, y;
  for (int r = first; r < first + rows; ++r) {
    std::mt19937 rng(static_cast<uint32_t>(7919 * s + 131 * k + r));
    std::vector<int32_t> seq(kT + 1);
    int32_t v = static_cast<int32_t>(rng() % 128);
    for (auto& t : seq) t = v = (v + 1 + static_cast<int32_t>(rng() % 4 == 0 ? rng() % 7 : 0)) % 128;
    x.insert(x.end(), seq.begin(), seq.end() - 1);
    y.insert(y.end(), seq.begin() + 1, seq.end());
  }
  Batch b;
  b.inputs.emplace_back(ids.tokens, std::move(x));
  b.inputs.emplace_back(ids.targets, std::move(y));
  return b;
}

// kSteps steps of kMicro micro-batches, each this rank's `rows` rows from row first_row.
inline std::vector<StepResult> train(StepRunner& step, int first_row, int rows) {
  std::vector<StepResult> out;
  for (int s = 0; s < kSteps; ++s) {
    std::vector<Batch> micro;
    for (int k = 0; k < kMicro; ++k) micro.push_back(batch_of(s, k, first_row, rows));
    out.push_back(step.train(micro, kLr));
  }
  return out;
}

inline std::vector<float> initial() {
  const GptGraph g = build_gpt(tiny(), GptBuildOptions{});
  std::vector<double> init;
  init_gpt_params(g.graph, tiny(), 99, init);
  return {init.begin(), init.end()};
}

// The one-process bf16 step over `rows` rows per micro-batch, started from initial().
inline std::unique_ptr<parallel::Runner> one_process(Backend& gpu, int rows) {
  GptBuildOptions o;
  o.batch = rows;
  o.seq_len = kT;
  o.dtype = DType::BF16;
  o.loss_scale = 1.0f / kMicro;
  auto one = parallel::make_local_runner(build_gpt(tiny(), o).graph, gpu, AdamWConfig{});
  one->set_parameters(initial());
  return one;
}

}  // namespace ferry::test::runner_gpu
