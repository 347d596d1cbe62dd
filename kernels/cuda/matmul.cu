// kernels/cuda/matmul.cu — CUDA twin of kernels/cpu/matmul.cpp (contract in kernels/matmul.h),
// through cuBLASLt.
//
// Row-major ↔ column-major: a row-major [R, K] matrix is a column-major [K, R] one, so
//   out  [N,OC]  = inp·Wᵀ      is  outᵀ [OC,N]  = op(W_cm[IC,OC])ᵀ · inp_cm[IC,N]     (m=OC, n=N,  k=IC)
//   dinp [N,IC]  = dout·W      is  dinpᵀ[IC,N]  = W_cm[IC,OC] · dout_cm[OC,N]           (m=IC, n=N,  k=OC)
//   dW   [OC,IC] += doutᵀ·inp  is  dWᵀ [IC,OC] += inp_cm[IC,N] · dout_cm[OC,N]ᵀ         (m=IC, n=OC, k=N)
// The bias vector has length m in the first product: cuBLASLt broadcasts it along columns, which
// are rows of the row-major output, as wanted. Bias gradient: our own two-launch column sum (fp32
// partials per row chunk, summed in chunk order) because the contract accumulates (+=) and must be
// deterministic; its partials live in the cuBLASLt workspace, which is free once the product before
// it on the stream is done.
#include <cublasLt.h>

#include <algorithm>

#include <map>
#include <tuple>

#include "kernels/cuda/common.cuh"
#include "kernels/gelu.h"
#include "kernels/matmul.h"

namespace ferry::kernels::cuda {

namespace {

// The bias gradient: per row chunk, the column sums of dout in fp32 (one partial row per chunk),
// then the partials summed in chunk order. The chunking depends on N, OC and the workspace only —
// never on the device — so the sums, and their bits, are the same everywhere. Up to 256 chunks of
// at least 16 rows: at N = 16384 and OC = 768 that is 96 column groups × 256 chunks of 64 rows.
constexpr int kBiasMaxChunks = 256;
constexpr int kBiasMinRows = 16;
constexpr int kBiasThreads = 256;

int bias_grad_chunks(int N, int OC, size_t workspace_bytes) {
  const size_t fit = workspace_bytes / (sizeof(float) * size_t(OC));
  return static_cast<int>(std::max<size_t>(1, std::min<size_t>({size_t(kBiasMaxChunks), fit, ceil_div(N, kBiasMinRows)})));
}

// Eight columns per thread, one 16-byte load per row: for OC % 8 == 0 and a 16-byte aligned dout
// (every row then starts on the 16-byte grid).
__global__ void __launch_bounds__(kBiasThreads)
    bias_grad_partial_vec_kernel(float* partials, const __nv_bfloat16* dout, int N, int OC, int rows_per_chunk) {
  const int g = blockIdx.x * blockDim.x + threadIdx.x;
  if (g >= OC / 8) return;
  const int r0 = blockIdx.y * rows_per_chunk, r1 = min(N, r0 + rows_per_chunk);
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int r = r0; r < r1; ++r) {
    const Bf16x8 x = load8(dout + size_t(r) * OC + 8 * g);
#pragma unroll
    for (int k = 0; k < 8; ++k) s[k] += __bfloat162float(x.v[k]);
  }
  float* out = partials + size_t(blockIdx.y) * OC + 8 * g;
  *reinterpret_cast<float4*>(out) = make_float4(s[0], s[1], s[2], s[3]);
  *reinterpret_cast<float4*>(out + 4) = make_float4(s[4], s[5], s[6], s[7]);
}

// One column per thread, 2-byte loads: a ragged OC (rows then start off the 16-byte grid every few
// rows — a classifier's 2 or 3 classes, a tag set's 9) or a misaligned dout.
__global__ void __launch_bounds__(kBiasThreads)
    bias_grad_partial_kernel(float* partials, const __nv_bfloat16* dout, int N, int OC, int rows_per_chunk) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= OC) return;
  const int r0 = blockIdx.y * rows_per_chunk, r1 = min(N, r0 + rows_per_chunk);
  float s = 0.0f;
  for (int r = r0; r < r1; ++r) s += __bfloat162float(dout[size_t(r) * OC + c]);
  partials[size_t(blockIdx.y) * OC + c] = s;
}

__global__ void __launch_bounds__(kBiasThreads)
    bias_grad_reduce_kernel(__nv_bfloat16* dbias, const float* partials, int OC, int chunks) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= OC) return;
  float s = 0.0f;
#pragma unroll 8
  for (int k = 0; k < chunks; ++k) s += partials[size_t(k) * OC + c];
  dbias[c] = __float2bfloat16_rn(__bfloat162float(dbias[c]) + s);
}

// One column-major product D[m,n] = α·op(A)·op(B) + β·C (C = D) with an optional epilogue.
struct Product {
  cublasOperation_t ta, tb;
  int m, n, k;
  const void* a;
  int lda;
  const void* b;
  int ldb;
  void* d;
  int ldd;
  float beta;
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;
  void* aux = nullptr;
  int ldaux = 0;
};

using AlgoKey = std::tuple<int, int, int, int, int, int, int, int, int, int, bool>;

}  // namespace

struct Matmul::State {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  std::map<AlgoKey, cublasLtMatmulHeuristicResult_t> algos;  // absent result cached as state 0 too
  std::map<AlgoKey, bool> unsupported;

  // Returns false when cuBLASLt has no algorithm for this product (e.g. an epilogue it does not
  // offer for these types): the caller then takes the unfused path.
  bool run(const Product& p, cudaStream_t stream) {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
    FERRY_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    FERRY_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &p.ta, sizeof(p.ta)));
    FERRY_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &p.tb, sizeof(p.tb)));
    FERRY_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &p.epilogue, sizeof(p.epilogue)));
    if (p.bias)
      FERRY_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof(p.bias)));
    if (p.aux) {
      const int64_t ldaux = p.ldaux;
      FERRY_CUBLAS_CHECK(
          cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &p.aux, sizeof(p.aux)));
      FERRY_CUBLAS_CHECK(
          cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ldaux, sizeof(ldaux)));
    }
    const bool a_t = p.ta == CUBLAS_OP_T, b_t = p.tb == CUBLAS_OP_T;
    FERRY_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, a_t ? p.k : p.m, a_t ? p.m : p.k, p.lda));
    FERRY_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, b_t ? p.n : p.k, b_t ? p.k : p.n, p.ldb));
    FERRY_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&ld, CUDA_R_16BF, p.m, p.n, p.ldd));

    const AlgoKey key{p.ta, p.tb, p.m, p.n, p.k, p.lda, p.ldb, p.ldd, static_cast<int>(p.epilogue), p.ldaux,
                      p.beta != 0.0f};
    bool ok = true;
    auto found = algos.find(key);
    if (found == algos.end() && !unsupported.count(key)) {
      cublasLtMatmulPreference_t pref = nullptr;
      FERRY_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
      FERRY_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                              &workspace_bytes, sizeof(workspace_bytes)));
      cublasLtMatmulHeuristicResult_t result{};
      int count = 0;
      const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle, desc, la, lb, ld, ld, pref, 1, &result, &count);
      cublasLtMatmulPreferenceDestroy(pref);
      if (st == CUBLAS_STATUS_SUCCESS && count > 0) {
        found = algos.emplace(key, result).first;
      } else {
        unsupported[key] = true;
      }
    }
    if (found == algos.end()) {
      ok = false;
    } else {
      const float alpha = 1.0f;
      FERRY_CUBLAS_CHECK(cublasLtMatmul(handle, desc, &alpha, p.a, la, p.b, lb, &p.beta, p.d, ld, p.d, ld,
                                        &found->second.algo, workspace, workspace_bytes, stream));
    }
    cublasLtMatrixLayoutDestroy(ld);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatmulDescDestroy(desc);
    return ok;
  }
};

Matmul::Matmul(size_t workspace_bytes) : state_(new State) {
  try {
    FERRY_CUBLAS_CHECK(cublasLtCreate(&state_->handle));
    FERRY_CUDA_CHECK(cudaMalloc(&state_->workspace, workspace_bytes));
    state_->workspace_bytes = workspace_bytes;
  } catch (...) {
    if (state_->handle) cublasLtDestroy(state_->handle);
    delete state_;
    throw;
  }
}

Matmul::~Matmul() {
  cudaFree(state_->workspace);
  cublasLtDestroy(state_->handle);
  delete state_;
}

void Matmul::forward(bf16* out, bf16* gelu_pre, const bf16* inp, const bf16* weight, const bf16* bias, int N, int IC,
                     int OC, cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(N > 0 && IC > 0 && OC > 0, "positive sizes");
  Product p{CUBLAS_OP_T, CUBLAS_OP_N, OC, N, IC, weight, IC, inp, IC, out, OC, 0.0f};
  if (gelu_pre) {
    p.epilogue = bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
    p.aux = gelu_pre;
    p.ldaux = OC;
  } else if (bias) {
    p.epilogue = CUBLASLT_EPILOGUE_BIAS;
  }
  p.bias = bias;
  if (state_->run(p, stream)) return;
  // No fused algorithm: product (+ bias) into the pre-activation, then GELU on our side.
  FERRY_CUDA_REQUIRE(gelu_pre != nullptr, "cuBLASLt found no algorithm for a plain product");
  Product plain = p;
  plain.epilogue = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  plain.aux = nullptr;
  plain.ldaux = 0;
  plain.d = gelu_pre;
  FERRY_CUDA_REQUIRE(state_->run(plain, stream), "cuBLASLt found no algorithm for a plain product");
  gelu_forward(out, gelu_pre, size_t(N) * OC, stream);
}

void Matmul::backward(bf16* dinp, bf16* dweight, bf16* dbias, const bf16* dout, const bf16* inp, const bf16* weight,
                      const bf16* inp_gelu_pre, int N, int IC, int OC, cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(N > 0 && IC > 0 && OC > 0, "positive sizes");
  if (dbias) {
    FERRY_CUDA_REQUIRE(size_t(OC) * sizeof(float) <= state_->workspace_bytes, "workspace too small");
    float* partials = static_cast<float*>(state_->workspace);
    const int chunks = bias_grad_chunks(N, OC, state_->workspace_bytes);
    const int rows_per_chunk = static_cast<int>(ceil_div(N, chunks));
    if (OC % 8 == 0 && reinterpret_cast<uintptr_t>(dout) % 16 == 0) {
      bias_grad_partial_vec_kernel<<<dim3(ceil_div(OC / 8, kBiasThreads), chunks), kBiasThreads, 0, stream>>>(
          partials, dev(dout), N, OC, rows_per_chunk);
      FERRY_CUDA_CHECK_LAUNCH("bias_grad_partial_vec_kernel");
    } else {
      bias_grad_partial_kernel<<<dim3(ceil_div(OC, kBiasThreads), chunks), kBiasThreads, 0, stream>>>(
          partials, dev(dout), N, OC, rows_per_chunk);
      FERRY_CUDA_CHECK_LAUNCH("bias_grad_partial_kernel");
    }
    bias_grad_reduce_kernel<<<ceil_div(OC, kBiasThreads), kBiasThreads, 0, stream>>>(dev(dbias), partials, OC, chunks);
    FERRY_CUDA_CHECK_LAUNCH("bias_grad_reduce_kernel");
  }
  if (dweight) {
    Product p{CUBLAS_OP_N, CUBLAS_OP_T, IC, OC, N, inp, IC, dout, OC, dweight, IC, 1.0f};
    FERRY_CUDA_REQUIRE(state_->run(p, stream), "cuBLASLt found no algorithm for dweight");
  }
  if (dinp) {
    Product p{CUBLAS_OP_N, CUBLAS_OP_N, IC, N, OC, weight, IC, dout, OC, dinp, IC, 0.0f};
    if (inp_gelu_pre) {
      p.epilogue = CUBLASLT_EPILOGUE_DGELU;
      p.aux = const_cast<bf16*>(inp_gelu_pre);
      p.ldaux = IC;
      if (state_->run(p, stream)) return;
      p.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
      p.aux = nullptr;
      p.ldaux = 0;
    }
    FERRY_CUDA_REQUIRE(state_->run(p, stream), "cuBLASLt found no algorithm for dinp");
    if (inp_gelu_pre) gelu_backward(dinp, inp_gelu_pre, dinp, size_t(N) * IC, stream);
  }
}

}  // namespace ferry::kernels::cuda
