// parallel/tensor_parallel_ops_cuda.cpp — the CUDA kernels of the tensor-parallel ops
// (parallel/tensor_parallel_ops.cpp defines them, with their CPU kernels and backward rules):
//   tp_copy                           a device copy when not in place
//   tp_all_reduce, tp_reduce          bf16 widened to fp32, summed over the group, rounded back once
//   vocab_parallel_embedding(_backward)   kernels/embedding.h's vocabulary-parallel twins
//   vocab_parallel_cross_entropy      kernels/cross_entropy.h's three passes, the fp32 row maxima
//                                     and exp-sums all-reduced over the group between them; losses
//                                     and mean fp32
// Collectives go through parallel/device_collectives.h (issue_all_reduce, on the group's queues):
// on NCCL forked onto its stream and joined back by events, no host wait (capturable); on a host
// communicator staged through pinned memory (eager steps only).
#include "parallel/tensor_parallel.h"

#if FERRY_WITH_CUDA
#include <algorithm>

#include "engine/cuda/cuda_context.h"
#include "engine/cuda/kernel_args.h"
#include "engine/ops/ops.h"
#include "kernels/cross_entropy.h"
#include "kernels/cuda_check.h"
#include "kernels/embedding.h"
#include "parallel/device_collectives.h"
#endif

namespace ferry::parallel {

#if FERRY_WITH_CUDA

namespace {

namespace kc = kernels::cuda;
using gpu::bf;
using gpu::f32;
using gpu::i32;

gpu::CudaBackend& be(KernelCall& c) { return gpu::cuda_backend(c.backend); }
GroupCollectives group(KernelCall& c) { return group_collectives(c.backend, c.node.attrs.i("group")); }
size_t aligned(size_t bytes) { return (bytes + 255) / 256 * 256; }

void copy_if_apart(KernelCall& c) {
  if (c.out[0].data != c.in[0].data)
    FERRY_CUDA_CHECK(cudaMemcpyAsync(c.out[0].data, c.in[0].data, c.in[0].nbytes(), cudaMemcpyDeviceToDevice,
                                     be(c).stream()));
}

void all_reduce(KernelCall& c) {
  copy_if_apart(c);
  const size_t n = static_cast<size_t>(c.out[0].numel());
  if (c.out[0].dtype == ferry::DType::F32)
    return group(c).all_reduce(f32(c, c.out[0]), n, DType::f32, ReduceOp::sum);
  float* scratch = static_cast<float*>(be(c).workspace(n * sizeof(float)));
  group(c).all_reduce_bf16(bf(c, c.out[0]), n, scratch, ReduceOp::sum);
}

}  // namespace

void attach_tensor_parallel_cuda_kernels() {
  set_op_kernel("tp_copy", Device::CUDA, copy_if_apart);
  set_op_kernel("tp_all_reduce", Device::CUDA, all_reduce);
  set_op_kernel("tp_reduce", Device::CUDA, all_reduce);

  set_op_kernel("vocab_parallel_embedding", Device::CUDA, [](KernelCall& c) {
    const auto& s = c.in[0].shape;
    kc::vocab_parallel_embedding_forward(bf(c, c.out[0]), i32(c, 0), bf(c, c.in[1]), bf(c, c.in[2]), int(s[0]),
                                         int(s[1]), int(c.in[1].shape[1]), c.node.attrs.i("vocab_start"),
                                         int(c.in[1].shape[0]), be(c).stream());
  });
  set_op_kernel("vocab_parallel_embedding_backward", Device::CUDA, [](KernelCall& c) {
    const auto& s = c.in[1].shape;
    const int B = int(s[0]), T = int(s[1]), C = c.node.attrs.i("channels"), rows = c.node.attrs.i("vocab");
    bf16* dwte = bf(c, c.out[0]);
    const size_t ws = dwte ? kc::vocab_parallel_embedding_backward_workspace_bytes(B, T, C, rows) : 0;
    kc::vocab_parallel_embedding_backward(dwte, bf(c, c.out[1]), bf(c, c.in[0]), i32(c, 1), B, T, C,
                                          c.node.attrs.i("vocab_start"), rows, ws ? be(c).workspace(ws) : nullptr,
                                          ws, be(c).stream());
  });

  set_op_kernel("vocab_parallel_cross_entropy", Device::CUDA, [](KernelCall& c) {
    int N, L;
    std::tie(N, L) = rows_cols(c.in[0].shape);
    const int start = c.node.attrs.i("vocab_start");
    const int classes = c.node.attrs.i("classes", 0);
    const int valid = classes > 0 ? std::clamp(classes - start, 0, L) : L;
    const int32_t ignore = c.node.attrs.i("ignore_index", -1);
    const cudaStream_t s = be(c).stream();
    // One scratch block: row maxima [N] and (exp-sum, target logit) pairs [2N], fp32, then the
    // finish's own workspace.
    const size_t stats = aligned(3 * size_t(N) * sizeof(float)), ws = kc::cross_entropy_workspace_bytes();
    char* scratch = static_cast<char*>(be(c).workspace(stats + ws));
    float* row_max = reinterpret_cast<float*>(scratch);
    float* sums = row_max + N;
    const bf16* logits = bf(c, c.in[0]);
    kc::vocab_parallel_cross_entropy_row_max(row_max, logits, N, valid, L, s);
    group(c).all_reduce(row_max, size_t(N), DType::f32, ReduceOp::max);
    kc::vocab_parallel_cross_entropy_sums(sums, logits, i32(c, 1), row_max, N, valid, L, start, ignore, s);
    group(c).all_reduce(sums, 2 * size_t(N), DType::f32, ReduceOp::sum);
    kc::vocab_parallel_cross_entropy_finish(f32(c, c.out[0]), f32(c, c.out[1]), c.training ? bf(c, c.out[2]) : nullptr,
                                            logits, i32(c, 1), row_max, sums, N, valid, L, start,
                                            static_cast<float>(c.node.attrs.get("scale", 1.0)), ignore,
                                            scratch + stats, ws, s, i32(c, 2));
  });
}

#else

void attach_tensor_parallel_cuda_kernels() {}

#endif

}  // namespace ferry::parallel
