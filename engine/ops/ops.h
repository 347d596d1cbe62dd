// engine/ops/ops.h — the built-in op families, one file each; register_builtin_ops() calls them all.
#pragma once
#include <tuple>
#include <utility>

#include "base/error.h"
#include "engine/op.h"

namespace ferry {

void register_builtin_ops();

void register_embedding_ops();
void register_layernorm_ops();
void register_matmul_ops();
void register_gelu_ops();
void register_attention_ops();
void register_cross_entropy_ops();
void register_elementwise_ops();
void register_pooling_ops();

// Runs f(T{}) with T the C++ type of a floating dtype on the CPU backend.
template <typename F>
void dispatch_float(DType t, F&& f) {
  switch (t) {
    case DType::F32: f(float{}); return;
    case DType::F64: f(double{}); return;
    default: FERRY_CHECK(false, "CPU kernels take f32 or f64, not ", dtype_name(t));
  }
}

// The dtype of per-row statistics, log-sum-exps and losses: the activations' own dtype, except fp32
// under bf16 activations (the CUDA kernels keep them in fp32; rounding them to bf16 would cost
// accuracy in every backward that reads them).
inline DType statistics_dtype(DType activations) {
  return activations == DType::BF16 ? DType::F32 : activations;
}

// The classes of a cross_entropy node whose logits rows have `columns` columns: its "classes"
// attribute (a padded vocabulary's real size), or all of them (engine/ops/cross_entropy.cpp).
int cross_entropy_classes(const Node& n, int64_t columns);

// Rows and channels of a tensor whose last dimension is the channel dimension. Callers unpack it
// with std::tie, not a structured binding: clang before 16 cannot capture a binding in a lambda,
// and the fuzz build (tests/fuzz) compiles every op with Debian's clang 14.
inline std::pair<int, int> rows_cols(const Shape& s) {
  const int cols = static_cast<int>(s.back());
  return {static_cast<int>(numel(s) / cols), cols};
}

}  // namespace ferry
