// tools/cli/convert.cpp — `ferry convert IN OUT`: move GPT-2 weights between a ferry checkpoint
// (.ckpt), llm.c's model file (.bin) and Hugging Face safetensors (.safetensors). The input kind is
// read from the file, the output kind from OUT's extension. A .ckpt output is a model file: the
// input's model config and state (a fine-tuned model's task and vocabulary) with its weights,
// without optimizer state, in f32 or (--dtype bf16) bf16, half the bytes.
#include <cstdio>
#include <memory>
#include <optional>

#include "base/error.h"
#include "tools/cli/command.h"
#include "tools/convert/load_model.h"
#include "tools/convert/model_file.h"

namespace {

struct ConvertArgs {
  std::string in, out, dtype = "f32";
  std::optional<int> n_head;
};

void setup(CLI::App& app) {
  auto a = std::make_shared<ConvertArgs>();
  app.add_option("input", a->in, "a ferry checkpoint, llm.c model file or safetensors file")->required();
  app.add_option("output", a->out, "OUT.ckpt (ferry), OUT.bin (llm.c) or OUT.safetensors")->required();
  app.add_option("--dtype", a->dtype,
                 "weights in the output: f32 or bf16 (rounded to nearest even; for every output kind, so "
                 "IN.ckpt OUT.ckpt --dtype bf16 ships a ferry model at half the size)")
      ->capture_default_str();
  app.add_option("--n-head", a->n_head, "attention heads, when a safetensors input does not say");
  app.callback([a] {
    using namespace ferry::convert;
    if (a->dtype != "f32" && a->dtype != "bf16") ferry::user_error("--dtype must be f32 or bf16, got '", a->dtype, "'");
    const WeightType type = a->dtype == "f32" ? WeightType::F32 : WeightType::BF16;
    ferry::Checkpoint m = load_any_model(a->in, a->n_head);
    const std::filesystem::path out(a->out);
    const std::string ext = out.extension().string();
    if (ext == ".ckpt") {
      // A model to generate from, evaluate or fine-tune, not a run to resume: no optimizer state
      // (which is also what lets its parameters be bf16); the config and state go along.
      m.adam_m.clear();
      m.adam_v.clear();
      m.adam_steps = 0;
      m.param_dtype = type == WeightType::F32 ? ferry::ParamDtype::F32 : ferry::ParamDtype::BF16;
      ferry::write_checkpoint(out, m);
    } else if (ext == ".bin") {
      write_llmc(out, m, type);
    } else if (ext == ".safetensors") {
      write_safetensors(out, m, type);
    } else {
      ferry::user_error("output '", a->out, "': the extension must be .ckpt, .bin (llm.c) or .safetensors");
    }
    std::printf("%s: %d layers, %d heads, %d wide, vocab %d, %d positions -> %s (%s)\n", a->in.c_str(),
                m.model.n_layer, m.model.n_head, m.model.n_embd, m.model.vocab_size, m.model.max_seq_len,
                a->out.c_str(), a->dtype.c_str());
  });
}

}  // namespace

FERRY_COMMAND(convert, "convert",
              "Convert GPT-2 weights between ferry checkpoints, llm.c and safetensors, in f32 or bf16", setup);
