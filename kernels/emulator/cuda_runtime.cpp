// kernels/emulator/cuda_runtime.cpp — the part of the CUDA runtime API that ferry's kernel
// wrappers and the kernel tests call, implemented on the emulator: a test binary links this
// instead of libcudart, so the wrappers run unchanged. Device memory comes from the emulator's
// heap (memory.cpp); launches run synchronously on the calling thread; streams are accepted and
// ignored (everything is already ordered). Errors follow CUDA's two kinds: a bad launch
// configuration is reported once by cudaGetLastError, a fault during a kernel is sticky (every
// later call returns it) until ferry::emu::reset().
#include <cuda_runtime_api.h>

#include "kernels/emulator/internal.h"

namespace ferry::emu::detail {
void* device_malloc(size_t bytes);
bool device_free(void* p);
bool device_range(const void* p, size_t bytes);
}  // namespace ferry::emu::detail

using namespace ferry::emu::detail;

namespace {

cudaError_t fail(cudaError_t code, const std::string& what) {
  State& s = state();
  s.last_error = code;
  s.last_error_text = std::string(cudaGetErrorName(code)) + ": " + what;
  return code;
}

bool is_device(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  const State& s = state();
  return a >= s.heap_begin && a < s.heap_end;
}

}  // namespace

extern "C" {

cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (!p) return fail(cudaErrorInvalidValue, "cudaMalloc with a null result pointer");
  *p = device_malloc(bytes);
  if (!*p) return fail(cudaErrorMemoryAllocation, "cudaMalloc of " + std::to_string(bytes) + " bytes");
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  if (!device_free(p)) return fail(cudaErrorInvalidValue, "cudaFree of " + hex(reinterpret_cast<uintptr_t>(p)) +
                                                              ", not the start of a live allocation");
  return cudaSuccess;
}

cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (state().sticky != cudaSuccess) return state().sticky;
  if (bytes == 0) return cudaSuccess;
  if (!device_range(p, bytes))
    return fail(cudaErrorInvalidValue, "cudaMemset of " + std::to_string(bytes) + " bytes at " +
                                           describe_address(reinterpret_cast<uintptr_t>(p)));
  std::memset(p, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) { return cudaMemset(p, value, bytes); }

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (state().sticky != cudaSuccess) return state().sticky;
  if (bytes == 0) return cudaSuccess;
  if (kind == cudaMemcpyDefault)
    kind = is_device(dst) ? (is_device(src) ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                          : (is_device(src) ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (dst_dev && !device_range(dst, bytes))
    return fail(cudaErrorInvalidValue, "cudaMemcpy of " + std::to_string(bytes) + " bytes to " +
                                           describe_address(reinterpret_cast<uintptr_t>(dst)));
  if (src_dev && !device_range(src, bytes))
    return fail(cudaErrorInvalidValue, "cudaMemcpy of " + std::to_string(bytes) + " bytes from " +
                                           describe_address(reinterpret_cast<uintptr_t>(src)));
  if ((!dst_dev && is_device(dst)) || (!src_dev && is_device(src)))
    return fail(cudaErrorInvalidValue, "cudaMemcpy with a device pointer where its kind says host");
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaDeviceSynchronize(void) { return state().sticky; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return state().sticky; }

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  static int streams = 0;
  *stream = reinterpret_cast<cudaStream_t>(uintptr_t(0x5000 + 16 * ++streams));
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int) { return cudaStreamCreate(stream); }
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }

cudaError_t cudaGetLastError(void) {
  State& s = state();
  if (s.sticky != cudaSuccess) return s.sticky;
  const cudaError_t e = s.last_error;
  s.last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError(void) {
  const State& s = state();
  return s.sticky != cudaSuccess ? s.sticky : s.last_error;
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  State& s = state();
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;
  if (value < 0 || size_t(value) > kSharedOptInLimit)
    return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute(MaxDynamicSharedMemorySize, " + std::to_string(value) +
                                           ") exceeds the 227 KB of a block");
  for (auto& [k, bytes] : s.max_dynamic_shared)
    if (k == func) {
      bytes = value;
      return cudaSuccess;
    }
  s.max_dynamic_shared.push_back({func, value});
  return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice, "the emulator has device 0 only");
}

const char* cudaGetErrorName(cudaError_t code) {
  switch (code) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorMisalignedAddress: return "cudaErrorMisalignedAddress";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    default: return "cudaError";
  }
}

const char* cudaGetErrorString(cudaError_t code) {
  static thread_local std::string text;
  const State& s = state();
  if (code != cudaSuccess && code == s.sticky) {
    text = s.fault.message;
  } else if (code != cudaSuccess && !s.last_error_text.empty() &&
             s.last_error_text.rfind(cudaGetErrorName(code), 0) == 0) {
    text = s.last_error_text;
  } else {
    switch (code) {
      case cudaSuccess: text = "no error"; break;
      case cudaErrorInvalidValue: text = "invalid argument"; break;
      case cudaErrorMemoryAllocation: text = "out of memory"; break;
      case cudaErrorInvalidConfiguration: text = "invalid configuration argument"; break;
      case cudaErrorLaunchOutOfResources: text = "too many resources requested for launch"; break;
      case cudaErrorMisalignedAddress: text = "misaligned address"; break;
      case cudaErrorIllegalAddress: text = "an illegal memory access was encountered"; break;
      case cudaErrorLaunchFailure: text = "unspecified launch failure"; break;
      default: text = "CUDA error " + std::to_string(int(code)); break;
    }
  }
  return text.c_str();
}

}  // extern "C"
