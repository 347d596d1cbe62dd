// tools/tasks/multitask.cpp
#include "tools/tasks/multitask.h"

#include "base/error.h"
#include "engine/finetune/model_file.h"
#include "engine/train/step.h"
#include "parallel/job_world.h"
#include "parallel/step_factory.h"
#include "tools/convert/load_model.h"

namespace ferry::tasks {

MultiTaskModel::MultiTaskModel(TaskModel base, std::vector<HeadSpec> heads,
                               std::vector<std::vector<std::string>> tag_names, std::vector<float> weights)
    : base_(std::move(base)), heads_(std::move(heads)), weights_(std::move(weights)) {
  if (base_.techniques.lora.rank > 0) user_error("--task multi: LoRA adapters are not supported with several heads");
  for (size_t k = 0; k < heads_.size(); ++k) {
    TaskModel t = base_;
    t.meta.task = heads_[k].task;
    t.meta.head = heads_[k];
    t.meta.tag_names = k < tag_names.size() ? tag_names[k] : std::vector<std::string>{};
    tasks_.push_back(std::move(t));
  }
  (void)graph();  // validates the tasks and weights now, with a clear error
}

MultiTaskGraph MultiTaskModel::graph() const {
  TrunkOptions o;
  o.batch = base_.batch;
  o.seq_len = base_.meta.seq_len;
  return build_multitask_graph(base_.meta.config, heads_, weights_, o);
}

MultiTaskInputs MultiTaskModel::inputs() const {
  const MultiTaskGraph g = graph();
  MultiTaskInputs in;
  in.tokens = g.trunk.tokens;
  in.lengths = g.trunk.lengths;
  in.labels = g.labels;
  for (const HeadSpec& h : heads_) in.kinds.push_back(h.kind);
  return in;
}

std::unique_ptr<StepRunner> MultiTaskModel::make_step(Backend& backend, int unfrozen_top) const {
  TrunkOptions o;  // the graph at the per-rank batch (base_.batch is the global one)
  o.batch = rows_per_rank(base_.batch, base_.layout);
  o.seq_len = base_.meta.seq_len;
  MultiTaskGraph g = build_multitask_graph(base_.meta.config, heads_, weights_, o);
  apply_techniques(g.graph, base_.meta.config, base_.techniques, unfrozen_top);
  return parallel::make_task_runner(std::move(g.graph), base_.meta.config, base_.adamw, base_.layout,
                                    parallel::job_world(), backend);
}

std::vector<float> MultiTaskModel::initial_parameters(uint64_t seed, const std::string& pretrained, int* loaded) const {
  const MultiTaskGraph g = graph();
  std::vector<double> init;
  init_gpt_params(g.graph, base_.meta.config, seed, init);
  std::vector<float> flat(init.begin(), init.end());
  const int n = pretrained.empty() ? 0 : load_params_by_name(convert::load_any_model_file(pretrained), g.graph, flat);
  if (loaded) *loaded = n;
  return flat;
}

std::vector<float> MultiTaskModel::task_parameters(size_t k, const std::vector<float>& multi) const {
  const MultiTaskGraph mg = graph();
  const TaskGraph tg = tasks_[k].graph(false, 0);
  std::vector<float> out(static_cast<size_t>(tg.graph.param_count()));
  for (const ParamInfo& p : tg.graph.params) {
    const int i = mg.graph.param_index(p.name);
    FERRY_CHECK(i >= 0, "multi-task graph lacks ", p.name);
    std::copy_n(multi.begin() + static_cast<std::ptrdiff_t>(mg.graph.params[i].offset), p.numel,
                out.begin() + static_cast<std::ptrdiff_t>(p.offset));
  }
  return out;
}

std::vector<int> MultiTaskModel::draw_row_tasks(std::mt19937_64& rng) const {
  std::discrete_distribution<int> pick(weights_.begin(), weights_.end());
  std::vector<int> rows(static_cast<size_t>(base_.batch));
  for (int& r : rows) r = pick(rng);
  return rows;
}

}  // namespace ferry::tasks
