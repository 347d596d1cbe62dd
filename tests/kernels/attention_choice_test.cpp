// tests/kernels/attention_choice_test.cpp — the `--attention` policy (kernels/cuda/attention_choice.h)
// without a device: flag parsing, and the benchmark's verdict file, which may choose cuDNN only when
// it was written on this device model with this cuDNN version, cuDNN's forward AND backward both
// passed the reference check there, and cuDNN was measured faster. Speed alone never chooses it.
#include "tests/support/support.h"

#if FERRY_WITH_CUDA
#include <fstream>

#include "base/error.h"
#include "kernels/cuda/attention_choice.h"
#include "kernels/cuda/attention_cudnn.h"

namespace ferry::test {
namespace {

namespace gpu = ferry::kernels::cuda;
using gpu::AttentionBackend;

gpu::AttentionVerdict checked_verdict(double ferry_ms, double cudnn_ms) {
  gpu::AttentionVerdict v;
  v.device = "NVIDIA H200";
  v.cudnn_version = 91400;
  v.ferry_ms = ferry_ms;
  v.cudnn_ms = cudnn_ms;
  v.forward_check = gpu::kCheckPassed;
  v.backward_check = gpu::kCheckPassed;
  return v;
}

AttentionBackend written_then_read(const gpu::AttentionVerdict& v, const std::string& device = "NVIDIA H200",
                                   long version = 91400) {
  TempDir dir;
  const std::string path = (dir.path() / "choice.json").string();
  gpu::write_attention_choice(path, v);
  return gpu::read_attention_choice(path, device, version);
}

TEST(AttentionChoice, UnknownBackendNameIsAUserErrorNamingTheFlag) {
  try {
    gpu::choose_attention("flash");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--attention"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("flash"), std::string::npos) << e.what();
  }
}

TEST(AttentionChoice, FerryIsAlwaysAvailable) { EXPECT_EQ(gpu::choose_attention("ferry"), AttentionBackend::Ferry); }

TEST(AttentionChoice, CudnnEitherRunsHereOrSaysWhyNot) {
  const std::string why = gpu::cudnn_attention_unsupported_reason(0, true);
  if (why.empty()) {
    EXPECT_EQ(gpu::choose_attention("cudnn"), AttentionBackend::Cudnn);
  } else {
    try {
      gpu::choose_attention("cudnn");
      FAIL() << "no error although: " << why;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("--attention ferry"), std::string::npos) << e.what();
    }
  }
  if (!gpu::built_with_cudnn()) EXPECT_NE(why.find("without cuDNN"), std::string::npos) << why;
}

TEST(AttentionChoice, CheckedAndFasterCudnnIsChosenOnItsDeviceAndCudnnVersionOnly) {
  EXPECT_EQ(written_then_read(checked_verdict(2.0, 1.5)), AttentionBackend::Cudnn);
  EXPECT_EQ(written_then_read(checked_verdict(2.0, 1.5), "NVIDIA H100 80GB HBM3"), AttentionBackend::Ferry);
  EXPECT_EQ(written_then_read(checked_verdict(2.0, 1.5), "NVIDIA H200", 91900), AttentionBackend::Ferry);
  EXPECT_EQ(written_then_read(checked_verdict(1.0, 1.5)), AttentionBackend::Ferry) << "cuDNN slower";
  EXPECT_EQ(written_then_read(checked_verdict(1.0, 0.0)), AttentionBackend::Ferry) << "cuDNN not measured";
}

TEST(AttentionChoice, SpeedAloneNeverChoosesCudnn) {
  gpu::AttentionVerdict v = checked_verdict(2.0, 1.0);
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
  EXPECT_EQ(gpu::attention_choice_from_text(old_format, "NVIDIA H200", 91400), AttentionBackend::Ferry);
  // A check that merely mentions "passed" is not one that passed.
  v = checked_verdict(2.0, 1.0);
  v.backward_check = "not passed";
  EXPECT_EQ(written_then_read(v), AttentionBackend::Ferry);
}

TEST(AttentionChoice, TheFileSaysWhatItChoseAndSurvivesQuotesInTheDeviceName) {
  TempDir dir;
  const std::string path = (dir.path() / "choice.json").string();
  gpu::AttentionVerdict v = checked_verdict(2.0, 1.5);
  v.device = "Card \"X\" \\ 2";
  gpu::write_attention_choice(path, v);
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"choice\": \"cudnn\""), std::string::npos) << text;
  EXPECT_EQ(gpu::read_attention_choice(path, v.device, 91400), AttentionBackend::Cudnn) << text;
}

TEST(AttentionChoice, AbsentOrMalformedVerdictIsFerry) {
  TempDir dir;
  const std::string path = (dir.path() / "choice.json").string();
  EXPECT_EQ(gpu::read_attention_choice(path, "NVIDIA H200", 91400), AttentionBackend::Ferry);
  std::ofstream(path) << "not json";
  EXPECT_EQ(gpu::read_attention_choice(path, "NVIDIA H200", 91400), AttentionBackend::Ferry);
}

TEST(AttentionChoice, AutoIsFerryWithoutAVerdict) {
  TempDir dir;
  const std::string path = (dir.path() / "none.json").string();
  ::setenv("FERRY_ATTENTION_CHOICE", path.c_str(), 1);
  EXPECT_EQ(gpu::attention_choice_path(), path);
  EXPECT_EQ(gpu::choose_attention("auto"), AttentionBackend::Ferry);
  ::unsetenv("FERRY_ATTENTION_CHOICE");
}

// Every descriptor of every graph variant is accepted by the cuDNN this was built with (no device:
// this part runs in CI; whether an engine fuses the graph is the gpu test's business).
TEST(AttentionCudnnGraph, EveryNodeOfEveryVariantIsAcceptedByCudnn) {
  if (!gpu::built_with_cudnn()) GTEST_SKIP() << "built without cuDNN";
  for (bool backward : {false, true})
    for (bool causal : {false, true})
      for (bool padded : {false, true})
        for (int HS : {64, 128}) {
          SCOPED_TRACE(std::string(backward ? "backward" : "forward") + (causal ? " causal" : " full") +
                       (padded ? " padded" : "") + " HS" + std::to_string(HS));
          EXPECT_NO_THROW(gpu::check_cudnn_attention_graph(2, 77, 3, HS, causal, padded, backward));
        }
}

}  // namespace
}  // namespace ferry::test
#else
TEST(AttentionChoice, SkippedInCpuOnlyBuild) { GTEST_SKIP() << "built without CUDA"; }
#endif
