// tests/engine/attention_choice_test.cpp — the `attention` policy (engine/attention_choice.h)
// without a device: the setting's values, and the benchmark's verdict file, which may choose cuDNN
// only when it was written on this device model with this cuDNN version, cuDNN's forward AND
// backward both passed the reference check there, and cuDNN was measured faster. Speed alone never
// chooses it. Errors name the setting (`attention`), never a flag: the command line adds that.
#include "tests/support/support.h"

#include "base/error.h"
#include "base/setting_error.h"
#include "engine/attention_choice.h"

#include <fstream>

#if FERRY_WITH_CUDA
#include "kernels/cuda/attention_cudnn.h"
#endif

namespace ferry::test {
namespace {


AttentionVerdict checked_verdict(double ferry_ms, double cudnn_ms) {
  AttentionVerdict v;
  v.device = "NVIDIA H200";
  v.cudnn_version = 91400;
  v.ferry_ms = ferry_ms;
  v.cudnn_ms = cudnn_ms;
  v.forward_check = kCheckPassed;
  v.backward_check = kCheckPassed;
  return v;
}

AttentionBackend written_then_read(const AttentionVerdict& v, const std::string& device = "NVIDIA H200",
                                   long version = 91400) {
  TempDir dir;
  const std::string path = (dir.path() / "choice.json").string();
  write_attention_choice(path, v);
  return read_attention_choice(path, device, version);
}

TEST(AttentionChoice, UnknownBackendNameIsASettingErrorNamingTheSettingNotAFlag) {
  try {
    choose_attention("flash");
    FAIL() << "no error";
  } catch (const SettingError& e) {
    EXPECT_EQ(e.setting(), "attention");
    EXPECT_EQ(std::string(e.what()), "attention 'flash' is not one of ferry, cudnn, auto");
    EXPECT_EQ(std::string(e.what()).find("--"), std::string::npos) << e.what();
  }
}

TEST(AttentionChoice, FerryIsAlwaysAvailable) { EXPECT_EQ(choose_attention("ferry"), AttentionBackend::Ferry); }

#if FERRY_WITH_CUDA
TEST(AttentionChoice, CudnnEitherRunsHereOrSaysWhyNot) {
  const std::string why = kernels::cuda::cudnn_attention_unsupported_reason(0, true);
  if (why.empty()) {
    EXPECT_EQ(choose_attention("cudnn"), AttentionBackend::Cudnn);
  } else {
    try {
      choose_attention("cudnn");
      FAIL() << "no error although: " << why;
    } catch (const SettingError& e) {
      EXPECT_EQ(e.setting(), "attention");
      EXPECT_EQ(e.detail(), "cudnn: " + why + "; ferry's attention runs everywhere");
    }
  }
  if (!kernels::cuda::built_with_cudnn()) EXPECT_NE(why.find("without cuDNN"), std::string::npos) << why;
}
#else
TEST(AttentionChoice, CudnnNeedsACudaBuild) {
  EXPECT_THROW(choose_attention("cudnn"), SettingError);
  EXPECT_EQ(choose_attention("auto"), AttentionBackend::Ferry);
}
#endif

TEST(AttentionChoice, CheckedAndFasterCudnnIsChosenOnItsDeviceAndCudnnVersionOnly) {
  EXPECT_EQ(written_then_read(checked_verdict(2.0, 1.5)), AttentionBackend::Cudnn);
  EXPECT_EQ(written_then_read(checked_verdict(2.0, 1.5), "NVIDIA H100 80GB HBM3"), AttentionBackend::Ferry);
  EXPECT_EQ(written_then_read(checked_verdict(2.0, 1.5), "NVIDIA H200", 91900), AttentionBackend::Ferry);
  EXPECT_EQ(written_then_read(checked_verdict(1.0, 1.5)), AttentionBackend::Ferry) << "cuDNN slower";
  EXPECT_EQ(written_then_read(checked_verdict(1.0, 0.0)), AttentionBackend::Ferry) << "cuDNN not measured";
}

TEST(AttentionChoice, SpeedAloneNeverChoosesCudnn) {
  AttentionVerdict v = checked_verdict(2.0, 1.0);
  v.backward_check = "failed: dQ relative error 0.9 at B2T77H3D64";
  EXPECT_EQ(written_then_read(v), AttentionBackend::Ferry) << "backward failed its check";
  v = checked_verdict(2.0, 1.0);
  v.forward_check = "failed: out relative error 0.5";
  EXPECT_EQ(written_then_read(v), AttentionBackend::Ferry) << "forward failed its check";
  v = checked_verdict(2.0, 1.0);
  v.forward_check = v.backward_check = "not run";
  EXPECT_EQ(written_then_read(v), AttentionBackend::Ferry) << "no check ran";
  // The file an older benchmark wrote (speed only, a "faster" label, no checks) is refused.
  const std::string old_format =
      R"({"device": "NVIDIA H200", "cudnn_version": 91400, "ferry_ms": 2, "cudnn_ms": 1, "faster": "cudnn"})";
  EXPECT_EQ(attention_choice_from_text(old_format, "NVIDIA H200", 91400), AttentionBackend::Ferry);
  // A check that merely mentions "passed" is not one that passed.
  v = checked_verdict(2.0, 1.0);
  v.backward_check = "not passed";
  EXPECT_EQ(written_then_read(v), AttentionBackend::Ferry);
}

TEST(AttentionChoice, TheFileSaysWhatItChoseAndSurvivesQuotesInTheDeviceName) {
  TempDir dir;
  const std::string path = (dir.path() / "choice.json").string();
  AttentionVerdict v = checked_verdict(2.0, 1.5);
  v.device = "Card \"X\" \\ 2";
  write_attention_choice(path, v);
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"choice\": \"cudnn\""), std::string::npos) << text;
  EXPECT_EQ(read_attention_choice(path, v.device, 91400), AttentionBackend::Cudnn) << text;
}

TEST(AttentionChoice, AbsentOrMalformedVerdictIsFerry) {
  TempDir dir;
  const std::string path = (dir.path() / "choice.json").string();
  EXPECT_EQ(read_attention_choice(path, "NVIDIA H200", 91400), AttentionBackend::Ferry);
  std::ofstream(path) << "not json";
  EXPECT_EQ(read_attention_choice(path, "NVIDIA H200", 91400), AttentionBackend::Ferry);
}

TEST(AttentionChoice, AutoIsFerryWithoutAVerdict) {
  TempDir dir;
  const std::string path = (dir.path() / "none.json").string();
  ::setenv("FERRY_ATTENTION_CHOICE", path.c_str(), 1);
  EXPECT_EQ(attention_choice_path(), path);
  EXPECT_EQ(choose_attention("auto"), AttentionBackend::Ferry);
  ::unsetenv("FERRY_ATTENTION_CHOICE");
}

}  // namespace
}  // namespace ferry::test
