// parallel/pipeline.h — pipeline parallelism: the forward graph cut into stages, joined by
// point-to-point messages, run on a 1F1B schedule (parallel/runner.cpp).
//
// The GPT blocks are split into pp contiguous runs of layers; the embedding goes with the first
// stage, the final norm, the head and the loss with the last. A stage graph
//   - holds the model parameters its nodes use (the tied wte sits on the first and the last stage;
//     the runner all-reduces its gradient between the two),
//   - receives the activations that cross into it as parameters ("recv.<name>"): written before
//     each forward, and their gradients, accumulated by autodiff like any parameter's, are what
//     it sends back; they follow the model parameters in the flat buffer and are never updated,
//   - ends, unless it is the last stage, in a pipe_send node: forward a no-op with a scalar output
//     that autodiff starts from, backward hands each sent activation the gradient that came back
//     from the next stage (a graph input, "dgrad.<name>").
#pragma once
#include <map>
#include <vector>

#include "engine/graph.h"

namespace ferry::parallel {

void register_pipeline_ops();

// Which stage runs each forward node: layers split as evenly as possible (earlier stages take the
// extra layers), a node goes to the latest stage of its inputs and of the layers of its parameters.
// Throws UserError when n_layer < pp.
std::vector<int> stage_of_nodes(const Graph& g, int n_layer, int pp);
// The layer range [first, last) of each stage.
std::vector<std::pair<int, int>> stage_layers(int n_layer, int pp);

struct PipelineStage {
  Graph graph;                    // forward only
  std::vector<int> param_source;  // per model parameter: its index in the source graph
  int n_model_params = 0;         // params [0, n) are the model's; the rest hold received activations
  std::vector<int> recv;          // parameter values written from the previous stage, in message order
  std::vector<int> send;          // values sent to the next stage, in message order
  std::vector<int> send_grad;     // inputs that receive the gradients of `send` from the next stage
  std::map<int, int> value_map;   // source value → stage value (inputs, the loss)
};

PipelineStage cut_pipeline_stage(const Graph& source, const std::vector<int>& node_stage, int stage, int pp);

}  // namespace ferry::parallel
