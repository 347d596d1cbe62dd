// tools/cli/generate.cpp — `ferry generate`: continue a prompt with a trained model (anything
// tools/convert/load_model.h reads: a ferry checkpoint or run folder, an llm.c model file or
// safetensors).
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>

#include "engine/backend.h"
#include "base/error.h"
#include "engine/generate/sampler.h"
#include "tools/cli/command.h"
#include "tools/convert/load_model.h"

namespace {

struct GenerateArgs {
  std::string checkpoint, prompt, device = "auto", logits_out;
  int max_tokens = 64;
  float temperature = 1.0f;
  int top_k = 40;
  uint64_t seed = 1337;
  std::optional<int> n_head;
};

void setup(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  app.add_option("--checkpoint", a->checkpoint, "model: a ferry checkpoint (.ckpt) or ferry pretrain run folder (its newest checkpoint), an llm.c model file (.bin, fp32 or bf16) or .safetensors")->required();
  app.add_option("--prompt", a->prompt, "text to continue")->required();
  app.add_option("--max-tokens", a->max_tokens, "new tokens to generate")->capture_default_str();
  app.add_option("--temperature", a->temperature, "softmax temperature (0: greedy)")->capture_default_str();
  app.add_option("--top-k", a->top_k, "sample among the k likeliest tokens (0: all)")->capture_default_str();
  app.add_option("--seed", a->seed, "sampling seed (same seed, same text)")->capture_default_str();
  app.add_option("--device", a->device, "auto, cpu or cuda")->capture_default_str();
  app.add_option("--n-head", a->n_head, "attention heads, when a safetensors input does not say");
  app.add_option("--logits-out", a->logits_out,
                 "also write the prompt's logits, f32 [prompt tokens, vocab] (for comparisons with other programs)");
  app.callback([a] {
    if (a->max_tokens <= 0) ferry::user_error("--max-tokens must be positive, got ", a->max_tokens);
    if (a->temperature < 0) ferry::user_error("--temperature must not be negative, got ", a->temperature);
    if (a->top_k < 0) ferry::user_error("--top-k must not be negative, got ", a->top_k);
    const ferry::Checkpoint m = ferry::convert::load_any_model(a->checkpoint, a->n_head);
    const auto codec = ferry::convert::codec_for_vocab(m.model.vocab_size);
    auto backend = ferry::make_backend(a->device);
    ferry::Generator gen(m.model, *backend, m.model.max_seq_len);
    gen.set_parameters(m.parameters);
    ferry::SamplingOptions o;
    o.max_new_tokens = a->max_tokens;
    o.temperature = a->temperature;
    o.top_k = a->top_k;
    ferry::Rng rng(a->seed);
    const std::vector<int32_t> prompt = codec.encode(a->prompt);
    if (!a->logits_out.empty()) {
      const std::vector<float> logits = gen.logits(prompt);
      std::ofstream f(a->logits_out, std::ios::binary);
      f.write(reinterpret_cast<const char*>(logits.data()), std::streamsize(logits.size() * sizeof(float)));
      if (!f) ferry::user_error("--logits-out '", a->logits_out, "' cannot be written");
    }
    const std::vector<int32_t> ids = gen.generate(prompt, o, rng);
    const std::string text = a->prompt + codec.decode(ids);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
  });
}

}  // namespace

FERRY_COMMAND(generate, "generate", "Continue a prompt with a trained GPT (checkpoint, llm.c or safetensors)", setup);
