// parallel/step_factory.h — where a step is composed: the one place that sees the model builders
// (engine/), the graph rewrites of tensor and pipeline parallelism and the runner (parallel/), so
// that nothing below it needs to know how a step runs.
//
// A factory builds the task graph once (at the per-rank micro-batch shape), hands it to
// prepare_rank_graph — the TP rewrite, the PP cut and, under DP, label counts for every
// cross_entropy node, each a pass over the graph — and gives the RankGraph to the one Runner
// (parallel/runner.h). One process is the one-rank case of the same path.
#pragma once
#include <memory>
#include <vector>

#include "engine/backend.h"
#include "engine/model/gpt.h"
#include "engine/train/run_config.h"
#include "parallel/runner.h"

namespace ferry::parallel {

// This rank's share of `full` (a forward graph of the model `model`: GPT, encoder, any head) on the
// grid of `comms`: TP shards (tp > 1), the pipeline stage (pp > 1), label counts (dp > 1 and
// label_counts). Throws UserError naming the field when the model cannot be split that way.
RankGraph prepare_rank_graph(const Graph& full, const GptConfig& model, RunnerComms& comms, bool label_counts);

// A one-process runner for a built graph (the engine's tests, benchmarks, tools).
std::unique_ptr<Runner> make_local_runner(Graph g, Backend& backend, AdamWConfig adamw, size_t memory_limit = 0);

// A GPT pretraining step on `world`: batch rows per DP rank and micro-batch, micro_batches per step.
std::unique_ptr<Runner> make_gpt_runner(const GptConfig& model, int batch, int seq_len, int micro_batches,
                                        AdamWConfig adamw, ParallelLayout layout, Communicator& world,
                                        Backend& backend, size_t memory_limit = 0);

// Any task graph on `world` (fine-tuning): `full` built at the per-rank batch; its cross_entropy
// nodes divide by the global count of labelled rows under DP.
std::unique_ptr<Runner> make_task_runner(Graph full, const GptConfig& model, AdamWConfig adamw, ParallelLayout layout,
                                         Communicator& world, Backend& backend, size_t memory_limit = 0);

// The step runner for a GPT run config (engine/train/step.h's GptStep): one process, or a rank of
// the job's world when the launcher or RunConfig::parallel asks for more.
GptStep make_gpt_step(const RunConfig& c, Backend& backend);

}  // namespace ferry::parallel
