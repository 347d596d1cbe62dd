// kernels/emulator/cub.h — what the translator puts in place of <cub/device/device_radix_sort.cuh>:
// CUB's DeviceRadixSort::SortPairs with CUB's contract (a size query with a null temporary
// storage, a stable LSD sort on bits [begin_bit, end_bit) of the keys, signed keys ordered by their
// sign-flipped bits), run on the host over device memory. CUB is library code, not ferry's: the
// emulator checks how ferry calls it (buffer sizes, bit range), not CUB's kernels.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace ferry::emu {
cudaError_t radix_sort_pairs(void* temp, size_t& temp_bytes, const void* keys_in, void* keys_out,
                             const void* values_in, void* values_out, size_t n, size_t key_bytes, bool key_signed,
                             size_t value_bytes, int begin_bit, int end_bit);
}  // namespace ferry::emu

namespace cub {

struct DeviceRadixSort {
  template <typename KeyT, typename ValueT, typename NumItemsT>
  static cudaError_t SortPairs(void* d_temp_storage, size_t& temp_storage_bytes, const KeyT* d_keys_in,
                               KeyT* d_keys_out, const ValueT* d_values_in, ValueT* d_values_out, NumItemsT num_items,
                               int begin_bit = 0, int end_bit = sizeof(KeyT) * 8, cudaStream_t = nullptr) {
    static_assert(std::is_integral_v<KeyT>, "the emulated radix sort takes integer keys");
    return ::ferry::emu::radix_sort_pairs(d_temp_storage, temp_storage_bytes, d_keys_in, d_keys_out, d_values_in,
                                          d_values_out, size_t(num_items), sizeof(KeyT), std::is_signed_v<KeyT>,
                                          sizeof(ValueT), begin_bit, end_bit);
  }
};

}  // namespace cub
