// kernels/cuda/gelu.cu — GELU (tanh form) and the elementwise add: CUDA twins of kernels/cpu/gelu.cpp
// and kernels/cpu/elementwise.cpp. Pure streaming: 128-bit accesses when aligned, scalar tail.
#include "kernels/cuda/common.cuh"
#include "kernels/elementwise.h"
#include "kernels/gelu.h"

namespace ferry::kernels::cuda {

namespace {

constexpr float kSqrt2OverPi = 0.79788456080286535588f;
constexpr int kThreads = 256;

__device__ __forceinline__ float gelu(float x) {
  const float u = kSqrt2OverPi * (x + 0.044715f * x * x * x);
  return 0.5f * x * (1.0f + tanhf(u));
}

__device__ __forceinline__ float gelu_grad(float x) {
  const float u = kSqrt2OverPi * (x + 0.044715f * x * x * x);
  const float th = tanhf(u);
  const float du = kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * x * x);
  return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
}

// Applies f elementwise on bf16: vector part (n8 packs of 8) then the scalar tail.
struct GeluForward {
  __device__ float operator()(float x, float) const { return gelu(x); }
};
struct GeluBackward {
  __device__ float operator()(float x, float g) const { return gelu_grad(x) * g; }
};
struct Add {
  __device__ float operator()(float a, float b) const { return a + b; }
};

template <typename F>
__global__ void map2_bf16_vec(__nv_bfloat16* out, const __nv_bfloat16* x, const __nv_bfloat16* y, size_t n8, F f) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n8; i += size_t(gridDim.x) * blockDim.x) {
    const Bf16x8 a = load8_stream(x + 8 * i);
    Bf16x8 b{};
    if (y) b = load8_stream(y + 8 * i);
    Bf16x8 r;
#pragma unroll
    for (int k = 0; k < 8; ++k) r.v[k] = __float2bfloat16_rn(f(__bfloat162float(a.v[k]), __bfloat162float(b.v[k])));
    store8(out + 8 * i, r);
  }
}

template <typename F>
__global__ void map2_bf16_scalar(__nv_bfloat16* out, const __nv_bfloat16* x, const __nv_bfloat16* y, size_t begin,
                                 size_t n, F f) {
  for (size_t i = begin + blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float b = y ? __bfloat162float(y[i]) : 0.0f;
    out[i] = __float2bfloat16_rn(f(__bfloat162float(x[i]), b));
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

template <typename F>
void map2_bf16(__nv_bfloat16* out, const __nv_bfloat16* x, const __nv_bfloat16* y, size_t n, F f, cudaStream_t s,
               const char* name) {
  if (n == 0) return;
  size_t vec = 0;
  if (aligned16(out) && aligned16(x) && (!y || aligned16(y))) vec = n / 8;
  // Enough blocks to fill any current GPU several times over; grid-stride covers the rest.
  const unsigned max_blocks = 132 * 16;
  if (vec) {
    const unsigned blocks = std::min<unsigned>(ceil_div(vec, kThreads), max_blocks);
    map2_bf16_vec<<<blocks, kThreads, 0, s>>>(out, x, y, vec, f);
    FERRY_CUDA_CHECK_LAUNCH("map2_bf16_vec");
  }
  if (vec * 8 < n) {
    const unsigned blocks = std::min<unsigned>(ceil_div(n - vec * 8, kThreads), max_blocks);
    map2_bf16_scalar<<<blocks, kThreads, 0, s>>>(out, x, y, vec * 8, n, f);
    FERRY_CUDA_CHECK_LAUNCH(name);
  }
}

__global__ void add_f32(float* out, const float* a, const float* b, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    out[i] = a[i] + b[i];
}

}  // namespace

void gelu_forward(bf16* out, const bf16* inp, size_t n, cudaStream_t stream) {
  map2_bf16(dev(out), dev(inp), nullptr, n, GeluForward{}, stream, "gelu_forward");
}

// Argument order of map2: x = inp, y = dout; dinp may alias dout because each element is read
// before it is written by the same thread.
void gelu_backward(bf16* dinp, const bf16* inp, const bf16* dout, size_t n, cudaStream_t stream) {
  map2_bf16(dev(dinp), dev(inp), dev(dout), n, GeluBackward{}, stream, "gelu_backward");
}

void add(bf16* out, const bf16* a, const bf16* b, size_t n, cudaStream_t stream) {
  map2_bf16(dev(out), dev(a), dev(b), n, Add{}, stream, "add_bf16");
}

void add(float* out, const float* a, const float* b, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  add_f32<<<std::min<unsigned>(ceil_div(n, kThreads), 132 * 16), kThreads, 0, stream>>>(out, a, b, n);
  FERRY_CUDA_CHECK_LAUNCH("add_f32");
}

}  // namespace ferry::kernels::cuda
