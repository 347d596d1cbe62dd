// tests/kernels/layernorm_cases.h — the layernorm check both the gpu test (on a device) and the
// emulator test (tests/emulator, on the CPU) run: the CUDA residual layernorm forward/backward
// against the CPU reference (kernels/layernorm.h) in fp64 on the same bf16 inputs; dweight/dbias
// accumulate and two runs are bitwise equal; dinp may alias dresid. Include inside `#if FERRY_WITH_CUDA`.
#pragma once
#include <functional>

#include "kernels/layernorm.h"
#include "tests/kernels/cuda_test_util.h"

namespace ferry::test {

struct LayernormShape {
  int N, C;
  bool residual;
};

// `before_run(k)` runs before backward run k (0, 1): the emulator changes the block order there.
inline void check_layernorm(const LayernormShape& shape, uint64_t seed,
                            const std::function<void(int)>& before_run = {}) {
  namespace cpu = ferry::kernels::cpu;
  namespace gpu = ferry::kernels::cuda;
  const auto [N, C, residual] = shape;
  const size_t NC = size_t(N) * C;
  std::mt19937_64 rng(seed);
  const auto a = random_bf16_values(NC, rng, -2.0, 2.0), b = random_bf16_values(NC, rng);
  const auto w = random_bf16_values(C, rng, 0.5, 1.5), bias = random_bf16_values(C, rng);
  const auto dout = random_bf16_values(NC, rng), dresid = random_bf16_values(NC, rng);
  const auto dw0 = random_bf16_values(C, rng), db0 = random_bf16_values(C, rng);

  // The device normalizes the bf16-rounded residual sum; so does the reference.
  std::vector<double> x(NC);
  for (size_t i = 0; i < NC; ++i) x[i] = residual ? bf16_to_float(float_to_bf16(float(a[i] + b[i]))) : a[i];
  std::vector<double> out_ref(NC), mean_ref(N), rstd_ref(N);
  cpu::residual_layernorm_forward<double>(nullptr, out_ref.data(), mean_ref.data(), rstd_ref.data(), x.data(),
                                          nullptr, w.data(), bias.data(), N, C);
  std::vector<double> dinp_ref(NC), dw_ref = dw0, db_ref = db0;
  cpu::layernorm_backward(dinp_ref.data(), dw_ref.data(), db_ref.data(), dout.data(),
                          residual ? dresid.data() : nullptr, x.data(), w.data(), mean_ref.data(), rstd_ref.data(), N,
                          C);

  DeviceBuffer<bf16> d_a(to_bf16(a)), d_b(to_bf16(b)), d_w(to_bf16(w)), d_bias(to_bf16(bias)), d_resid(NC),
      d_out(NC);
  DeviceBuffer<float> d_mean(N), d_rstd(N);
  gpu::residual_layernorm_forward(residual ? d_resid.get() : nullptr, d_out.get(), d_mean.get(), d_rstd.get(),
                                  d_a.get(), residual ? d_b.get() : nullptr, d_w.get(), d_bias.get(), N, C, nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_out.download()), out_ref, kBf16Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_mean.download()), mean_ref, kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_rstd.download()), rstd_ref, kFp32Tolerance);
  if (residual) FERRY_EXPECT_CLOSE(to_double(d_resid.download()), x, 1e-12);

  DeviceBuffer<bf16> d_dout(to_bf16(dout)), d_dresid(to_bf16(dresid)), d_x(to_bf16(x));
  const size_t ws_bytes = gpu::layernorm_backward_workspace_bytes(N, C);
  DeviceBuffer<unsigned char> ws(ws_bytes);
  std::vector<std::vector<bf16>> dws, dbs;
  for (int run = 0; run < 2; ++run) {
    if (before_run) before_run(run);
    DeviceBuffer<bf16> d_dinp(NC), d_dw(to_bf16(dw0)), d_db(to_bf16(db0));
    gpu::layernorm_backward(d_dinp.get(), d_dw.get(), d_db.get(), d_dout.get(), residual ? d_dresid.get() : nullptr,
                            d_x.get(), d_w.get(), d_mean.get(), d_rstd.get(), N, C, ws.get(), ws_bytes, nullptr);
    FERRY_EXPECT_CLOSE(to_double(d_dinp.download()), dinp_ref, kBf16Tolerance);
    FERRY_EXPECT_CLOSE(to_double(d_dw.download()), dw_ref, kBf16Tolerance);
    FERRY_EXPECT_CLOSE(to_double(d_db.download()), db_ref, kBf16Tolerance);
    dws.push_back(d_dw.download());
    dbs.push_back(d_db.download());
  }
  EXPECT_TRUE(bitwise_equal(dws[0], dws[1]) && bitwise_equal(dbs[0], dbs[1]))
      << "layernorm dweight/dbias are not reproducible";

  // dinp may alias dresid (the graph reuses the residual gradient's buffer).
  if (residual) {
    gpu::layernorm_backward(d_dresid.get(), nullptr, nullptr, d_dout.get(), d_dresid.get(), d_x.get(), d_w.get(),
                            d_mean.get(), d_rstd.get(), N, C, ws.get(), ws_bytes, nullptr);
    FERRY_EXPECT_CLOSE(to_double(d_dresid.download()), dinp_ref, kBf16Tolerance);
  }
}

}  // namespace ferry::test
