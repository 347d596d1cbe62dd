// kernels/adamw_norm_share.h — the global gradient norm of kernels/adamw.h over the counted
// segments of a segment table (frozen parameters never count; under tensor parallelism each rank
// counts its share), in two halves with the sum over the ranks between them. The adamw family's
// second contract header (kernels/cuda/adamw.cu implements both; tests in
// tests/emulator/adamw_emu_test.cpp); the CUDA device step's norm for every layout.
//
//   grad_norm_squared  *sum_squares = Σ g² (fp64, device) over the element ranges [begin, end) of
//                      `ranges` (device memory, taken in order: the counted segments of a segment
//                      table, so a parameter replicated over the ranks is counted by one of them),
//                      with grad_norm's fixed grid and fixed summation tree (bitwise reproducible)
//   (the caller sums *sum_squares over the ranks)
//   grad_norm_finish   *norm = √(*sum_squares) and *clip_scale by grad_norm's rule
#pragma once
#include <cstddef>

#include "kernels/adamw.h"

namespace ferry::kernels::cuda {

struct NormRange {
  size_t begin;
  size_t end;
};

// Workspace: grad_norm_workspace_bytes().
template <typename G>
void grad_norm_squared(double* sum_squares, const G* grads, const NormRange* ranges, int n_ranges, void* workspace,
                       size_t workspace_bytes, cudaStream_t stream);
void grad_norm_finish(float* norm, float* clip_scale, const double* sum_squares, float max_norm, cudaStream_t stream);

}  // namespace ferry::kernels::cuda
