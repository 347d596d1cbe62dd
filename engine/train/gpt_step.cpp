// engine/train/gpt_step.cpp
#include "engine/train/gpt_step.h"

#include "base/error.h"
#include "engine/model/gpt.h"
#include "parallel/job_world.h"
#include "parallel/parallel_step.h"

namespace ferry {

GptStep make_gpt_step(const RunConfig& c, Backend& backend) {
  const TrainConfig& t = c.train;
  backend.select_attention(t.attention);
  GptBuildOptions opt;
  opt.batch = t.batch_size;
  opt.seq_len = t.seq_len;
  // The CUDA backend runs bf16 graphs (fp32 master weights live in its optimizer); the CPU runs fp32.
  opt.dtype = backend.device() == Device::CUDA ? DType::BF16 : DType::F32;
  opt.loss_scale = 1.0f / static_cast<float>(t.grad_accum);
  GptGraph model = build_gpt(c.model, opt);
  GptStep s;
  s.tokens = model.tokens;
  s.targets = model.targets;
  s.n_params = model.graph.param_count();
  s.params = model.graph.params;
  const size_t memory_limit = static_cast<size_t>(t.memory_limit_gb * (1ull << 30));
  parallel::Communicator& world = parallel::job_world();
  if (world.size() > 1 || c.parallel.tp != 1 || c.parallel.pp != 1 || c.parallel.zero1) {
    // A rank of a tp × dp × pp grid (parallel/parallel_step.h): train.batch_size rows per DP rank
    // and micro-batch; the batches are keyed by the single-process graph's input ids above.
    parallel::ParallelLayout layout;
    layout.tp = c.parallel.tp;
    layout.pp = c.parallel.pp;
    layout.zero1 = c.parallel.zero1;
    auto runner = std::make_unique<parallel::ParallelGptStep>(c.model, t.batch_size, t.seq_len, t.grad_accum, t.adamw,
                                                              layout, world, backend, memory_limit);
    FERRY_CHECK(runner->tokens() == s.tokens && runner->targets() == s.targets, "input ids differ between builds");
    s.runner = std::move(runner);
    return s;
  }
  s.runner = std::make_unique<LocalStep>(std::move(model.graph), backend, t.adamw, memory_limit);
  return s;
}

}  // namespace ferry
