// kernels/dtype.h — storage types shared by the CPU references and the CUDA kernels.
// bf16 is kept as its 16 raw bits on the host so that no host file needs cuda_bf16.h; the CUDA
// side reinterprets it as __nv_bfloat16 (same size and layout).
#pragma once
#include <cstdint>
#include <cstring>

namespace ferry {

struct bf16 {
  uint16_t bits;
};
static_assert(sizeof(bf16) == 2);

// Round-to-nearest-even, NaN kept quiet: the same rounding as __float2bfloat16_rn.
inline bf16 float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x40u)};
  uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<uint16_t>((u + rounding) >> 16)};
}

inline float bf16_to_float(bf16 h) {
  uint32_t u = static_cast<uint32_t>(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace ferry
