// engine/tensor.h — what a tensor is to the engine: a shape, a dtype, a device and a pointer into a
// buffer someone else owns (the planner's arena, a flat parameter buffer, a host staging array).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ferry {

// F64 exists for the CPU backend only: finite-difference gradient checks run the whole engine in
// double precision so that tolerances can be tight.
enum class DType : uint8_t { F32, F64, BF16, I32 };
enum class Device : uint8_t { CPU, CUDA };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
const char* device_name(Device d);

using Shape = std::vector<int64_t>;
int64_t numel(const Shape& s);
std::string shape_str(const Shape& s);

struct Tensor {
  void* data = nullptr;
  Shape shape;
  DType dtype = DType::F32;
  Device device = Device::CPU;

  int64_t numel() const { return ferry::numel(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
  explicit operator bool() const { return data != nullptr; }
};

}  // namespace ferry
