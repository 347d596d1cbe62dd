// kernels/cpu/matmul.cpp — reference for kernels/matmul.h.
//
// The CPU backend's hot loop (the vocabulary head is most of a small model's step), so it is written
// as register-blocked GEMM micro-kernels: a block of 4 rows × 4 vectors of outputs lives in 16 vector
// accumulators while the reduction dimension streams through, and operands are tiled so that the big
// one (the head's weight) passes through memory a few times, not once per row. Vectors are GCC vector
// extensions (64 bytes: one AVX-512 register, two AVX2 ones), so the code stays portable and the
// compiler picks the ISA (kernels/ builds with -march=native).
//
// Determinism: every output element is reduced by one thread in ascending order of the reduction
// index (tiles are visited in ascending order and continue the same running sum), so results depend on
// the binary only, never on the thread count.
#include "kernels/matmul.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

namespace ferry::kernels::cpu {

namespace {

template <typename T>
struct Vec {
  static constexpr int kLanes = 64 / static_cast<int>(sizeof(T));
  typedef T type __attribute__((vector_size(64)));
  static type load(const T* p) {
    type v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(T* p, const type& v) { std::memcpy(p, &v, sizeof v); }
  static type splat(T x) { return type{} + x; }
};

constexpr int kRows = 4;  // rows of a register block
constexpr int kVecs = 4;  // vectors of a register block (4 × 16 floats = 64 columns)

// acc[r][v] += a[r] (broadcast) * b[v*lanes ...], for rows_valid rows, over `depth` steps where
// step k reads a_k[r] = a[r*a_row + k*a_step] and the vector b + k*b_step.
template <typename T>
inline void micro_kernel(typename Vec<T>::type (&acc)[kRows][kVecs], const T* a, size_t a_row, size_t a_step,
                         const T* b, size_t b_step, int depth, int rows_valid) {
  using V = Vec<T>;
  for (int k = 0; k < depth; ++k) {
    typename V::type bv[kVecs];
    for (int v = 0; v < kVecs; ++v) bv[v] = V::load(b + k * b_step + v * V::kLanes);
    for (int r = 0; r < kRows; ++r) {
      if (r >= rows_valid) break;
      const typename V::type av = V::splat(a[r * a_row + k * a_step]);
      for (int v = 0; v < kVecs; ++v) acc[r][v] += av * bv[v];
    }
  }
}

}  // namespace

template <typename T>
void matmul_forward(T* out, const T* inp, const T* weight, const T* bias, int N, int IC, int OC) {
  using V = Vec<T>;
  constexpr int kTile = kVecs * V::kLanes;  // output columns per tile
  const int col_tiles = (OC + kTile - 1) / kTile;
#pragma omp parallel
  {
    // The weight tile transposed to [IC][kTile] (zero-padded past OC), so outputs are contiguous.
    std::vector<T> wt(static_cast<size_t>(IC) * kTile);
#pragma omp for schedule(static)
    for (int ct = 0; ct < col_tiles; ++ct) {
      const int o0 = ct * kTile;
      const int cols = std::min(kTile, OC - o0);
      std::fill(wt.begin(), wt.end(), T(0));
      for (int c = 0; c < cols; ++c) {
        const T* w = weight + static_cast<size_t>(o0 + c) * IC;
        for (int i = 0; i < IC; ++i) wt[static_cast<size_t>(i) * kTile + c] = w[i];
      }
      for (int n0 = 0; n0 < N; n0 += kRows) {
        const int rows = std::min(kRows, N - n0);
        typename V::type acc[kRows][kVecs] = {};
        micro_kernel<T>(acc, inp + static_cast<size_t>(n0) * IC, IC, 1, wt.data(), kTile, IC, rows);
        for (int r = 0; r < rows; ++r) {
          T row[kTile];
          for (int v = 0; v < kVecs; ++v) V::store(row + v * V::kLanes, acc[r][v]);
          T* y = out + static_cast<size_t>(n0 + r) * OC + o0;
          for (int c = 0; c < cols; ++c) y[c] = bias ? row[c] + bias[o0 + c] : row[c];
        }
      }
    }
  }
}

template <typename T>
void matmul_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight, int N, int IC,
                     int OC) {
  using V = Vec<T>;
  constexpr int kTile = kVecs * V::kLanes;
  // A reduction tile small enough that its slice of the weight (or of the input) stays in cache while
  // every row block of the thread passes over it.
  constexpr int kDepthTile = 256;
  if (dinp) {
    // dinp[n, i] = Σ_o dout[n,o] · weight[o,i]: rows in chunks per thread, o tiles ascending, the
    // running sum kept in dinp between tiles.
    constexpr int kRowChunk = 64;
    const int chunks = (N + kRowChunk - 1) / kRowChunk;
    const int col_tiles = (IC + kTile - 1) / kTile;
#pragma omp parallel
    {
      std::vector<T> wpad;  // ragged last column tile, zero-padded to kTile
#pragma omp for schedule(static)
      for (int ch = 0; ch < chunks; ++ch) {
        const int n_begin = ch * kRowChunk, n_end = std::min(N, n_begin + kRowChunk);
        for (int n = n_begin; n < n_end; ++n) std::fill_n(dinp + static_cast<size_t>(n) * IC, IC, T(0));
        for (int o0 = 0; o0 < OC; o0 += kDepthTile) {
          const int depth = std::min(kDepthTile, OC - o0);
          for (int ct = 0; ct < col_tiles; ++ct) {
            const int i0 = ct * kTile, cols = std::min(kTile, IC - i0);
            const T* b = weight + static_cast<size_t>(o0) * IC + i0;
            size_t b_step = static_cast<size_t>(IC);
            if (cols < kTile) {
              wpad.assign(static_cast<size_t>(depth) * kTile, T(0));
              for (int k = 0; k < depth; ++k)
                std::copy_n(weight + static_cast<size_t>(o0 + k) * IC + i0, cols, wpad.data() + k * kTile);
              b = wpad.data();
              b_step = kTile;
            }
            for (int n0 = n_begin; n0 < n_end; n0 += kRows) {
              const int rows = std::min(kRows, n_end - n0);
              typename V::type acc[kRows][kVecs];
              T buf[kRows][kTile] = {};
              for (int r = 0; r < rows; ++r)
                std::copy_n(dinp + static_cast<size_t>(n0 + r) * IC + i0, cols, buf[r]);
              for (int r = 0; r < kRows; ++r)
                for (int v = 0; v < kVecs; ++v) acc[r][v] = V::load(buf[r] + v * V::kLanes);
              micro_kernel<T>(acc, dout + static_cast<size_t>(n0) * OC + o0, OC, 1, b, b_step, depth, rows);
              for (int r = 0; r < rows; ++r) {
                for (int v = 0; v < kVecs; ++v) V::store(buf[r] + v * V::kLanes, acc[r][v]);
                std::copy_n(buf[r], cols, dinp + static_cast<size_t>(n0 + r) * IC + i0);
              }
            }
          }
        }
      }
    }
  }
  if (dbias) {
    // Σ_n dout[n, o], n ascending for every o as before, but row by row across a thread's block of
    // columns (contiguous, vectorised) instead of down each column with a stride of OC.
    constexpr int kBiasBlock = 256;
    const int blocks = (OC + kBiasBlock - 1) / kBiasBlock;
#pragma omp parallel for schedule(static)
    for (int bl = 0; bl < blocks; ++bl) {
      const int o0 = bl * kBiasBlock, cols = std::min(kBiasBlock, OC - o0);
      T sum[kBiasBlock] = {};
      for (int n = 0; n < N; ++n) {
        const T* row = dout + static_cast<size_t>(n) * OC + o0;
        for (int c = 0; c < cols; ++c) sum[c] += row[c];
      }
      for (int c = 0; c < cols; ++c) dbias[o0 + c] += sum[c];
    }
  }
  if (dweight) {
    // dweight[o, i] += Σ_n dout[n,o] · inp[n,i], n ascending for every element. The n tiles are the
    // outer loop and every 4-row block of dweight passes over the tile while its slice of inp stays
    // in cache; the running sums wait between tiles in a scratch copy (a float store and load are
    // exact, so the bits are those of one register sum), which is added to dweight at the end. Row
    // blocks inner instead re-read the whole input once per block — OC/4 times, 1 GB per step for a
    // 4,096-piece head — which made this loop 30% of a small model's CPU step.
    const int row_blocks = (OC + kRows - 1) / kRows;
    const int col_tiles = (IC + kTile - 1) / kTile;
    const size_t width = static_cast<size_t>(col_tiles) * kTile;  // a scratch row, padded to whole tiles
    std::vector<T> sums(static_cast<size_t>(OC) * width, T(0));
#pragma omp parallel
    {
      std::vector<T> xpad;
      for (int n0 = 0; n0 < N; n0 += kDepthTile) {
        const int depth = std::min(kDepthTile, N - n0);
#pragma omp for schedule(static)
        for (int rb = 0; rb < row_blocks; ++rb) {
          const int o0 = rb * kRows, rows = std::min(kRows, OC - o0);
          for (int ct = 0; ct < col_tiles; ++ct) {
            const int i0 = ct * kTile, cols = std::min(kTile, IC - i0);
            const T* b = inp + static_cast<size_t>(n0) * IC + i0;
            size_t b_step = static_cast<size_t>(IC);
            if (cols < kTile) {
              xpad.assign(static_cast<size_t>(depth) * kTile, T(0));
              for (int k = 0; k < depth; ++k)
                std::copy_n(inp + static_cast<size_t>(n0 + k) * IC + i0, cols, xpad.data() + k * kTile);
              b = xpad.data();
              b_step = kTile;
            }
            typename V::type acc[kRows][kVecs];
            for (int r = 0; r < kRows; ++r)
              for (int v = 0; v < kVecs; ++v)
                acc[r][v] = r < rows ? V::load(sums.data() + (o0 + r) * width + i0 + v * V::kLanes) : typename V::type{};
            // a[r, k] = dout[n0+k, o0+r]: row stride 1, step stride OC.
            micro_kernel<T>(acc, dout + static_cast<size_t>(n0) * OC + o0, 1, static_cast<size_t>(OC), b, b_step,
                            depth, rows);
            for (int r = 0; r < rows; ++r)
              for (int v = 0; v < kVecs; ++v) V::store(sums.data() + (o0 + r) * width + i0 + v * V::kLanes, acc[r][v]);
          }
        }
      }
#pragma omp for schedule(static)
      for (int o = 0; o < OC; ++o)
        for (int i = 0; i < IC; ++i) dweight[static_cast<size_t>(o) * IC + i] += sums[o * width + i];
    }
  }
}

template void matmul_forward<float>(float*, const float*, const float*, const float*, int, int, int);
template void matmul_forward<double>(double*, const double*, const double*, const double*, int, int, int);
template void matmul_backward<float>(float*, float*, float*, const float*, const float*, const float*, int, int,
                                     int);
template void matmul_backward<double>(double*, double*, double*, const double*, const double*, const double*, int,
                                      int, int);

}  // namespace ferry::kernels::cpu
