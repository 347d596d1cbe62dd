// engine/cuda/kernel_args.h — a CUDA kernel's view of a KernelCall's tensors, for every file that
// attaches CUDA kernels to ops (engine/cuda/cuda_ops.cpp; parallel/tensor_parallel_ops_cuda.cpp):
// bf16 activations, fp32 statistics, i32 tokens, each refused with the op's name when a tensor
// comes in another dtype; a null tensor (an absent input or an output nobody reads) is nullptr.
#pragma once
#include "base/error.h"
#include "engine/op.h"
#include "kernels/dtype.h"

namespace ferry::gpu {

inline bf16* bf(const KernelCall& c, const Tensor& t) {
  if (!t) return nullptr;
  FERRY_CHECK(t.dtype == DType::BF16, "op ", c.node.op, " on CUDA takes bf16 tensors, got ", dtype_name(t.dtype),
              ": build the graph with dtype bf16 for the CUDA backend");
  return t.as<bf16>();
}
inline float* f32(const KernelCall& c, const Tensor& t) {
  if (!t) return nullptr;
  FERRY_CHECK(t.dtype == DType::F32, "op ", c.node.op, " on CUDA expects an fp32 statistic, got ",
              dtype_name(t.dtype));
  return t.as<float>();
}
inline const int32_t* i32(const KernelCall& c, size_t k) {
  if (k >= c.in.size() || !c.in[k]) return nullptr;
  FERRY_CHECK(c.in[k].dtype == DType::I32, "op ", c.node.op, " input ", k, " must be i32");
  return c.in[k].as<int32_t>();
}

}  // namespace ferry::gpu
