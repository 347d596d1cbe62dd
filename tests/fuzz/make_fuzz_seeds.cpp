// tests/fuzz/make_fuzz_seeds.cpp — writes the committed seed corpus (tests/fuzz/corpus/<target>/):
// valid files made by ferry's own writers, the small configs and text fixtures the tests use, each in
// the target's input layout (mode bytes first). Run once when a format or target changes:
//   build-fuzz/fuzz/make_fuzz_seeds tests/fuzz/corpus
// Seeds are kept small (a tiny model): libFuzzer mutates small inputs fastest, and the corpus stays
// a few hundred kilobytes.
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/checkpoint/checkpoint.h"
#include "engine/data/shard.h"
#include "tests/fuzz/fuzz_support.h"
#include "tools/convert/model_file.h"

namespace fs = std::filesystem;
using namespace ferry;

namespace {

fs::path g_root;

void seed(const std::string& target, const std::string& name, const std::string& bytes) {
  const fs::path dir = g_root / target;
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string file_bytes(const fs::path& p) { return fuzz::read_file_bytes(p); }

std::string source_file(const std::string& rel) {
  const std::string s = file_bytes(fs::path(FERRY_SOURCE_DIR) / rel);
  if (s.empty()) {
    std::fprintf(stderr, "make_fuzz_seeds: %s is missing or empty\n", rel.c_str());
    std::exit(1);
  }
  return s;
}

// A model small enough to mutate quickly: every tensor kind, a few hundred weights.
Checkpoint tiny_model(bool tied, bool causal) {
  Checkpoint m;
  m.model.preset = "fuzz";
  m.model.n_layer = 1;
  m.model.n_head = 2;
  m.model.n_embd = 4;
  m.model.vocab_size = 8;
  m.model.max_seq_len = 4;
  m.model.tied_head = tied;
  m.model.causal = causal;
  m.params = gpt_param_table(m.model);
  uint64_t n = 0;
  for (const auto& p : m.params) n = std::max(n, p.offset + p.numel);
  m.parameters.resize(n);
  for (uint64_t i = 0; i < n; ++i) m.parameters[i] = 0.01f * static_cast<float>(static_cast<int>(i % 17) - 8);
  return m;
}

std::string written(const std::function<void(const fs::path&)>& write) {
  const fs::path p = fuzz::scratch_dir() / "seed.tmp";
  write(p);
  return file_bytes(p);
}

std::string prefixed(char mode, const std::string& s) { return std::string(1, mode) + s; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fuzz_seeds CORPUS_DIR\n");
    return 2;
  }
  g_root = argv[1];

  // Checkpoints: a training run's (optimizer state, trainer state), an imported model's, and that
  // model as a bf16 model file (the bytes of `ferry convert encoder.ckpt out.ckpt --dtype bf16`).
  Checkpoint run = tiny_model(true, true);
  run.step = 12;
  run.adam_steps = 12;
  run.adam_m.assign(run.parameters.size(), 0.001f);
  run.adam_v.assign(run.parameters.size(), 0.0001f);
  run.state = {{"schedule", {{"step", 12}}},
               {"rng", "1234567890"},
               {"data", {{"epoch", 0}, {"shard_slot", 0}, {"window_slot", 3}, {"T", 4}}}};
  const std::string run_ckpt = written([&](const fs::path& p) { write_checkpoint(p, run); });
  const Checkpoint encoder = tiny_model(false, false);
  const std::string model_ckpt = written([&](const fs::path& p) { write_checkpoint(p, encoder); });
  seed("checkpoint_fuzz", "run_fixup", prefixed(1, run_ckpt));
  seed("checkpoint_fuzz", "run_raw", prefixed(0, run_ckpt));
  seed("checkpoint_fuzz", "encoder_fixup", prefixed(1, model_ckpt));
  Checkpoint bf16_model = encoder;
  bf16_model.param_dtype = ParamDtype::BF16;
  seed("checkpoint_fuzz", "bf16_model_fixup",
       prefixed(1, written([&](const fs::path& p) { write_checkpoint(p, bf16_model); })));

  // llm.c model files, fp32 and bf16.
  const Checkpoint gpt = tiny_model(true, true);
  seed("llmc_fuzz", "f32", written([&](const fs::path& p) { convert::write_llmc(p, gpt, convert::WeightType::F32); }));
  seed("llmc_fuzz", "bf16", written([&](const fs::path& p) { convert::write_llmc(p, gpt, convert::WeightType::BF16); }));

  // safetensors: n_head from the metadata, or from the caller (mode 2·n_head + 1); an untied head.
  const std::string st_f32 = written([&](const fs::path& p) { convert::write_safetensors(p, gpt, convert::WeightType::F32); });
  seed("safetensors_fuzz", "f32_metadata", prefixed(0, st_f32));
  seed("safetensors_fuzz", "f32_caller", prefixed(2 * 2 + 1, st_f32));
  seed("safetensors_fuzz", "bf16_untied",
       prefixed(0, written([&](const fs::path& p) {
         convert::write_safetensors(p, tiny_model(false, true), convert::WeightType::BF16);
       })));

  // Token shards: GPT-2's vocabulary and a byte-level one (vocab u16, T-1, flags, file).
  std::vector<uint16_t> tokens;
  for (int i = 0; i < 40; ++i) tokens.push_back(static_cast<uint16_t>((i * 7919) % 256));
  const std::string shard = written([&](const fs::path& p) { data::write_shard(p, std::span<const uint16_t>(tokens)); });
  seed("shard_fuzz", "gpt2_vocab", std::string("\x51\xc4\x03\x00", 4) + shard);  // 50257, T=4
  seed("shard_fuzz", "bytes_shuffled", std::string("\x00\x01\x07\x01", 4) + shard);  // 256, T=8, shuffle

  // Run configs and the fine-tuning configs, as the tests and the README use them.
  for (const char* c : {"tiny", "small", "interop_check", "gpt2-124m"})
    seed("run_config_fuzz", c, source_file(std::string("configs/") + c + ".toml"));
  for (const char* c : {"finetune_sentiment", "finetune_ner", "finetune_multi", "finetune_pretrain"}) {
    seed("finetune_config_fuzz", c, prefixed(0, source_file(std::string("configs/") + c + ".toml")));
  }
  seed("finetune_config_fuzz", "flag_wins", prefixed(1, "batch_size = 8\nlr = 3e-4\nfreeze = \"lower:2\"\n"));
  seed("finetune_config_fuzz", "old_spelling", prefixed(0, "batch-size = 8\nseq-len = 32\n"));

  // The tokenizer: text of several scripts and invalid UTF-8, each vocabulary; ids to decode.
  const std::string texts[] = {
      "Hello, world! It's 2026 -- the ferry's 1st run.\n\n  indented\tand tabbed   ",
      "na\xc3\xafve caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80 <|endoftext|>",
      std::string("\xff\xfe\x00 broken \xc3 utf-8 \xe2\x82", 22),
  };
  for (int mode = 0; mode < 5; ++mode)
    seed("tokenizer_text_fuzz", "text" + std::to_string(mode), prefixed(static_cast<char>(mode), texts[mode % 3]));
  const int32_t ids[] = {15496, 11, 995, 0, 50256, 50255, 220};
  seed("tokenizer_text_fuzz", "ids", prefixed(7, std::string(reinterpret_cast<const char*>(ids), sizeof ids)));

  // Vocabulary edits: none (GPT-2's own files), a changed id, a removed token, edited merges.
  seed("tokenizer_vocab_fuzz", "unchanged", "");
  seed("tokenizer_vocab_fuzz", "changed_id", "{\"hello\": 50256}");
  seed("tokenizer_vocab_fuzz", "removed", "{\"!\": null}");
  seed("tokenizer_vocab_fuzz", "merges", std::string("\0\xc4\xa0 t\nh e\n", 11));

  // Task files: IMDB, CoNLL, diatheke text and verse pairs, metrics.jsonl.
  seed("imdb_fuzz", "reviews", prefixed(3, R"([{"t":"A fine film.<br /><br />Really.","s":1},{"t":"Dull.","s":0},)"
                                           R"({"t":"A  fine film.<br /><br />Really.","s":0},{"t":"Dull.","s":0}])"));
  seed("conll_fuzz", "wnut17_dev", source_file("tests/finetune/fixtures/ner/wnut17/dev.conll"));
  seed("verses_fuzz", "diatheke",
       prefixed(0, "Genesis 1:1: In the beginning, God [1:1 The Hebrew word rendered \xe2\x80\x9cGod\xe2\x80\x9d.] created.\n"
                   "Genesis 1:2: The earth was formless [] and empty.\n\nA Psalm by David.\n"
                   "  Psalms 3:1: Yahweh, how my <H3068> adversaries have increased!\nMany rise up. \n\n"
                   "Tobit 1:1: The book of Tobit.\nJude 1:1: Jude, a servant.\n(engWEB2015eb)\n"));
  {
    std::string pairs;
    std::istringstream in(source_file("tests/translate/fixtures/dev.jsonl"));
    std::string line;
    for (int i = 0; i < 4 && std::getline(in, line); ++i) pairs += line + "\n";
    seed("verses_fuzz", "pairs", prefixed(1, pairs));
  }
  seed("metrics_fuzz", "run",
       "{\"step\":0,\"train_loss\":10.9,\"lr\":0.0001}\n{\"step\":10,\"train_loss\":7.5}\n"
       "{\"step\":10,\"val_loss\":7.9}\nnot json\n{\"step\":20,\"train_loss\":6.25,\"val_loss\":6.5}\n");
  std::printf("make_fuzz_seeds: wrote %s\n", g_root.c_str());
  return 0;
}
