// engine/device.cpp
#include "engine/device.h"

#if FERRY_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace ferry {

int cuda_device_count() {
#if FERRY_WITH_CUDA
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later probes start clean
    return 0;
  }
  return n;
#else
  return 0;
#endif
}

std::string device_summary() {
#if FERRY_WITH_CUDA
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return std::string("no usable GPU (") + cudaGetErrorString(err) + "): using the CPU backend";
  }
  if (n == 0) return "no GPU found: using the CPU backend";
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  return std::string("GPU 0: ") + prop.name;
#else
  return "built without CUDA: using the CPU backend";
#endif
}

}  // namespace ferry
