// engine/finetune/techniques.h — fine-tuning techniques as options of one task graph: which
// parameters train (ParamInfo::trainable, read by autodiff, so frozen parts cost no backward work)
// and at what learning-rate multiple (ParamInfo::lr_scale, read by AdamW's segments).
//
//   freeze          none | trunk (head only) | lower:N (embeddings and blocks < N)
//   gradual         unfrozen_top = k: only the top k blocks (and the head) train; embeddings join
//                   when every block has (ULMFiT's gradual unfreezing; the loop raises k)
//   layer_lr_decay  block l trains at decay^(n_layer−1−l), embeddings at decay^n_layer (ULMFiT's
//                   discriminative rates); the final norm and heads at 1
//   LoRA            adapters train, the trunk's own weights are frozen (heads still train)
//   trunk_lr_scale  every trunk parameter's rate times this (the head keeps the full rate): a
//                   pretrained trunk moves slowly while a fresh head learns fast
#pragma once
#include <string>

#include "engine/graph.h"
#include "engine/model/encoder.h"

namespace ferry {

struct Techniques {
  std::string freeze = "none";
  float layer_lr_decay = 1.0f;
  LoraConfig lora;
  int unfreeze_every = 0;  // steps between gradual-unfreezing stages; 0 = off
  float trunk_lr_scale = 1.0f;
};

// UserError naming the option for a bad value.
void validate_techniques(const Techniques& t, const GptConfig& c);

// unfrozen_top: blocks trainable from the top under gradual unfreezing; < 0 = no limit.
void apply_techniques(Graph& g, const GptConfig& c, const Techniques& t, int unfrozen_top = -1);

// Trainable parameter count after apply_techniques.
int64_t trainable_count(const Graph& g);

}  // namespace ferry
