// kernels/cross_entropy.h — fused softmax + cross-entropy over the vocabulary, forward and
// backward in one pass, probabilities never stored.
//
// Contract (N rows, V classes):
//   losses[n] = logsumexp(logits[n,:]) - logits[n, targets[n]]      written; 0 where ignored
//   returns (CPU) / writes (CUDA) the mean over rows whose target != ignore_index (0 when none).
//   When dlogits is non-null:
//     dlogits[n,v] = scale · (softmax(logits[n,:])[v] - [v == targets[n]]) / n_valid
//     and 0 on ignored rows. dlogits may alias logits (in place).
// Targets outside [0, V) other than ignore_index are a caller error.
#pragma once
#include <cstdint>

namespace ferry::kernels::cpu {

template <typename T>
T cross_entropy_forward_backward(T* losses, T* dlogits, const T* logits, const int32_t* targets, int N, int V,
                                 T scale, int32_t ignore_index);

}  // namespace ferry::kernels::cpu
