// tools/tasks/model_setup.cpp
#include "tools/tasks/model_setup.h"

#include "base/error.h"
#include "engine/finetune/model_file.h"
#include "engine/train/step.h"
#include "parallel/job_world.h"
#include "parallel/rank_grid.h"
#include "parallel/step_factory.h"
#include "tools/convert/load_model.h"

namespace ferry::tasks {

TaskGraph TaskModel::graph(bool for_training, int lora_rank) const {
  TrunkOptions o;
  o.batch = batch;
  o.seq_len = meta.seq_len;
  o.lora = techniques.lora;
  o.lora.rank = lora_rank;
  (void)for_training;
  return build_task_graph(meta.config, meta.head, o);
}

StepRunner::DataShard data_shard_of(const parallel::ParallelLayout& layout) {
  parallel::Communicator& world = parallel::job_world();
  const parallel::RankGrid grid = parallel::RankGrid::from_tp_pp(layout.tp, layout.pp, world.size());
  return {grid.coord_of(world.rank()).dp, grid.shape().dp};
}

int rows_per_rank(int batch, const parallel::ParallelLayout& layout) {
  const int dp = data_shard_of(layout).size;
  if (batch % dp != 0)
    user_error("--batch-size ", batch, " does not split evenly over ", dp, " data-parallel ranks");
  return batch / dp;
}

std::unique_ptr<StepRunner> TaskModel::make_step(Backend& backend, int unfrozen_top) const {
  TaskModel rank = *this;
  rank.batch = rows_per_rank(batch, layout);
  TaskGraph g = rank.graph(true, techniques.lora.rank);
  apply_techniques(g.graph, meta.config, techniques, unfrozen_top);
  return parallel::make_task_runner(std::move(g.graph), meta.config, adamw, layout, parallel::job_world(), backend);
}

std::unique_ptr<Inference> TaskModel::make_inference(Backend& backend) const {
  TaskGraph g = graph(false, 0);
  const int logits = g.logits;
  return std::make_unique<Inference>(std::move(g.graph), logits, backend);
}

std::vector<float> TaskModel::initial_parameters(uint64_t seed, const std::string& pretrained, int* loaded) const {
  const TaskGraph g = graph(true, techniques.lora.rank);
  std::vector<double> init;
  init_gpt_params(g.graph, meta.config, seed, init);
  std::vector<float> flat(init.begin(), init.end());
  int n = 0;
  if (!pretrained.empty()) n = load_params_by_name(convert::load_any_model_file(pretrained), g.graph, flat);
  init_lora_params(g.graph, seed, flat);
  if (loaded) *loaded = n;
  return flat;
}

std::vector<float> TaskModel::exportable(const std::vector<float>& training_params) const {
  if (techniques.lora.rank == 0) return training_params;
  const TaskGraph with = graph(true, techniques.lora.rank);
  std::vector<float> merged = training_params;
  merge_lora(with.graph, techniques.lora, merged);
  const TaskGraph without = graph(false, 0);
  std::vector<float> out(static_cast<size_t>(without.graph.param_count()));
  for (const ParamInfo& p : without.graph.params) {
    const int i = with.graph.param_index(p.name);
    const ParamInfo& src = with.graph.params[i];
    std::copy(merged.begin() + static_cast<std::ptrdiff_t>(src.offset),
              merged.begin() + static_cast<std::ptrdiff_t>(src.offset + src.numel),
              out.begin() + static_cast<std::ptrdiff_t>(p.offset));
  }
  return out;
}

}  // namespace ferry::tasks
