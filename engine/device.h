// engine/device.h — which devices this process can use.
#pragma once
#include <string>

namespace ferry {

// Number of usable CUDA devices; 0 in a CPU-only build or when the driver/device is missing
// (any CUDA error counts as "no GPU": without a driver cudaGetDeviceCount returns
// cudaErrorInsufficientDriver, not cudaErrorNoDevice).
int cuda_device_count();

// One line saying why the CPU is used, or which GPU is; for the start of every run.
std::string device_summary();

}  // namespace ferry
