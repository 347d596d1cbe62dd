// kernels/cuda_check.h — the one error path for CUDA calls and kernel launches.
//
// FERRY_CUDA_CHECK(call)            any cudaError_t-returning runtime call
// FERRY_CUBLAS_CHECK(call)          any cublasStatus_t-returning cuBLAS/cuBLASLt call
// FERRY_CUDA_CHECK_LAUNCH("name")   right after a <<<>>> launch: catches bad configurations
//
// Each throws CudaError naming the call (or kernel), the error string and file:line. Kernels do not
// depend on the engine, so this is a std::runtime_error of its own; the engine reports it like any
// InternalError. Only include this from .cu files or CUDA-aware .cpp files (it needs cuda_runtime.h).
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace ferry::kernels::cuda {

class CudaError : public std::runtime_error {
 public:
  explicit CudaError(const std::string& msg) : std::runtime_error(msg) {}
};

[[noreturn]] inline void throw_cuda_error(const std::string& what, const std::string& why, const char* file, int line) {
  throw CudaError(std::string("CUDA error in ") + what + ": " + why + " at " + file + ":" + std::to_string(line));
}

}  // namespace ferry::kernels::cuda

#define FERRY_CUDA_CHECK(call)                                                                    \
  do {                                                                                            \
    const cudaError_t ferry_cuda_err_ = (call);                                                   \
    if (ferry_cuda_err_ != cudaSuccess)                                                           \
      ::ferry::kernels::cuda::throw_cuda_error(#call, cudaGetErrorString(ferry_cuda_err_), __FILE__, __LINE__); \
  } while (0)

#define FERRY_CUDA_CHECK_LAUNCH(kernel_name)                                                      \
  do {                                                                                            \
    const cudaError_t ferry_cuda_err_ = cudaGetLastError();                                       \
    if (ferry_cuda_err_ != cudaSuccess)                                                           \
      ::ferry::kernels::cuda::throw_cuda_error(std::string("launch of ") + (kernel_name),          \
                                               cudaGetErrorString(ferry_cuda_err_), __FILE__, __LINE__);                               \
  } while (0)

#define FERRY_CUBLAS_CHECK(call)                                                                  \
  do {                                                                                            \
    const int ferry_cublas_status_ = static_cast<int>(call);                                      \
    if (ferry_cublas_status_ != 0)                                                                \
      ::ferry::kernels::cuda::throw_cuda_error(#call, "cublas status " + std::to_string(ferry_cublas_status_), \
                                               __FILE__, __LINE__);                               \
  } while (0)

// Bad arguments to a kernel wrapper (shape the kernel does not support): same error type, so a
// caller sees one kind of failure from this layer.
#define FERRY_CUDA_REQUIRE(cond, msg)                                                             \
  do {                                                                                            \
    if (!(cond)) ::ferry::kernels::cuda::throw_cuda_error(__func__, std::string("requires ") + #cond + ": " + (msg), \
                                                          __FILE__, __LINE__);                    \
  } while (0)
