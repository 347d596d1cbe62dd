// tests/kernels/attention_cases.h — the attention shapes every attention backend is checked at (ferry's
// kernels and cuDNN's against the same CPU reference), and the helpers both tests read them with.
// Only meaningful in a CUDA build; include it inside `#if FERRY_WITH_CUDA`.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ferry::test {

struct AttentionCase {
  int B, T, NH, HS;
  bool causal;
  bool padded;
};

// Round and ragged T (1, 77, 200, 333), both head dims, causal and bidirectional, with and without
// key padding.
inline std::vector<AttentionCase> attention_cases() {
  return {{2, 128, 2, 64, true, false}, {2, 128, 2, 64, false, false}, {1, 77, 3, 64, true, false},
          {3, 77, 2, 128, true, true},  {2, 200, 2, 128, false, true}, {2, 1, 1, 64, true, false},
          {1, 333, 1, 128, true, false}, {4, 96, 2, 64, false, true}};
}

inline std::string attention_case_name(const ::testing::TestParamInfo<AttentionCase>& info) {
  const AttentionCase& c = info.param;
  return "B" + std::to_string(c.B) + "T" + std::to_string(c.T) + "H" + std::to_string(c.NH) + "D" +
         std::to_string(c.HS) + (c.causal ? "Causal" : "Full") + (c.padded ? "Padded" : "");
}

// The part (0 = Q, 1 = K, 2 = V) of a [B, T, 3C] tensor.
inline std::vector<double> qkv_part(const std::vector<double>& x, int which, int BT, int C) {
  std::vector<double> r(size_t(BT) * C);
  for (int i = 0; i < BT; ++i)
    for (int c = 0; c < C; ++c) r[size_t(i) * C + c] = x[size_t(i) * 3 * C + size_t(which) * C + c];
  return r;
}

}  // namespace ferry::test
