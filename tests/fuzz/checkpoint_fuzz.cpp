// tests/fuzz/checkpoint_fuzz.cpp — ferry checkpoints (engine/checkpoint): `--resume`, `--init`,
// `ferry convert`, `ferry generate` all read them.
//
// Input: one mode byte, then the file. Mode bit 0 set: the target rewrites the file's last 8 bytes
// with the right checksum before reading, so the fuzzer gets past the checksum into the header,
// metadata and arrays (a checksum is no defence against a file made to be read: anyone can compute
// it). Properties: a file loads or gives a UserError; every parameter-table entry lies inside the
// parameters; load → save → load gives the same checkpoint, bit for bit, in the dtype it was stored
// in (f32 or bf16 parameters); and saving is canonical (save(load(save(c))) has the bytes of save(c)).
#include "engine/checkpoint/checkpoint.h"
#include "engine/checkpoint/hash64.h"
#include "base/error.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using ferry::Checkpoint;

void expect_same(const Checkpoint& a, const Checkpoint& b) {
  FUZZ_ASSERT(a.step == b.step && a.adam_steps == b.adam_steps, "step or adam_steps changed");
  FUZZ_ASSERT(ferry::model_difference(a.model, b.model).empty() && a.model.preset == b.model.preset,
              "model changed: " + ferry::model_difference(a.model, b.model));
  FUZZ_ASSERT(a.params.size() == b.params.size(), "parameter table changed size");
  for (size_t i = 0; i < a.params.size(); ++i)
    FUZZ_ASSERT(a.params[i].name == b.params[i].name && a.params[i].offset == b.params[i].offset &&
                    a.params[i].numel == b.params[i].numel,
                "parameter table entry changed");
  FUZZ_ASSERT(a.param_dtype == b.param_dtype, "the parameters' dtype changed");
  FUZZ_ASSERT(ferry::fuzz::same_bits(a.parameters, b.parameters), "parameters changed");
  FUZZ_ASSERT(ferry::fuzz::same_bits(a.adam_m, b.adam_m) && ferry::fuzz::same_bits(a.adam_v, b.adam_v),
              "optimizer state changed");
  FUZZ_ASSERT(a.state.dump() == b.state.dump(), "trainer state changed");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry;
  if (size < 1) return 0;
  std::string file(fuzz::as_chars(data + 1, size - 1));
  if ((data[0] & 1) && file.size() >= 8) {
    const uint64_t digest = hash64(file.data(), file.size() - 8);
    std::memcpy(file.data() + file.size() - 8, &digest, 8);
  }
  const auto path = fuzz::write_scratch("in.ckpt", file);
  Checkpoint ck;
  try {
    ck = read_checkpoint(path);
  } catch (const UserError&) {
    return 0;
  }
  // What a reader of the table does (tools/convert's views, the trainer's copy) must stay inside.
  for (const auto& p : ck.params)
    FUZZ_ASSERT(p.offset <= ck.parameters.size() && p.numel <= ck.parameters.size() - p.offset,
                "parameter '" + p.name + "' runs past the parameters");

  const auto saved = fuzz::scratch_dir() / "saved.ckpt";
  write_checkpoint(saved, ck);
  const std::string saved_bytes = fuzz::read_file_bytes(saved);
  Checkpoint reread;
  try {
    reread = read_checkpoint(saved);
  } catch (const UserError& e) {
    FUZZ_ASSERT(false, std::string("a loaded checkpoint, saved again, does not load: ") + e.what());
  }
  expect_same(ck, reread);
  write_checkpoint(saved, reread);
  FUZZ_ASSERT(fuzz::read_file_bytes(saved) == saved_bytes, "saving is not canonical");
  return 0;
}
