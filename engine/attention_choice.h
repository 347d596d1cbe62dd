// engine/attention_choice.h — which attention runs on the CUDA backend (the run's `attention`
// setting: ferry, cudnn or auto), and the benchmark's verdict file "auto" reads. Engine policy, apart
// from cuDNN's graph code (kernels/cuda/attention_cudnn.*, which only says what it can run here);
// it needs neither cuDNN nor a device to be tested.
//
// "auto" is ferry's kernel unless a verdict written on this device model with this cuDNN version
// says that cuDNN's forward AND backward both passed the reference check on that card, and that
// cuDNN was faster there. Speed alone never chooses cuDNN: a verdict without both checks passed
// (an older file, a check that failed or did not run) reads as ferry.
#pragma once
#include <string>

namespace ferry {

enum class AttentionBackend { Ferry, Cudnn };

const char* attention_backend_name(AttentionBackend backend);

// What kernels_bench --attention-choice measured on one card. A check is "passed" or a one-line
// reason ("failed: dQ relative error 3.1 at B2T77H3D64", "not run: ...").
struct AttentionVerdict {
  std::string device;       // cudaDeviceProp::name
  long cudnn_version = 0;   // cudnnGetVersion()
  double ferry_ms = 0;      // forward + backward over the benchmark's attention shapes
  double cudnn_ms = 0;      // the same for cuDNN; 0: not measured
  std::string forward_check = "not run";
  std::string backward_check = "not run";
};

inline constexpr const char* kCheckPassed = "passed";

// Writes the verdict as one small JSON object (UserError naming the path if it cannot).
void write_attention_choice(const std::string& path, const AttentionVerdict& v);
// The choice a verdict file makes for this device and cuDNN version: Cudnn only when the file is
// for them, both checks read "passed", and cuDNN's time is measured and below ferry's. An absent,
// unreadable or malformed file reads as Ferry.
AttentionBackend read_attention_choice(const std::string& path, const std::string& device_name, long cudnn_version);
// The same rule on the file's text (what read_attention_choice applies).
AttentionBackend attention_choice_from_text(const std::string& text, const std::string& device_name,
                                            long cudnn_version);

// Where "auto" looks for the verdict: $FERRY_ATTENTION_CHOICE, else
// $XDG_CACHE_HOME/ferry/attention_choice.json, else $HOME/.cache/ferry/attention_choice.json.
std::string attention_choice_path();

// The `attention` setting. "ferry" always works; "cudnn" checks that this build has cuDNN and that
// the installed cuDNN and the device can run it (a SettingError naming `attention`, one line,
// otherwise); "auto" applies the verdict above (and cuDNN must be able to run here). Anything else
// is a SettingError naming `attention`.
AttentionBackend choose_attention(const std::string& requested);

}  // namespace ferry
