// engine/finetune/techniques.cpp
#include "engine/finetune/techniques.h"

#include <cmath>

#include "base/error.h"
#include "base/setting_error.h"

namespace ferry {

namespace {

int lower_bound_of(const std::string& freeze) {
  if (freeze.rfind("lower:", 0) != 0) return -1;
  try {
    size_t used = 0;
    const int n = std::stoi(freeze.substr(6), &used);
    if (used == freeze.size() - 6 && n >= 0) return n;
  } catch (const std::exception&) {
  }
  setting_error("freeze", "'", freeze, "' is not lower:N with N >= 0");
}

bool is_head(const std::string& n) { return n.rfind("head.", 0) == 0; }
bool is_lora(const std::string& n) { return n.find(".lora_") != std::string::npos; }
bool is_final_norm(const std::string& n) { return n.rfind("ln_f.", 0) == 0; }

}  // namespace

void validate_techniques(const Techniques& t, const GptConfig& c) {
  if (t.freeze != "none" && t.freeze != "trunk") {
    if (t.freeze.rfind("lower:", 0) != 0) setting_error("freeze", "'", t.freeze, "' is not none, trunk or lower:N");
    if (lower_bound_of(t.freeze) > c.n_layer)
      setting_error("freeze", t.freeze, " exceeds the model's ", c.n_layer, " layers");
  }
  if (!(t.layer_lr_decay > 0.0f && t.layer_lr_decay <= 1.0f))
    setting_error("layer_lr_decay", "must be in (0, 1], got ", t.layer_lr_decay);
  if (!(t.trunk_lr_scale > 0.0f && t.trunk_lr_scale <= 1.0f))
    setting_error("trunk_lr_scale", "must be in (0, 1], got ", t.trunk_lr_scale);
  if (t.lora.rank < 0) setting_error("lora_rank", "must be >= 0, got ", t.lora.rank);
  if (t.lora.rank > 0 && !(t.lora.alpha > 0)) setting_error("lora_alpha", "must be positive, got ", t.lora.alpha);
  if (t.unfreeze_every < 0) setting_error("unfreeze_every", "must be >= 0, got ", t.unfreeze_every);
}

void apply_techniques(Graph& g, const GptConfig& c, const Techniques& t, int unfrozen_top) {
  const int lower = t.freeze.rfind("lower:", 0) == 0 ? lower_bound_of(t.freeze) : -1;
  const bool lora = t.lora.rank > 0;
  for (ParamInfo& p : g.params) {
    const bool block = p.layer >= 0;
    const bool embedding = !block && !is_head(p.name) && !is_final_norm(p.name);
    bool train = true;
    if (is_head(p.name)) {
      train = true;
    } else if (is_lora(p.name)) {
      train = lora;
    } else {
      if (lora || t.freeze == "trunk") train = false;
      if (lower >= 0 && (embedding || (block && p.layer < lower))) train = false;
      if (unfrozen_top >= 0) {
        if (block && p.layer < c.n_layer - unfrozen_top) train = false;
        if (embedding && unfrozen_top <= c.n_layer) train = false;
      }
    }
    if (is_lora(p.name) && unfrozen_top >= 0 && p.layer < c.n_layer - unfrozen_top) train = false;
    p.trainable = train;
    const int depth = block ? c.n_layer - 1 - p.layer : (embedding ? c.n_layer : 0);
    p.lr_scale = static_cast<float>(std::pow(double(t.layer_lr_decay), depth)) *
                 (is_head(p.name) ? 1.0f : t.trunk_lr_scale);
  }
}

int64_t trainable_count(const Graph& g) {
  int64_t n = 0;
  for (const ParamInfo& p : g.params)
    if (p.trainable) n += p.numel;
  return n;
}

}  // namespace ferry
