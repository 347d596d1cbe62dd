// parallel/tensor_parallel.h — Megatron-style tensor parallelism as a rewrite of the GPT graph.
//
// For TP rank r of t, every forward node of the single-process graph is rewritten:
//   attn.qkv   column-parallel: rows of q, k and v for heads [r·H/t, (r+1)·H/t); the input passes
//              through tp_copy (identity forward, all-reduce of its gradient backward)
//   attention  H/t heads
//   attn.proj  row-parallel: columns of those heads; tp_reduce (all-reduce forward, identity
//              backward) joins the partial sums; the bias lives on TP rank 0 only (added once)
//   mlp.fc     column-parallel (rows [r·4C/t, …)), input through tp_copy
//   mlp.proj   row-parallel, as attn.proj
//   embedding  vocabulary-parallel: rank r holds rows [r·R, (r+1)·R) of wte (R = vocab_shard_rows:
//              ⌈V/t⌉ rounded up to a multiple of 8, so any vocabulary splits; rows at or beyond V are
//              padding, as in the single-process graph), looks up the tokens in its range (zero
//              elsewhere), rank 0 adds the positions; tp_reduce joins them
//   lm_head    the (tied) vocabulary shard times the tp_copy of the final norm: logits [.., R]
//   loss       vocab_parallel_cross_entropy over the shard's real columns: max and exp-sums
//              all-reduced over the group; padding columns get a zero gradient
//   LoRA       a column-parallel matrix's adapter: A (down) replicated, B (up) split like the
//              matrix's rows, its input through tp_copy, so x·Aᵀ·Bᵀ lands in the same output
//              columns; a row-parallel matrix's: A split like the matrix's columns (partial sums
//              joined by tp_reduce), B replicated and added after the matrix's own tp_reduce
// Layernorms stay replicated (their gradients are equal on every TP rank, since every gradient
// that reaches them went through a tp_copy all-reduce).
// The conjugate collectives are graph nodes (parallel/tensor_parallel_ops.cpp), registered here.
#pragma once
#include <map>
#include <vector>

#include "engine/graph.h"
#include "engine/model/gpt.h"
#include "parallel/param_layout.h"

namespace ferry::parallel {

void register_tensor_parallel_ops();
// Their CUDA kernels (parallel/tensor_parallel_ops_cuda.cpp; nothing in a build without CUDA),
// attached by register_tensor_parallel_ops.
void attach_tensor_parallel_cuda_kernels();

struct TensorParallelGraph {
  Graph graph;                       // forward only (autodiff runs later, on the stage)
  std::vector<ParamOrigin> origins;  // per parameter of `graph`
  std::map<int, int> value_map;      // source value id → rewritten value id
};

// Throws UserError naming model.n_head / --tp when the model cannot be split t ways.
void check_tensor_parallel(const GptConfig& c, int t);

// Vocabulary rows per TP rank: ⌈vocab_size / t⌉ rounded up to kVocabShardAlign, so that each
// shard's logits rows are 16-byte multiples in bf16 (cuBLASLt's leading-dimension alignment).
inline constexpr int kVocabShardAlign = 8;
int vocab_shard_rows(int vocab_size, int t);

// `source`: a forward GPT graph from build_gpt. group: the collective group of the TP ranks
// (collective_groups.h; any number when the graph is only planned).
TensorParallelGraph tensor_parallel_rewrite(const Graph& source, const GptConfig& c, int rank, int t, int group);

}  // namespace ferry::parallel
