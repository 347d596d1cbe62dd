// benchmarks/kernels_bench.cu — every CUDA kernel of kernels/ at GPT-2 124M/350M shapes and the
// attention shapes of ANCHORS.md, each beside the two ceilings measured in the same run on the same
// card: device-to-device copy bandwidth (bytes read + written) and the cuBLASLt bf16 8192³ rate.
//
// Method (see /work/.library/device/METHOD.md): random inputs (never zeros), warm-up, CUDA events
// around each repetition, median of ≥ 20; inputs rotate over enough copies that one repetition does
// not find the previous one's data in L2. Attention rows run ferry's kernel and, in a build with
// cuDNN, cuDNN's fused attention on the same inputs; --attention-choice PATH writes the verdict
// `attention = auto` reads (engine/attention_choice.h): cuDNN's forward and backward checked
// against the CPU reference on this card (poisoned workspace, causal and padded, both head dims),
// and the two backends' times. Speed alone never makes the verdict cuDNN.
// The embedding backward runs on uniform ids and on real-corpus ids (--tokens: a token shard or a
// folder of them, default data/corpus from `ferry data prepare`; Zipf ids when there is none), into
// a table of the padded vocabulary's rows as the trainer's (50304 for GPT-2).
// Usage: kernels_bench [--json PATH] [--reps N] [--quick] [--attention-choice PATH] [--tokens PATH]
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/cuda_check.h"
#include "kernels/embedding.h"
#include "kernels/gelu.h"
#include "kernels/layernorm.h"
#include "kernels/matmul.h"
#if FERRY_WITH_CUDNN
#include "engine/attention_choice.h"
#include "kernels/cuda/attention_cudnn.h"
#endif

namespace {

namespace gpu = ferry::kernels::cuda;
using ferry::bf16;

// ---- device memory with random contents -----------------------------------------------------

__device__ uint32_t hash32(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return static_cast<uint32_t>(x);
}
__global__ void fill_bf16(__nv_bfloat16* p, size_t n, uint64_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = __float2bfloat16_rn(lo + (hi - lo) * (hash32(seed * 0x9e3779b97f4a7c15ULL + i) * 2.3283064e-10f));
}
__global__ void fill_f32(float* p, size_t n, uint64_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = lo + (hi - lo) * (hash32(seed * 0x9e3779b97f4a7c15ULL + i) * 2.3283064e-10f);
}
__global__ void fill_ids(int32_t* p, size_t n, uint64_t seed, int V) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = static_cast<int32_t>(hash32(seed * 0x9e3779b97f4a7c15ULL + i) % uint32_t(V));
}

uint64_t g_seed = 1;

struct Buffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  explicit Buffer(size_t b) : bytes(b) { FERRY_CUDA_CHECK(cudaMalloc(&ptr, std::max<size_t>(b, 16))); }
  ~Buffer() { cudaFree(ptr); }
  Buffer(const Buffer&) = delete;
  template <typename T>
  T* as() const { return static_cast<T*>(ptr); }
};

std::unique_ptr<Buffer> bf16_buffer(size_t n, float lo = -1.0f, float hi = 1.0f) {
  auto b = std::make_unique<Buffer>(n * sizeof(bf16));
  fill_bf16<<<1024, 256>>>(b->as<__nv_bfloat16>(), n, g_seed++, lo, hi);
  FERRY_CUDA_CHECK_LAUNCH("fill_bf16");
  return b;
}
std::unique_ptr<Buffer> f32_buffer(size_t n, float lo = -1.0f, float hi = 1.0f) {
  auto b = std::make_unique<Buffer>(n * sizeof(float));
  fill_f32<<<1024, 256>>>(b->as<float>(), n, g_seed++, lo, hi);
  FERRY_CUDA_CHECK_LAUNCH("fill_f32");
  return b;
}
std::unique_ptr<Buffer> id_buffer(size_t n, int V) {
  auto b = std::make_unique<Buffer>(n * sizeof(int32_t));
  fill_ids<<<1024, 256>>>(b->as<int32_t>(), n, g_seed++, V);
  FERRY_CUDA_CHECK_LAUNCH("fill_ids");
  return b;
}

// ---- timing ---------------------------------------------------------------------------------

int g_reps = 20;
size_t g_l2_bytes = 50u << 20;

// Copies of the inputs so that consecutive repetitions do not hit in L2: enough to span 3 × L2.
int rotation(size_t input_bytes) {
  if (input_bytes == 0) return 1;
  return static_cast<int>(std::clamp<size_t>((3 * g_l2_bytes + input_bytes - 1) / input_bytes, 1, 8));
}

float median_ms(const std::function<void(int)>& run) {
  cudaEvent_t a, b;
  FERRY_CUDA_CHECK(cudaEventCreate(&a));
  FERRY_CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i) run(i);
  FERRY_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> t;
  for (int i = 0; i < g_reps; ++i) {
    FERRY_CUDA_CHECK(cudaEventRecord(a));
    run(i);
    FERRY_CUDA_CHECK(cudaEventRecord(b));
    FERRY_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    FERRY_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Result {
  std::string name, shape;
  float ms;
  double bytes, flops;  // 0 when not the measure of this kernel
};
std::vector<Result> g_results;
double g_copy_tbps = 0, g_gemm_tflops = 0;
#if FERRY_WITH_CUDNN
std::unique_ptr<gpu::CudnnAttention> g_cudnn;  // null when cuDNN cannot run attention here
std::string g_cudnn_summary = "built without cuDNN";
double g_attention_ferry_ms = 0, g_attention_cudnn_ms = 0;  // fwd + bwd over the attention shapes
bool g_attention_cudnn_failed = false;
#else
std::string g_cudnn_summary = "built without cuDNN";
#endif

void report(const std::string& name, const std::string& shape, float ms, double bytes, double flops) {
  g_results.push_back({name, shape, ms, bytes, flops});
  if (flops > 0) {
    const double tf = flops / ms / 1e9;
    std::printf("%-34s %-26s %9.4f ms %8.1f TFLOP/s %6.1f%% of gemm\n", name.c_str(), shape.c_str(), ms, tf,
                100 * tf / g_gemm_tflops);
  } else if (bytes > 0) {
    const double tb = bytes / ms / 1e9;
    std::printf("%-34s %-26s %9.4f ms %8.3f TB/s    %6.1f%% of copy\n", name.c_str(), shape.c_str(), ms, tb,
                100 * tb / g_copy_tbps);
  } else {
    std::printf("%-34s %-26s %9.4f ms\n", name.c_str(), shape.c_str(), ms);
  }
  std::fflush(stdout);
}

// ---- ceilings -------------------------------------------------------------------------------

void ceilings(gpu::Matmul& mm) {
  const size_t bytes = size_t(1) << 30;
  Buffer src(bytes), dst(bytes);
  FERRY_CUDA_CHECK(cudaMemset(src.ptr, 0x3c, bytes));
  const float copy_ms =
      median_ms([&](int) { FERRY_CUDA_CHECK(cudaMemcpyAsync(dst.ptr, src.ptr, bytes, cudaMemcpyDeviceToDevice)); });
  g_copy_tbps = 2.0 * bytes / copy_ms / 1e9;
  const int n = 8192;
  auto a = bf16_buffer(size_t(n) * n), b = bf16_buffer(size_t(n) * n);
  Buffer c(size_t(n) * n * sizeof(bf16));
  const float gemm_ms = median_ms(
      [&](int) { mm.forward(c.as<bf16>(), nullptr, a->as<bf16>(), b->as<bf16>(), nullptr, n, n, n, nullptr); });
  g_gemm_tflops = 2.0 * n * n * double(n) / gemm_ms / 1e9;
  std::printf("ceilings: device copy %.3f TB/s (read + write), cuBLASLt bf16 8192^3 %.1f TFLOP/s\n", g_copy_tbps,
              g_gemm_tflops);
}

// ---- kernels --------------------------------------------------------------------------------

std::string dims(std::initializer_list<long> d) {
  std::string s;
  for (long x : d) s += (s.empty() ? "" : "x") + std::to_string(x);
  return s;
}

void bench_layernorm(int N, int C) {
  const size_t NC = size_t(N) * C;
  const int R = rotation(2 * NC * sizeof(bf16));
  std::vector<std::unique_ptr<Buffer>> a, b, dout;
  for (int r = 0; r < R; ++r) a.push_back(bf16_buffer(NC)), b.push_back(bf16_buffer(NC)), dout.push_back(bf16_buffer(NC));
  auto w = bf16_buffer(C, 0.5f, 1.5f), bias = bf16_buffer(C), dw = bf16_buffer(C), db = bf16_buffer(C);
  Buffer resid(NC * 2), out(NC * 2), mean(N * 4), rstd(N * 4), dinp(NC * 2);
  const size_t ws_bytes = gpu::layernorm_backward_workspace_bytes(N, C);
  Buffer ws(ws_bytes);
  const std::string shape = dims({N, C});
  // Plain layernorm: the bytes PyTorch's figure counts (read x, write y).
  float ms = median_ms([&](int i) {
    gpu::residual_layernorm_forward(nullptr, out.as<bf16>(), mean.as<float>(), rstd.as<float>(), a[i % R]->as<bf16>(),
                                    nullptr, w->as<bf16>(), bias->as<bf16>(), N, C, nullptr);
  });
  report("layernorm_fwd", shape, ms, 2.0 * NC * 2, 0);
  ms = median_ms([&](int i) {
    gpu::residual_layernorm_forward(resid.as<bf16>(), out.as<bf16>(), mean.as<float>(), rstd.as<float>(),
                                    a[i % R]->as<bf16>(), b[i % R]->as<bf16>(), w->as<bf16>(), bias->as<bf16>(), N, C,
                                    nullptr);
  });
  report("layernorm_residual_fwd", shape, ms, 4.0 * NC * 2, 0);
  // Backward: read dout, inp; write dinp (PyTorch's count), plus the parameter gradients.
  ms = median_ms([&](int i) {
    gpu::layernorm_backward(dinp.as<bf16>(), dw->as<bf16>(), db->as<bf16>(), dout[i % R]->as<bf16>(), nullptr,
                            a[i % R]->as<bf16>(), w->as<bf16>(), mean.as<float>(), rstd.as<float>(), N, C, ws.ptr,
                            ws_bytes, nullptr);
  });
  report("layernorm_bwd", shape, ms, 3.0 * NC * 2, 0);
}

void bench_attention(int B, int NH, int T, int HS) {
  const int C = NH * HS;
  const size_t qkv_n = size_t(B) * T * 3 * C, out_n = size_t(B) * T * C;
  const int R = rotation(qkv_n * 2);
  std::vector<std::unique_ptr<Buffer>> qkv;
  for (int r = 0; r < R; ++r) qkv.push_back(bf16_buffer(qkv_n));
  auto dout = bf16_buffer(out_n);
  Buffer out(out_n * 2), lse(size_t(B) * NH * T * 4), dqkv(qkv_n * 2);
  const size_t ws_bytes = gpu::attention_backward_workspace_bytes(B, T, NH);
  Buffer ws(ws_bytes);
  const double flops = 4.0 * B * NH * double(T) * T * HS / 2;  // causal
  const std::string shape = "B" + std::to_string(B) + "H" + std::to_string(NH) + "T" + std::to_string(T) + "D" +
                            std::to_string(HS);
  float ms = median_ms([&](int i) {
    gpu::attention_forward(out.as<bf16>(), lse.as<float>(), qkv[i % R]->as<bf16>(), nullptr, B, T, NH, HS, true,
                           nullptr);
  });
  report("attention_fwd_causal", shape, ms, 0, flops);
  gpu::attention_forward(out.as<bf16>(), lse.as<float>(), qkv[0]->as<bf16>(), nullptr, B, T, NH, HS, true, nullptr);
  ms = median_ms([&](int) {
    gpu::attention_backward(dqkv.as<bf16>(), dout->as<bf16>(), qkv[0]->as<bf16>(), out.as<bf16>(), lse.as<float>(),
                            nullptr, B, T, NH, HS, true, ws.ptr, ws_bytes, nullptr);
  });
  report("attention_bwd_causal", shape, ms, 0, 2.5 * flops);
  const float ferry_ms = g_results[g_results.size() - 2].ms + ms;
#if FERRY_WITH_CUDNN
  // cuDNN's fused attention on the same inputs; a shape it cannot run prints why and counts as
  // not measured (the verdict then stays ferry).
  if (!g_cudnn) return;
  try {
    const size_t cws_bytes = std::max(g_cudnn->forward_workspace_bytes(B, T, NH, HS, true, false),
                                      g_cudnn->backward_workspace_bytes(B, T, NH, HS, true, false));
    Buffer cws(cws_bytes);
    ms = median_ms([&](int i) {
      g_cudnn->forward(out.as<bf16>(), lse.as<float>(), qkv[i % R]->as<bf16>(), nullptr, B, T, NH, HS, true, cws.ptr,
                       cws_bytes, nullptr);
    });
    report("attention_fwd_causal_cudnn", shape, ms, 0, flops);
    const float cudnn_fwd_ms = ms;
    g_cudnn->forward(out.as<bf16>(), lse.as<float>(), qkv[0]->as<bf16>(), nullptr, B, T, NH, HS, true, cws.ptr,
                     cws_bytes, nullptr);
    ms = median_ms([&](int) {
      g_cudnn->backward(dqkv.as<bf16>(), dout->as<bf16>(), qkv[0]->as<bf16>(), out.as<bf16>(), lse.as<float>(),
                        nullptr, B, T, NH, HS, true, cws.ptr, cws_bytes, nullptr);
    });
    report("attention_bwd_causal_cudnn", shape, ms, 0, 2.5 * flops);
    g_attention_ferry_ms += ferry_ms;
    g_attention_cudnn_ms += cudnn_fwd_ms + ms;
  } catch (const std::exception& e) {
    std::printf("%-34s %-26s cuDNN: %s\n", "attention_cudnn", shape.c_str(), e.what());
    g_attention_cudnn_failed = true;
  }
#else
  (void)ferry_ms;
#endif
}

#if FERRY_WITH_CUDNN
// cuDNN's attention against the CPU reference (fp64 on the same bf16 inputs), each call in a
// workspace poisoned with NaN, at the shapes the gpu test checks most: ragged T, key padding, both
// head dims. Returns "passed" or one line saying what failed, for forward and backward separately.
struct CudnnCheck {
  std::string forward = "not run", backward = "not run";
};

double rel_error(const std::vector<double>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

std::vector<double> bf16_grid(size_t n, std::mt19937_64& rng, double lo, double hi) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(n);
  for (auto& x : v) x = ferry::bf16_to_float(ferry::float_to_bf16(static_cast<float>(d(rng))));
  return v;
}

template <typename T>
std::vector<T> download(const Buffer& b, size_t n) {
  std::vector<T> h(n);
  FERRY_CUDA_CHECK(cudaDeviceSynchronize());
  FERRY_CUDA_CHECK(cudaMemcpy(h.data(), b.ptr, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

CudnnCheck check_cudnn_attention(gpu::CudnnAttention& cudnn) {
  constexpr double kTolerance = 1e-2;  // tests/kernels/cuda_test_util.h: kBf16Tolerance
  struct Case {
    int B, T, NH, HS;
    bool padded;
  };
  const Case cases[] = {{2, 128, 2, 64, false}, {1, 77, 3, 64, false}, {3, 77, 2, 128, true}, {1, 333, 1, 128, false}};
  CudnnCheck r;
  std::string fwd_fail, bwd_fail;
  std::mt19937_64 rng(20261126);
  try {
    for (const Case& c : cases) {
      const int C = c.NH * c.HS, BT = c.B * c.T;
      const std::string where = " at B" + std::to_string(c.B) + "T" + std::to_string(c.T) + "H" +
                                std::to_string(c.NH) + "D" + std::to_string(c.HS) + (c.padded ? " padded" : "");
      const auto qkv = bf16_grid(size_t(BT) * 3 * C, rng, -2.0, 2.0), dout = bf16_grid(size_t(BT) * C, rng, -1.0, 1.0);
      std::vector<int32_t> lengths(c.B);
      for (int b = 0; b < c.B; ++b) lengths[b] = 1 + static_cast<int>(rng() % c.T);
      const int32_t* len = c.padded ? lengths.data() : nullptr;
      std::vector<double> out_ref(size_t(BT) * C), lse_ref(size_t(c.B) * c.NH * c.T), dqkv_ref(qkv.size());
      ferry::kernels::cpu::attention_forward(out_ref.data(), lse_ref.data(), qkv.data(), len, c.B, c.T, c.NH, c.HS, true);
      ferry::kernels::cpu::attention_backward(dqkv_ref.data(), dout.data(), qkv.data(), out_ref.data(), lse_ref.data(),
                                              len, c.B, c.T, c.NH, c.HS, true);
      auto upload_bf16 = [](const std::vector<double>& x) {
        std::vector<bf16> h(x.size());
        for (size_t i = 0; i < x.size(); ++i) h[i] = ferry::float_to_bf16(static_cast<float>(x[i]));
        auto b = std::make_unique<Buffer>(h.size() * sizeof(bf16));
        FERRY_CUDA_CHECK(cudaMemcpy(b->ptr, h.data(), b->bytes, cudaMemcpyHostToDevice));
        return b;
      };
      auto d_qkv = upload_bf16(qkv), d_dout = upload_bf16(dout);
      Buffer d_out(out_ref.size() * 2), d_lse(lse_ref.size() * 4), d_dqkv(qkv.size() * 2), d_len(c.B * 4);
      FERRY_CUDA_CHECK(cudaMemcpy(d_len.ptr, lengths.data(), d_len.bytes, cudaMemcpyHostToDevice));
      const int32_t* d_len_ptr = c.padded ? d_len.as<int32_t>() : nullptr;
      const size_t ws_bytes = std::max(cudnn.forward_workspace_bytes(c.B, c.T, c.NH, c.HS, true, c.padded),
                                       cudnn.backward_workspace_bytes(c.B, c.T, c.NH, c.HS, true, c.padded));
      Buffer ws(ws_bytes);
      for (Buffer* b : {&d_out, &d_lse, &d_dqkv, &ws}) FERRY_CUDA_CHECK(cudaMemset(b->ptr, 0xFF, b->bytes));
      cudnn.forward(d_out.as<bf16>(), d_lse.as<float>(), d_qkv->as<bf16>(), d_len_ptr, c.B, c.T, c.NH, c.HS, true,
                    ws.ptr, ws_bytes, nullptr);
      std::vector<double> out(out_ref.size());
      const auto out_bf16 = download<bf16>(d_out, out.size());
      for (size_t i = 0; i < out.size(); ++i) out[i] = ferry::bf16_to_float(out_bf16[i]);
      const double e_out = rel_error(out, out_ref);
      if (fwd_fail.empty() && !(e_out <= kTolerance))
        fwd_fail = "failed: out relative error " + std::to_string(e_out) + where;
      FERRY_CUDA_CHECK(cudaMemset(ws.ptr, 0xFF, ws.bytes));
      cudnn.backward(d_dqkv.as<bf16>(), d_dout->as<bf16>(), d_qkv->as<bf16>(), d_out.as<bf16>(), d_lse.as<float>(),
                     d_len_ptr, c.B, c.T, c.NH, c.HS, true, ws.ptr, ws_bytes, nullptr);
      const auto dqkv_bf16 = download<bf16>(d_dqkv, qkv.size());
      for (int which = 0; which < 3; ++which) {
        std::vector<double> got, ref;
        for (int i = 0; i < BT; ++i)
          for (int k = 0; k < C; ++k) {
            const size_t at = size_t(i) * 3 * C + size_t(which) * C + k;
            got.push_back(ferry::bf16_to_float(dqkv_bf16[at]));
            ref.push_back(dqkv_ref[at]);
          }
        const double e = rel_error(got, ref);
        if (bwd_fail.empty() && !(e <= kTolerance))
          bwd_fail = std::string("failed: d") + "QKV"[which] + " relative error " + std::to_string(e) + where;
      }
    }
    r.forward = fwd_fail.empty() ? ferry::kCheckPassed : fwd_fail;
    r.backward = bwd_fail.empty() ? ferry::kCheckPassed : bwd_fail;
  } catch (const std::exception& e) {
    r.forward = fwd_fail.empty() ? std::string("failed: ") + e.what() : fwd_fail;
    r.backward = bwd_fail.empty() ? std::string("failed: ") + e.what() : bwd_fail;
  }
  return r;
}
#endif

// The trainer's shape: V classes in rows of the padded vocabulary (ld = 50304 for GPT-2,
// engine/model/gpt.h); the padding columns are neither read nor counted in the bytes.
void bench_cross_entropy(int N, int V, int ld) {
  const size_t n = size_t(N) * ld;
  auto logits = bf16_buffer(n, -4.0f, 4.0f);
  Buffer dlogits(n * 2), losses(N * 4), mean(16), ws(gpu::cross_entropy_workspace_bytes());
  auto targets = id_buffer(N, V);
  const std::string shape = dims({N, V}) + (ld != V ? " ld" + std::to_string(ld) : "");
  const double bytes = double(N) * V * 2;
  float ms = median_ms([&](int) {
    gpu::cross_entropy_forward_backward(losses.as<float>(), mean.as<float>(), dlogits.as<bf16>(), logits->as<bf16>(),
                                        targets->as<int32_t>(), N, V, ld, 1.0f, -1, ws.ptr, ws.bytes, nullptr);
  });
  report("cross_entropy_fwd_bwd", shape, ms, 2.0 * bytes, 0);
  ms = median_ms([&](int) {
    gpu::cross_entropy_forward_backward(losses.as<float>(), mean.as<float>(), nullptr, logits->as<bf16>(),
                                        targets->as<int32_t>(), N, V, ld, 1.0f, -1, ws.ptr, ws.bytes, nullptr);
  });
  report("cross_entropy_fwd", shape, ms, bytes, 0);
}

void bench_adamw(size_t n) {
  auto master = f32_buffer(n), m = f32_buffer(n, -0.01f, 0.01f), v = f32_buffer(n, 0.0f, 1e-4f);
  auto grads = bf16_buffer(n);
  Buffer params(n * 2), seg(sizeof(gpu::AdamWSegment)), step(sizeof(gpu::AdamWStep)), scale(16), norm(16),
      ws(gpu::grad_norm_workspace_bytes());
  const gpu::AdamWSegment s{0, 1.0f, 0.1f};
  const gpu::AdamWStep st{1e-4f, 10};
  FERRY_CUDA_CHECK(cudaMemcpy(seg.ptr, &s, sizeof(s), cudaMemcpyHostToDevice));
  FERRY_CUDA_CHECK(cudaMemcpy(step.ptr, &st, sizeof(st), cudaMemcpyHostToDevice));
  const std::string shape = std::to_string(n / 1000000) + "M params";
  float ms = median_ms([&](int) {
    gpu::grad_norm(norm.as<float>(), scale.as<float>(), grads->as<bf16>(), n, 1.0f, ws.ptr, ws.bytes, nullptr);
  });
  report("grad_norm_bf16", shape, ms, 2.0 * n, 0);
  ms = median_ms([&](int) {
    gpu::adamw_update(master->as<float>(), params.as<bf16>(), m->as<float>(), v->as<float>(), grads->as<bf16>(), n,
                      seg.as<gpu::AdamWSegment>(), 1, step.as<gpu::AdamWStep>(), 0.9f, 0.95f, 1e-8f, scale.as<float>(),
                      nullptr);
  });
  // master, m, v read and written (24 B), bf16 grad read, bf16 param written (4 B): 28 B/param,
  // the same count as PyTorch's fused AdamW figure (fp32 p, g, m, v read; p, m, v written).
  report("adamw_bf16grad_fp32master", shape, ms, 28.0 * n, 0);
}

// Token ids for the embedding backward: its cost follows the longest run of one id, which uniform
// ids never produce (issue 13 item 7). Real text comes from a token shard (llm.c layout: a 1024-byte
// header, [0] = 20240520, [2] = count, then uint16 ids) — `ferry data prepare` writes them to
// data/corpus; without one, Zipf(1) ids over the vocabulary stand in.
std::string g_tokens_path = "data/corpus";

std::vector<int32_t> corpus_ids(size_t n, int V, std::string* source) {
  std::filesystem::path path = g_tokens_path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    std::vector<std::filesystem::path> shards;
    for (const auto& e : std::filesystem::directory_iterator(path, ec))
      if (e.path().extension() == ".bin") shards.push_back(e.path());
    std::sort(shards.begin(), shards.end());
    path = shards.empty() ? std::filesystem::path() : shards.front();
  }
  std::vector<int32_t> ids;
  if (FILE* f = path.empty() ? nullptr : std::fopen(path.c_str(), "rb")) {
    int32_t header[256] = {};
    if (std::fread(header, sizeof(header), 1, f) == 1 && header[0] == 20240520 && header[2] > 0) {
      std::vector<uint16_t> tokens(std::min<size_t>(size_t(header[2]), n));
      tokens.resize(std::fread(tokens.data(), 2, tokens.size(), f));
      for (size_t i = 0; !tokens.empty() && i < n; ++i) ids.push_back(std::min<int32_t>(tokens[i % tokens.size()], V - 1));
    }
    std::fclose(f);
  }
  if (!ids.empty()) {
    *source = "corpus " + path.filename().string();
    return ids;
  }
  std::mt19937_64 rng(7);
  std::vector<double> w(static_cast<size_t>(V));
  for (int v = 0; v < V; ++v) w[size_t(v)] = 1.0 / (v + 1);
  std::discrete_distribution<int32_t> zipf(w.begin(), w.end());
  for (size_t i = 0; i < n; ++i) ids.push_back(zipf(rng));
  *source = "Zipf(1) ids (no shard at " + g_tokens_path + ")";
  return ids;
}

// ids < V index a table of `rows` (the padded vocabulary the trainer's wte has).
void bench_embedding(int B, int T, int C, int V, int rows) {
  const size_t BT = size_t(B) * T;
  auto tokens = id_buffer(BT, V);
  auto wte = bf16_buffer(size_t(rows) * C), wpe = bf16_buffer(size_t(T) * C), dout = bf16_buffer(BT * C);
  auto dwte = bf16_buffer(size_t(rows) * C), dwpe = bf16_buffer(size_t(T) * C);
  Buffer out(BT * C * 2);
  const size_t ws_bytes = gpu::embedding_backward_workspace_bytes(B, T, C, rows);
  Buffer ws(ws_bytes);
  const std::string shape = std::to_string(BT) + "tok x" + std::to_string(C) + " V" + std::to_string(V);
  float ms = median_ms([&](int) {
    gpu::embedding_forward(out.as<bf16>(), tokens->as<int32_t>(), wte->as<bf16>(), wpe->as<bf16>(), B, T, C, nullptr);
  });
  report("embedding_fwd", shape, ms, 3.0 * BT * C * 2, 0);
  ms = median_ms([&](int) {
    gpu::embedding_backward(dwte->as<bf16>(), dwpe->as<bf16>(), dout->as<bf16>(), tokens->as<int32_t>(), B, T, C, rows,
                            ws.ptr, ws_bytes, nullptr);
  });
  report("embedding_bwd_uniform_ids", shape, ms, 0, 0);

  std::string source;
  const std::vector<int32_t> ids = corpus_ids(BT, V, &source);
  std::vector<int32_t> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  size_t longest = 0, run = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    run = i > 0 && sorted[i] == sorted[i - 1] ? run + 1 : 1;
    longest = std::max(longest, run);
  }
  std::printf("embedding_bwd ids: %s, longest run of one id %zu of %zu\n", source.c_str(), longest, BT);
  Buffer real(BT * sizeof(int32_t));
  FERRY_CUDA_CHECK(cudaMemcpy(real.ptr, ids.data(), BT * sizeof(int32_t), cudaMemcpyHostToDevice));
  ms = median_ms([&](int) {
    gpu::embedding_backward(dwte->as<bf16>(), dwpe->as<bf16>(), dout->as<bf16>(), real.as<int32_t>(), B, T, C, rows,
                            ws.ptr, ws_bytes, nullptr);
  });
  report(source.rfind("corpus", 0) == 0 ? "embedding_bwd_corpus_ids" : "embedding_bwd_zipf_ids", shape, ms, 0, 0);
}

void bench_gelu(size_t n) {
  const int R = rotation(n * 2);
  std::vector<std::unique_ptr<Buffer>> x;
  for (int r = 0; r < R; ++r) x.push_back(bf16_buffer(n, -3.0f, 3.0f));
  auto g = bf16_buffer(n);
  Buffer y(n * 2);
  const std::string shape = std::to_string(n);
  float ms = median_ms([&](int i) { gpu::gelu_forward(y.as<bf16>(), x[i % R]->as<bf16>(), n, nullptr); });
  report("gelu_fwd", shape, ms, 2.0 * n * 2, 0);
  ms = median_ms(
      [&](int i) { gpu::gelu_backward(y.as<bf16>(), x[i % R]->as<bf16>(), g->as<bf16>(), n, nullptr); });
  report("gelu_bwd", shape, ms, 3.0 * n * 2, 0);
}

void bench_matmul(gpu::Matmul& mm, const char* what, int N, int IC, int OC, bool gelu) {
  auto inp = bf16_buffer(size_t(N) * IC), w = bf16_buffer(size_t(OC) * IC, -0.1f, 0.1f), bias = bf16_buffer(OC);
  auto dout = bf16_buffer(size_t(N) * OC), dw = bf16_buffer(size_t(OC) * IC), db = bf16_buffer(OC);
  Buffer out(size_t(N) * OC * 2), pre(size_t(N) * OC * 2), dinp(size_t(N) * IC * 2);
  const double flops = 2.0 * N * double(IC) * OC;
  const std::string shape = dims({N, IC, OC});
  float ms = median_ms([&](int) {
    mm.forward(out.as<bf16>(), gelu ? pre.as<bf16>() : nullptr, inp->as<bf16>(), w->as<bf16>(), bias->as<bf16>(), N,
               IC, OC, nullptr);
  });
  report(std::string("matmul_fwd_") + what, shape, ms, 0, flops);
  ms = median_ms([&](int) {
    mm.backward(dinp.as<bf16>(), dw->as<bf16>(), db->as<bf16>(), dout->as<bf16>(), inp->as<bf16>(), w->as<bf16>(),
                nullptr, N, IC, OC, nullptr);
  });
  report(std::string("matmul_bwd_") + what, shape, ms, 0, 2 * flops);
}

void write_json(const char* path, const cudaDeviceProp& prop) {
  FILE* f = std::fopen(path, "w");
  if (!f) {
    std::fprintf(stderr, "kernels_bench: cannot write %s\n", path);
    std::exit(2);
  }
  std::fprintf(f, "{\n \"device\": \"%s\",\n \"copy_TBps\": %.4f,\n \"gemm_TFLOPs\": %.2f,\n \"cudnn\": \"%s\",\n \"kernels\": [\n",
               prop.name, g_copy_tbps, g_gemm_tflops, g_cudnn_summary.c_str());
  for (size_t i = 0; i < g_results.size(); ++i) {
    const Result& r = g_results[i];
    std::fprintf(f, "  {\"name\": \"%s\", \"shape\": \"%s\", \"ms\": %.5f, \"TBps\": %.4f, \"TFLOPs\": %.2f}%s\n",
                 r.name.c_str(), r.shape.c_str(), r.ms, r.bytes > 0 ? r.bytes / r.ms / 1e9 : 0.0,
                 r.flops > 0 ? r.flops / r.ms / 1e9 : 0.0, i + 1 < g_results.size() ? "," : "");
  }
  std::fprintf(f, " ]\n}\n");
  std::fclose(f);
}

}  // namespace

int main(int argc, char** argv) {
  const char* json = nullptr;
  [[maybe_unused]] const char* attention_choice = nullptr;  // used with cuDNN only
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) g_reps = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--attention-choice") && i + 1 < argc) attention_choice = argv[++i];
    else if (!std::strcmp(argv[i], "--tokens") && i + 1 < argc) g_tokens_path = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: kernels_bench [--json PATH] [--reps N] [--quick] [--attention-choice PATH] [--tokens SHARD_OR_DIR]\n");
      return 2;
    }
  }
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::fprintf(stderr, "kernels_bench: no CUDA device\n");
    return 1;
  }
  cudaDeviceProp prop{};
  FERRY_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  g_l2_bytes = prop.l2CacheSize;
  std::printf("device: %s, %d SMs, L2 %d MB, median of %d reps\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize >> 20, g_reps);
#if FERRY_WITH_CUDNN
  g_cudnn_summary = gpu::cudnn_attention_summary();
  if (gpu::cudnn_attention_unsupported_reason(0, true).empty()) g_cudnn = std::make_unique<gpu::CudnnAttention>();
#endif
  std::printf("%s\n", g_cudnn_summary.c_str());
  try {
    gpu::Matmul mm;
    ceilings(mm);
    // GPT-2 124M (C = 768) and 350M (C = 1024), B = 16, T = 1024.
    bench_layernorm(16384, 768);
    if (!quick) bench_layernorm(16384, 1024);
    bench_attention(16, 12, 1024, 64);
    bench_attention(4, 16, 4096, 128);
    if (!quick) bench_attention(16, 16, 1024, 64);
    // The shapes the trainer runs: GPT-2's vocabulary padded to 50304 (engine/model/gpt.h).
    bench_cross_entropy(8192, 50257, 50304);
    bench_adamw(124000000);
    if (!quick) bench_adamw(354000000);
    bench_embedding(16, 1024, 768, 50257, 50304);
    bench_gelu(size_t(16384) * 3072);
    bench_matmul(mm, "qkv_124M", 16384, 768, 2304, false);
    bench_matmul(mm, "fc_gelu_124M", 16384, 768, 3072, true);
    bench_matmul(mm, "fc2_124M", 16384, 3072, 768, false);
    if (!quick) bench_matmul(mm, "head_124M", 16384, 768, 50304, false);
    FERRY_CUDA_CHECK(cudaDeviceSynchronize());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernels_bench: %s\n", e.what());
    if (json) write_json(json, prop);
    return 1;
  }
  if (json) write_json(json, prop);
#if FERRY_WITH_CUDNN
  // The verdict: cuDNN checked against the reference on this card (forward and backward), then
  // both backends measured at every attention shape of this run.
  if (attention_choice) {
    ferry::AttentionVerdict v;
    v.device = prop.name;
    v.cudnn_version = gpu::cudnn_runtime_version();
    v.ferry_ms = g_attention_ferry_ms;
    v.cudnn_ms = g_attention_cudnn_failed ? 0.0 : g_attention_cudnn_ms;
    if (g_cudnn) {
      const CudnnCheck check = check_cudnn_attention(*g_cudnn);
      v.forward_check = check.forward;
      v.backward_check = check.backward;
    } else {
      v.forward_check = v.backward_check = "not run: " + gpu::cudnn_attention_unsupported_reason(0, true);
    }
    ferry::write_attention_choice(attention_choice, v);
    std::printf("attention verdict: cuDNN forward check %s, backward check %s; fwd+bwd over all shapes ferry %.3f ms, "
                "cuDNN %.3f ms -> %s\n",
                v.forward_check.c_str(), v.backward_check.c_str(), v.ferry_ms, v.cudnn_ms,
                ferry::attention_backend_name(ferry::read_attention_choice(attention_choice, v.device, v.cudnn_version)));
  }
  g_cudnn.reset();  // while the CUDA context still exists
#endif
  return 0;
}
