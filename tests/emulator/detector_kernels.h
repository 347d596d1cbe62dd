// tests/emulator/detector_kernels.h — launchers of the small right-or-wrong kernels in
// detector_kernels.cu (see there); every pointer is device memory unless a test says otherwise.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace ferry::emu_test {

void neighbour_exchange(float* out, int sync, int threads);
void write_after_read(float* out);
void uninitialized(float* out);
void async_copy(float* out, const float* src, int mode);
void divergent_barrier(float* out);
void deadlock(float* out);
void exited_lane(float* out);
void shuffles(int* out);
void read(float* out, const float* in, int threads, int offset);
void vector_read(float* out, const float* in);
void dynamic_shared(float* out, int index, size_t bytes);
void bank(float* out, int stride, int wide);
void launch(float* out, unsigned grid_y, unsigned threads, size_t smem);
void bounded(float* out, unsigned threads);
cudaError_t allow_dynamic_shared(int bytes);

}  // namespace ferry::emu_test
