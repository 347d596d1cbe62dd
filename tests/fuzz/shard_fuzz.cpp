// tests/fuzz/shard_fuzz.cpp — llm.c token shards (engine/data/shard.h) and the loader that cuts them
// into windows (engine/data/loader.h).
// Input: u16 vocab size (0 means 65536), one byte T (window length - 1, 1..64), one byte of flags
// (bit 0: shuffle), then the shard file.
// Properties: a shard maps or gives a UserError; its tokens all lie in the vocabulary; writing them
// gives a shard that reads back to the same tokens (and rewriting that is byte-identical); a loader
// over it gives targets that are the inputs shifted by one, and a loader restored from a saved
// position (through its JSON) continues with the same batch as the one that saved it.
#include <nlohmann/json.hpp>

#include "engine/data/loader.h"
#include "engine/data/shard.h"
#include "base/error.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry;
  using namespace ferry::data;
  if (size < 4) return 0;
  const int vocab = data[0] | (data[1] << 8) ? (data[0] | (data[1] << 8)) : 65536;
  const int T = 1 + data[2] % 64;
  const bool shuffle = data[3] & 1;
  // The loader takes the files of a folder matching *_train_*.bin.
  const auto dir = fuzz::scratch_dir() / "shards";
  std::filesystem::create_directories(dir);
  const auto path = dir / "fuzz_train_000000.bin";
  {
    const auto written = fuzz::write_scratch("shards/fuzz_train_000000.bin", fuzz::as_chars(data + 4, size - 4));
    (void)written;
  }
  std::vector<uint16_t> tokens;
  try {
    tokens = read_shard(path, vocab);
  } catch (const UserError&) {
    return 0;
  }
  for (const uint16_t t : tokens) FUZZ_ASSERT(t < vocab, "token outside the vocabulary");

  const auto saved = fuzz::scratch_dir() / "saved.bin";
  write_shard(saved, std::span<const uint16_t>(tokens));
  const std::string saved_bytes = fuzz::read_file_bytes(saved);
  std::vector<uint16_t> reread;
  try {
    reread = read_shard(saved, vocab);
  } catch (const UserError& e) {
    FUZZ_ASSERT(false, std::string("a shard's tokens, written again, do not read: ") + e.what());
  }
  FUZZ_ASSERT(reread == tokens, "tokens changed");
  write_shard(saved, std::span<const uint16_t>(reread));
  FUZZ_ASSERT(fuzz::read_file_bytes(saved) == saved_bytes, "writing is not canonical");

  LoaderOptions o;
  o.pattern = dir.string();
  o.B = 1;
  o.T = T;
  o.shuffle = shuffle;
  o.seed = data[3];
  o.vocab_size = vocab;
  std::unique_ptr<TokenLoader> loader;
  try {
    loader = std::make_unique<TokenLoader>(o);
  } catch (const UserError&) {
    FUZZ_ASSERT(tokens.size() <= static_cast<size_t>(T), "a shard with a full window was refused");
    return 0;
  }
  std::vector<int32_t> in(T), tg(T), in2(T), tg2(T);
  loader->next_batch(in.data(), tg.data());
  for (int i = 0; i + 1 < T; ++i) FUZZ_ASSERT(tg[i] == in[i + 1], "targets are not the inputs shifted");
  const nlohmann::json position = loader->position();
  loader->next_batch(in.data(), tg.data());
  TokenLoader resumed(o);
  resumed.restore(position.get<LoaderPosition>());
  resumed.next_batch(in2.data(), tg2.data());
  FUZZ_ASSERT(in == in2 && tg == tg2, "a restored loader continues with another batch");
  return 0;
}
