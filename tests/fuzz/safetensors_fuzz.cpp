// tests/fuzz/safetensors_fuzz.cpp — Hugging Face safetensors (`ferry convert`, `--init`): a u64 header
// length, a JSON header of tensor names, dtypes, shapes and offsets, then the data.
// Input: one byte, then the file. The byte's bit 0 set: the caller passes n_head = byte >> 1 (as
// `--n-head` does); clear: n_head comes from the file's metadata.
// Properties: a file loads or gives a UserError, allocating nothing its length cannot back; load →
// save (F32) → load gives the same weights bit for bit; saving is canonical.
#include <optional>

#include "base/error.h"
#include "tests/fuzz/fuzz_support.h"
#include "tools/convert/model_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry;
  using namespace ferry::convert;
  if (size < 1) return 0;
  const std::optional<int> n_head = (data[0] & 1) ? std::optional<int>(data[0] >> 1) : std::nullopt;
  const auto path = fuzz::write_scratch("in.safetensors", fuzz::as_chars(data + 1, size - 1));
  Checkpoint model;
  try {
    model = read_safetensors(path, n_head);
  } catch (const UserError&) {
    return 0;
  }
  const auto saved = fuzz::scratch_dir() / "saved.safetensors";
  write_safetensors(saved, model, WeightType::F32);
  const std::string saved_bytes = fuzz::read_file_bytes(saved);
  Checkpoint reread;
  try {
    reread = read_safetensors(saved);  // n_head from the metadata ferry writes
  } catch (const UserError& e) {
    FUZZ_ASSERT(false, std::string("a loaded safetensors file, saved again, does not load: ") + e.what());
  }
  FUZZ_ASSERT(model_difference(model.model, reread.model).empty(),
              "model config changed: " + model_difference(model.model, reread.model));
  FUZZ_ASSERT(fuzz::same_bits(model.parameters, reread.parameters), "weights changed");
  write_safetensors(saved, reread, WeightType::F32);
  FUZZ_ASSERT(fuzz::read_file_bytes(saved) == saved_bytes, "saving is not canonical");
  return 0;
}
