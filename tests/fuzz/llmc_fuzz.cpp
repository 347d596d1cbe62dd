// tests/fuzz/llmc_fuzz.cpp — llm.c model files (`ferry convert`, `--init`): a 1024-byte int32 header,
// then the tensors. Properties: a file loads or gives a UserError, without allocating more than its
// header's sizes justify against the file's length; load → save (in the file's own precision) →
// load gives the same weights bit for bit (NaN payloads aside in bf16, where NaN stays NaN); saving
// is canonical.
#include <cmath>

#include "base/error.h"
#include "tests/fuzz/fuzz_support.h"
#include "tools/convert/model_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry;
  using namespace ferry::convert;
  const auto path = fuzz::write_scratch("in.bin", fuzz::as_chars(data, size));
  Checkpoint model;
  try {
    model = read_llmc(path);
  } catch (const UserError&) {
    return 0;
  }
  int32_t version;
  std::memcpy(&version, data + 4, 4);
  const WeightType type = version == kLlmcVersionF32 ? WeightType::F32 : WeightType::BF16;
  const auto saved = fuzz::scratch_dir() / "saved.bin";
  write_llmc(saved, model, type);
  const std::string saved_bytes = fuzz::read_file_bytes(saved);
  Checkpoint reread;
  try {
    reread = read_llmc(saved);
  } catch (const UserError& e) {
    FUZZ_ASSERT(false, std::string("a loaded llm.c file, saved again, does not load: ") + e.what());
  }
  FUZZ_ASSERT(model_difference(model.model, reread.model).empty(), "model config changed");
  FUZZ_ASSERT(model.parameters.size() == reread.parameters.size(), "parameter count changed");
  for (size_t i = 0; i < model.parameters.size(); ++i) {
    const float a = model.parameters[i], b = reread.parameters[i];
    FUZZ_ASSERT((std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, 4) == 0, "weight " + std::to_string(i) + " changed");
  }
  write_llmc(saved, reread, type);
  FUZZ_ASSERT(fuzz::read_file_bytes(saved) == saved_bytes, "saving is not canonical");
  return 0;
}
