// kernels/emulator/libraries.cpp — the NVIDIA libraries ferry's wrappers call, as far as the
// emulator needs them: CUB's radix sort (embedding backward) on the host, and cuBLASLt handles.
// cuBLASLt's products themselves are not emulated: the descriptor calls answer
// CUBLAS_STATUS_NOT_SUPPORTED, so Matmul's own kernels (the bias gradient) run on the emulator and
// any product says plainly that it cannot.
#include <cublasLt.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "kernels/emulator/cub.h"
#include "kernels/emulator/internal.h"

namespace ferry::emu::detail {
bool device_range(const void* p, size_t bytes);
}  // namespace ferry::emu::detail

namespace ferry::emu {

using namespace detail;

cudaError_t radix_sort_pairs(void* temp, size_t& temp_bytes, const void* keys_in, void* keys_out,
                             const void* values_in, void* values_out, size_t n, size_t key_bytes, bool key_signed,
                             size_t value_bytes, int begin_bit, int end_bit) {
  // CUB's own figure differs; ferry asks for it through a null-storage query either way.
  const size_t needed = n * (key_bytes + value_bytes) + 1024;
  if (!temp) {
    temp_bytes = needed;
    return cudaSuccess;
  }
  State& s = state();
  auto bad = [&](const std::string& what) {
    s.last_error = cudaErrorInvalidValue;
    s.last_error_text = "cudaErrorInvalidValue: cub::DeviceRadixSort::SortPairs: " + what;
    return cudaErrorInvalidValue;
  };
  if (temp_bytes < needed || !device_range(temp, needed))
    return bad("temporary storage of " + std::to_string(temp_bytes) + " bytes, " + std::to_string(needed) + " needed");
  if (begin_bit < 0 || end_bit > int(8 * key_bytes) || begin_bit >= end_bit)
    return bad("bit range [" + std::to_string(begin_bit) + ", " + std::to_string(end_bit) + ")");
  if (n == 0) return cudaSuccess;
  if (!device_range(keys_in, n * key_bytes) || !device_range(keys_out, n * key_bytes) ||
      !device_range(values_in, n * value_bytes) || !device_range(values_out, n * value_bytes))
    return bad("a key or value buffer is not " + std::to_string(n) + " items of device memory");
  if (key_bytes > 8 || value_bytes > 8) return bad("keys and values of at most 8 bytes");
  auto key_at = [&](size_t i) {
    uint64_t k = 0;
    std::memcpy(&k, static_cast<const char*>(keys_in) + i * key_bytes, key_bytes);
    if (key_signed) k ^= uint64_t(1) << (8 * key_bytes - 1);  // CUB orders signed keys by flipped sign bit
    const int bits = end_bit - begin_bit;
    return (k >> begin_bit) & (bits >= 64 ? ~uint64_t(0) : ((uint64_t(1) << bits) - 1));
  };
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key_at(a) < key_at(b); });
  std::vector<char> keys(n * key_bytes), values(n * value_bytes);
  for (size_t i = 0; i < n; ++i) {
    std::memcpy(&keys[i * key_bytes], static_cast<const char*>(keys_in) + order[i] * key_bytes, key_bytes);
    std::memcpy(&values[i * value_bytes], static_cast<const char*>(values_in) + order[i] * value_bytes, value_bytes);
  }
  std::memcpy(keys_out, keys.data(), keys.size());
  std::memcpy(values_out, values.data(), values.size());
  return cudaSuccess;
}

}  // namespace ferry::emu

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
  static int dummy;
  *handle = reinterpret_cast<cublasLtHandle_t>(&dummy);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t) { return CUBLAS_STATUS_SUCCESS; }

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t*, cublasComputeType_t, cudaDataType_t) {
  return CUBLAS_STATUS_NOT_SUPPORTED;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t, cublasLtMatmulDescAttributes_t, const void*,
                                              size_t) {
  return CUBLAS_STATUS_NOT_SUPPORTED;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t*, cudaDataType, uint64_t, uint64_t, int64_t) {
  return CUBLAS_STATUS_NOT_SUPPORTED;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t, cublasLtMatrixLayoutAttribute_t,
                                                const void*, size_t) {
  return CUBLAS_STATUS_NOT_SUPPORTED;
}
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t*) { return CUBLAS_STATUS_NOT_SUPPORTED; }
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t, cublasLtMatmulPreferenceAttributes_t,
                                                    const void*, size_t) {
  return CUBLAS_STATUS_NOT_SUPPORTED;
}
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t,
                                              cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                                              cublasLtMatmulPreference_t, int, cublasLtMatmulHeuristicResult_t[],
                                              int* count) {
  if (count) *count = 0;
  return CUBLAS_STATUS_NOT_SUPPORTED;
}
cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t, const void*, const void*,
                              cublasLtMatrixLayout_t, const void*, cublasLtMatrixLayout_t, const void*, const void*,
                              cublasLtMatrixLayout_t, void*, cublasLtMatrixLayout_t, const cublasLtMatmulAlgo_t*,
                              void*, size_t, cudaStream_t) {
  return CUBLAS_STATUS_NOT_SUPPORTED;
}

}  // extern "C"
