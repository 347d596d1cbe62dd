// engine/ops/register.cpp
#include "engine/ops/ops.h"

namespace ferry {

void register_builtin_ops() {
  register_embedding_ops();
  register_layernorm_ops();
  register_matmul_ops();
  register_gelu_ops();
  register_attention_ops();
  register_cross_entropy_ops();
  register_elementwise_ops();
  register_pooling_ops();
}

}  // namespace ferry
