// tests/kernels/cuda_test_util.h — what the kernel gpu tests share: device buffers that poison
// themselves, bf16 conversions, and the error measure ‖got − ref‖ / ‖ref‖ in which NaN never passes.
// Only meaningful in a CUDA build; include it inside `#if FERRY_WITH_CUDA`.
#pragma once
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cuda_check.h"
#include "kernels/dtype.h"

namespace ferry::test {

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    FERRY_CUDA_CHECK(cudaMalloc(&ptr_, std::max<size_t>(n, 1) * sizeof(T)));
    poison();
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() { return ptr_; }
  const T* get() const { return ptr_; }
  size_t size() const { return n_; }
  // All bits set: NaN for fp32 and bf16, -1 for integers — an unwritten element cannot pass.
  void poison() { FERRY_CUDA_CHECK(cudaMemset(ptr_, 0xFF, std::max<size_t>(n_, 1) * sizeof(T))); }
  void upload(const std::vector<T>& host) {
    FERRY_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    FERRY_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<T> host(n_);
    FERRY_CUDA_CHECK(cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* ptr_ = nullptr;
  size_t n_;
};

inline std::vector<bf16> to_bf16(const std::vector<double>& x) {
  std::vector<bf16> r(x.size());
  for (size_t i = 0; i < x.size(); ++i) r[i] = float_to_bf16(static_cast<float>(x[i]));
  return r;
}

template <typename T>
std::vector<double> to_double(const std::vector<T>& x) {
  std::vector<double> r(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    if constexpr (std::is_same_v<T, bf16>)
      r[i] = bf16_to_float(x[i]);
    else
      r[i] = static_cast<double>(x[i]);
  }
  return r;
}

// Random values already on the bf16 grid, so that the device and the reference see the same input.
inline std::vector<double> random_bf16_values(size_t n, std::mt19937_64& rng, double lo = -1.0, double hi = 1.0) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(n);
  for (auto& x : v) x = bf16_to_float(float_to_bf16(static_cast<float>(d(rng))));
  return v;
}

// ‖got − ref‖₂ / ‖ref‖₂; infinity when anything is NaN or the two disagree on an infinity.
// A zero reference compares absolutely.
inline double relative_error(const std::vector<double>& got, const std::vector<double>& ref) {
  if (got.size() != ref.size()) return std::numeric_limits<double>::infinity();
  double diff = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) || std::isnan(ref[i])) return std::numeric_limits<double>::infinity();
    if (std::isinf(got[i]) || std::isinf(ref[i])) {
      if (got[i] != ref[i]) return std::numeric_limits<double>::infinity();
      continue;
    }
    diff += (got[i] - ref[i]) * (got[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

constexpr double kBf16Tolerance = 1e-2;
constexpr double kFp32Tolerance = 1e-5;

template <typename T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

}  // namespace ferry::test

#define FERRY_EXPECT_CLOSE(got, ref, tol)                                                   \
  do {                                                                                      \
    const double ferry_err_ = ::ferry::test::relative_error((got), (ref));                  \
    EXPECT_LT(ferry_err_, (tol)) << #got " vs " #ref ", relative error " << ferry_err_;    \
  } while (0)
