// engine/train/gpt_step.cpp
#include "engine/train/gpt_step.h"

#include "engine/error.h"
#include "engine/model/gpt.h"

namespace ferry {

GptStep make_gpt_step(const RunConfig& c, Backend& backend) {
  if (c.parallel.tp != 1 || c.parallel.pp != 1 || c.parallel.zero1)
    user_error("parallel.tp/pp/zero1: tensor, pipeline and ZeRO layouts are not available in this build yet");
  const TrainConfig& t = c.train;
  GptBuildOptions opt;
  opt.batch = t.batch_size;
  opt.seq_len = t.seq_len;
  opt.dtype = DType::F32;
  opt.loss_scale = 1.0f / static_cast<float>(t.grad_accum);
  GptGraph model = build_gpt(c.model, opt);
  GptStep s;
  s.tokens = model.tokens;
  s.targets = model.targets;
  s.n_params = model.graph.param_count();
  s.params = model.graph.params;
  s.runner = std::make_unique<LocalStep>(std::move(model.graph), backend, t.adamw,
                                         static_cast<size_t>(t.memory_limit_gb * (1ull << 30)));
  return s;
}

}  // namespace ferry
