// engine/cuda/cuda_ops.cpp — the CUDA kernel of every op the GPT and fine-tuning graphs use, attached to the ops
// defined in engine/ops/ (their infer and backward rules stay there). Tensors are bf16 except the
// fp32 statistics, log-sum-exps and losses (statistics_dtype) and the i32 token inputs; a float
// tensor of another dtype is refused with the op's name. Each kernel is queued on the backend's
// stream and never synchronizes, so a whole step can be captured and replayed.
#if FERRY_WITH_CUDA

#include <mutex>
#include <string>

#include "engine/cuda/cuda_context.h"
#include "engine/cuda/engine_kernels.h"
#include "engine/cuda/kernel_args.h"
#include "base/error.h"
#include "base/setting_error.h"
#include "engine/op.h"
#include "engine/ops/ops.h"
#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/gelu.h"
#include "kernels/layernorm.h"
#include "kernels/pooling.h"

namespace ferry::gpu {

namespace kc = kernels::cuda;

namespace {

CudaBackend& be(KernelCall& c) { return cuda_backend(c.backend); }
cudaStream_t stream(KernelCall& c) { return be(c).stream(); }

// cuDNN says what it cannot run here as a kernel error (a UserError from
// kernels/cuda/attention_cudnn.*); cuDNN runs because the `attention` setting chose it, so the
// error names that setting (and the way out).
template <typename F>
void as_attention_setting(F&& run) {
  try {
    run();
  } catch (const SettingError&) {
    throw;
  } catch (const UserError& e) {
    setting_error("attention", "cudnn: ", e.what(), "; ferry's attention runs everywhere");
  }
}

struct AttnDims {
  int B, T, NH, HS;
};
AttnDims attn_dims(const Shape& qkv, int n_head) {
  const int C = static_cast<int>(qkv[2] / 3);
  return {static_cast<int>(qkv[0]), static_cast<int>(qkv[1]), n_head, C / n_head};
}
bool flash_head(int HS) { return HS == 64 || HS == 128; }

void attach_all() {
  set_op_kernel("embedding", Device::CUDA, [](KernelCall& c) {
    const auto& s = c.in[0].shape;
    kc::embedding_forward(bf(c, c.out[0]), i32(c, 0), bf(c, c.in[1]), bf(c, c.in[2]), int(s[0]), int(s[1]),
                          int(c.in[1].shape[1]), stream(c));
  });
  set_op_kernel("embedding_backward", Device::CUDA, [](KernelCall& c) {
    const auto& s = c.in[1].shape;
    const int B = int(s[0]), T = int(s[1]), C = int(c.in[0].shape[2]), V = c.node.attrs.i("vocab");
    const size_t ws = kc::embedding_backward_workspace_bytes(B, T, C, V);
    kc::embedding_backward(bf(c, c.out[0]), bf(c, c.out[1]), bf(c, c.in[0]), i32(c, 1), B, T, C, V,
                           be(c).workspace(ws), ws, stream(c));
  });

  set_op_kernel("layernorm", Device::CUDA, [](KernelCall& c) {
    auto [N, C] = rows_cols(c.in[0].shape);
    kc::residual_layernorm_forward(nullptr, bf(c, c.out[0]), f32(c, c.out[1]), f32(c, c.out[2]), bf(c, c.in[0]),
                                   nullptr, bf(c, c.in[1]), bf(c, c.in[2]), N, C, stream(c));
  });
  set_op_kernel("residual_layernorm", Device::CUDA, [](KernelCall& c) {
    auto [N, C] = rows_cols(c.in[0].shape);
    kc::residual_layernorm_forward(bf(c, c.out[0]), bf(c, c.out[1]), f32(c, c.out[2]), f32(c, c.out[3]),
                                   bf(c, c.in[0]), bf(c, c.in[1]), bf(c, c.in[2]), bf(c, c.in[3]), N, C, stream(c));
  });
  set_op_kernel("layernorm_backward", Device::CUDA, [](KernelCall& c) {
    auto [N, C] = rows_cols(c.in[2].shape);
    const size_t ws = kc::layernorm_backward_workspace_bytes(N, C);
    kc::layernorm_backward(bf(c, c.out[0]), bf(c, c.out[1]), bf(c, c.out[2]), bf(c, c.in[0]), bf(c, c.in[1]),
                           bf(c, c.in[2]), bf(c, c.in[3]), f32(c, c.in[4]), f32(c, c.in[5]), N, C,
                           be(c).workspace(ws), ws, stream(c));
  });

  // Dense layers through cuBLASLt, the bias in the epilogue.
  set_op_kernel("matmul", Device::CUDA, [](KernelCall& c) {
    auto [N, IC] = rows_cols(c.in[0].shape);
    const int OC = int(c.in[1].shape[0]);
    const bf16* bias = c.in.size() > 2 ? bf(c, c.in[2]) : nullptr;
    be(c).matmul().forward(bf(c, c.out[0]), nullptr, bf(c, c.in[0]), bf(c, c.in[1]), bias, N, IC, OC, stream(c));
  });
  set_op_kernel("matmul_backward", Device::CUDA, [](KernelCall& c) {
    auto [N, IC] = rows_cols(c.in[1].shape);
    const int OC = int(c.in[2].shape[0]);
    be(c).matmul().backward(bf(c, c.out[0]), bf(c, c.out[1]), bf(c, c.out[2]), bf(c, c.in[0]), bf(c, c.in[1]),
                            bf(c, c.in[2]), nullptr, N, IC, OC, stream(c));
  });

  set_op_kernel("gelu", Device::CUDA, [](KernelCall& c) {
    kc::gelu_forward(bf(c, c.out[0]), bf(c, c.in[0]), size_t(c.in[0].numel()), stream(c));
  });
  set_op_kernel("gelu_backward", Device::CUDA, [](KernelCall& c) {
    kc::gelu_backward(bf(c, c.out[0]), bf(c, c.in[0]), bf(c, c.in[1]), size_t(c.in[0].numel()), stream(c));
  });

  // Flash kernels for head sizes 64 and 128 (ferry's, or cuDNN's under attention = cudnn); the plain
  // kernels for the small heads of test models.
  set_op_kernel("attention", Device::CUDA, [](KernelCall& c) {
    const AttnDims d = attn_dims(c.in[0].shape, c.node.attrs.i("n_head"));
    const bool causal = c.node.attrs.flag("causal");
    if (flash_head(d.HS) && be(c).uses_cudnn_attention()) {
      as_attention_setting([&] {
        auto& cudnn = be(c).cudnn_attention();
        const size_t ws = cudnn.forward_workspace_bytes(d.B, d.T, d.NH, d.HS, causal, i32(c, 1) != nullptr);
        cudnn.forward(bf(c, c.out[0]), f32(c, c.out[1]), bf(c, c.in[0]), i32(c, 1), d.B, d.T, d.NH, d.HS, causal,
                      be(c).workspace(ws), ws, stream(c));
      });
    } else if (flash_head(d.HS))
      kc::attention_forward(bf(c, c.out[0]), f32(c, c.out[1]), bf(c, c.in[0]), i32(c, 1), d.B, d.T, d.NH, d.HS,
                            causal, stream(c));
    else
      attention_forward_plain(bf(c, c.out[0]), f32(c, c.out[1]), bf(c, c.in[0]), i32(c, 1), d.B, d.T, d.NH, d.HS,
                              causal, stream(c));
  });
  set_op_kernel("attention_backward", Device::CUDA, [](KernelCall& c) {
    const AttnDims d = attn_dims(c.in[1].shape, c.node.attrs.i("n_head"));
    const bool causal = c.node.attrs.flag("causal");
    if (flash_head(d.HS) && be(c).uses_cudnn_attention()) {
      as_attention_setting([&] {
        auto& cudnn = be(c).cudnn_attention();
        const size_t ws = cudnn.backward_workspace_bytes(d.B, d.T, d.NH, d.HS, causal, i32(c, 4) != nullptr);
        cudnn.backward(bf(c, c.out[0]), bf(c, c.in[0]), bf(c, c.in[1]), bf(c, c.in[2]), f32(c, c.in[3]), i32(c, 4),
                       d.B, d.T, d.NH, d.HS, causal, be(c).workspace(ws), ws, stream(c));
      });
    } else if (flash_head(d.HS)) {
      const size_t ws = kc::attention_backward_workspace_bytes(d.B, d.T, d.NH);
      kc::attention_backward(bf(c, c.out[0]), bf(c, c.in[0]), bf(c, c.in[1]), bf(c, c.in[2]), f32(c, c.in[3]),
                             i32(c, 4), d.B, d.T, d.NH, d.HS, causal, be(c).workspace(ws), ws, stream(c));
    } else {
      const size_t ws = attention_backward_plain_workspace_bytes(d.B, d.T, d.NH);
      attention_backward_plain(bf(c, c.out[0]), bf(c, c.in[0]), bf(c, c.in[1]), bf(c, c.in[2]), f32(c, c.in[3]),
                               i32(c, 4), d.B, d.T, d.NH, d.HS, causal, be(c).workspace(ws), ws, stream(c));
    }
  });

  // Loss and mean stay on the device (fp32); the logits' gradient is written over the logits.
  set_op_kernel("cross_entropy", Device::CUDA, [](KernelCall& c) {
    auto [N, L] = rows_cols(c.in[0].shape);
    const int V = cross_entropy_classes(c.node, L);  // the rest of the row is vocabulary padding
    // An optional third input: data parallelism's global label count (engine/ops/cross_entropy.cpp).
    const int32_t* label_count = i32(c, 2);
    const size_t ws = kc::cross_entropy_workspace_bytes();
    bf16* dlogits = c.training ? bf(c, c.out[2]) : nullptr;
    kc::cross_entropy_forward_backward(f32(c, c.out[0]), f32(c, c.out[1]), dlogits, bf(c, c.in[0]), i32(c, 1), N, V, L,
                                       static_cast<float>(c.node.attrs.get("scale", 1.0)),
                                       c.node.attrs.i("ignore_index", -1), be(c).workspace(ws), ws, stream(c),
                                       label_count);
  });

  set_op_kernel("add", Device::CUDA, [](KernelCall& c) {
    const size_t n = size_t(c.in[0].numel());
    if (c.in[0].dtype == DType::F32)
      kc::add(f32(c, c.out[0]), f32(c, c.in[0]), f32(c, c.in[1]), n, stream(c));
    else
      kc::add(bf(c, c.out[0]), bf(c, c.in[0]), bf(c, c.in[1]), n, stream(c));
  });
  set_op_kernel("accumulate", Device::CUDA, [](KernelCall& c) {
    const size_t n = size_t(c.in[0].numel());
    if (c.in[0].dtype == DType::F32)
      kc::add(f32(c, c.out[0]), f32(c, c.out[0]), f32(c, c.in[0]), n, stream(c));
    else
      kc::add(bf(c, c.out[0]), bf(c, c.out[0]), bf(c, c.in[0]), n, stream(c));
  });

  // Fine-tuning (engine/ops/pooling.cpp): classification pooling, LoRA's scale, the multi-task loss.
  set_op_kernel("pool_tokens", Device::CUDA, [](KernelCall& c) {
    const auto& s = c.in[0].shape;
    kc::pool_tokens_forward(bf(c, c.out[0]), bf(c, c.in[0]), i32(c, 1), int(s[0]), int(s[1]), int(s[2]),
                            c.node.attrs.i("mode"), stream(c));
  });
  set_op_kernel("pool_tokens_backward", Device::CUDA, [](KernelCall& c) {
    const auto& s = c.out[0].shape;
    kc::pool_tokens_backward(bf(c, c.out[0]), bf(c, c.in[0]), i32(c, 1), int(s[0]), int(s[1]), int(s[2]),
                             c.node.attrs.i("mode"), stream(c));
  });
  set_op_kernel("scale", Device::CUDA, [](KernelCall& c) {
    const size_t n = size_t(c.in[0].numel());
    const float s = static_cast<float>(c.node.attrs.get("s", 1.0));
    if (c.in[0].dtype == DType::F32)
      kc::scale(f32(c, c.out[0]), f32(c, c.in[0]), s, n, stream(c));
    else
      kc::scale(bf(c, c.out[0]), bf(c, c.in[0]), s, n, stream(c));
  });
  // The losses are cross_entropy's fp32 means (statistics_dtype under bf16).
  set_op_kernel("sum_losses", Device::CUDA, [](KernelCall& c) {
    const int n = static_cast<int>(c.in.size());
    FERRY_CHECK(n <= kc::kMaxWeightedTerms, "sum_losses on CUDA takes at most ", kc::kMaxWeightedTerms,
                " losses, got ", n);
    const float* terms[kc::kMaxWeightedTerms];
    double weights[kc::kMaxWeightedTerms];
    for (int k = 0; k < n; ++k) {
      terms[k] = f32(c, c.in[k]);
      weights[k] = c.node.attrs.get("w" + std::to_string(k), 1.0);
    }
    kc::weighted_sum(f32(c, c.out[0]), terms, weights, n, stream(c));
  });
}

}  // namespace

void attach_cuda_kernels() {
  static std::once_flag once;
  std::call_once(once, attach_all);
}

}  // namespace ferry::gpu

#endif  // FERRY_WITH_CUDA
