// engine/attention_choice.cpp — the `attention` policy (see attention_choice.h).
#include "engine/attention_choice.h"

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "base/error.h"
#include "base/setting_error.h"

#if FERRY_WITH_CUDA
#include "kernels/cuda/attention_cudnn.h"
#endif

namespace ferry {

namespace {

// JSON string contents: the device name and the check lines are ours, but a quote or a backslash
// must not break the file.
std::string escaped(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (c == '"' || c == '\\') r += '\\';
    r += (c == '\n' || c == '\r') ? ' ' : c;
  }
  return r;
}

bool string_field(const std::string& text, const char* key, std::string& value) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(std::string("\"") + key + "\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"")))
    return false;
  value = std::regex_replace(m[1].str(), std::regex("\\\\(.)"), "$1");
  return true;
}

bool number_field(const std::string& text, const char* key, double& value) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(std::string("\"") + key + "\"\\s*:\\s*([-+0-9.eE]+)"))) return false;
  try {
    value = std::stod(m[1].str());
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

}  // namespace

const char* attention_backend_name(AttentionBackend backend) {
  return backend == AttentionBackend::Cudnn ? "cudnn" : "ferry";
}

void write_attention_choice(const std::string& path, const AttentionVerdict& v) {
  std::ostringstream body;
  body << "{\"device\": \"" << escaped(v.device) << "\", \"cudnn_version\": " << v.cudnn_version
       << ", \"forward_check\": \"" << escaped(v.forward_check) << "\", \"backward_check\": \""
       << escaped(v.backward_check) << "\", \"ferry_ms\": " << v.ferry_ms << ", \"cudnn_ms\": " << v.cudnn_ms;
  // For the reader of the file: what the rule below makes of it on the card it was measured on.
  const AttentionBackend choice = attention_choice_from_text(body.str() + "}", v.device, v.cudnn_version);
  std::ofstream f(path);
  f << body.str() << ", \"choice\": \"" << attention_backend_name(choice) << "\"}\n";
  if (!f) user_error("cannot write the attention verdict file ", path);
}

AttentionBackend attention_choice_from_text(const std::string& text, const std::string& device_name,
                                            long cudnn_version) {
  std::string device, forward, backward;
  double version = -1, ferry_ms = 0, cudnn_ms = 0;
  // The verdict only holds for the card model and cuDNN release it was measured with.
  if (!string_field(text, "device", device) || device != device_name) return AttentionBackend::Ferry;
  if (!number_field(text, "cudnn_version", version) || static_cast<long>(version) != cudnn_version)
    return AttentionBackend::Ferry;
  // Correctness first: both directions checked against the reference on this card.
  if (!string_field(text, "forward_check", forward) || forward != kCheckPassed) return AttentionBackend::Ferry;
  if (!string_field(text, "backward_check", backward) || backward != kCheckPassed) return AttentionBackend::Ferry;
  // Then speed, from the measured times (not from a label): cuDNN measured and faster.
  if (!number_field(text, "ferry_ms", ferry_ms) || !number_field(text, "cudnn_ms", cudnn_ms))
    return AttentionBackend::Ferry;
  return cudnn_ms > 0 && ferry_ms > 0 && cudnn_ms < ferry_ms ? AttentionBackend::Cudnn : AttentionBackend::Ferry;
}

AttentionBackend read_attention_choice(const std::string& path, const std::string& device_name, long cudnn_version) {
  std::ifstream f(path);
  if (!f) return AttentionBackend::Ferry;
  std::stringstream ss;
  ss << f.rdbuf();
  return attention_choice_from_text(ss.str(), device_name, cudnn_version);
}

std::string attention_choice_path() {
  if (const char* p = std::getenv("FERRY_ATTENTION_CHOICE"); p && *p) return p;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/ferry/attention_choice.json";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/ferry/attention_choice.json";
  return "attention_choice.json";
}

AttentionBackend choose_attention(const std::string& requested) {
  if (requested == "ferry") return AttentionBackend::Ferry;
#if FERRY_WITH_CUDA
  namespace kc = kernels::cuda;
  if (requested == "cudnn") {
    const std::string why = kc::cudnn_attention_unsupported_reason(0, true);
    if (!why.empty()) setting_error("attention", "cudnn: ", why, "; ferry's attention runs everywhere");
    return AttentionBackend::Cudnn;
  }
  if (requested == "auto") {
    const std::string device = kc::cuda_device_name();
    if (device.empty()) return AttentionBackend::Ferry;
    if (read_attention_choice(attention_choice_path(), device, kc::cudnn_runtime_version()) == AttentionBackend::Cudnn &&
        kc::cudnn_attention_unsupported_reason(0, true).empty())
      return AttentionBackend::Cudnn;
    return AttentionBackend::Ferry;
  }
#else
  if (requested == "cudnn") setting_error("attention", "cudnn: this ferry was built without CUDA");
  if (requested == "auto") return AttentionBackend::Ferry;
#endif
  setting_error("attention", "'", requested, "' is not one of ferry, cudnn, auto");
}

}  // namespace ferry
