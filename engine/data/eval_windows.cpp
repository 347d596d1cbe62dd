// engine/data/eval_windows.cpp
#include "engine/data/eval_windows.h"

#include <algorithm>
#include <filesystem>

#include "base/error.h"

namespace ferry::data {

namespace {

namespace fs = std::filesystem;

// Whether a folder holds llm.c-named validation shards (<name>_val_NNNNNN.bin).
bool has_val_shards(const std::string& folder) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(folder, ec)) {
    const std::string name = e.path().filename().string();
    if (name.find("_val_") != std::string::npos && e.path().extension() == ".bin") return true;
  }
  return false;
}

}  // namespace

EvalWindows::EvalWindows(const std::string& pattern, int B, int T, int vocab_size) : B_(B), T_(T) {
  if (B <= 0 || T <= 0) user_error("eval windows: B and T must be positive, got ", B, " and ", T);
  std::error_code ec;
  if (fs::is_directory(pattern, ec) && has_val_shards(pattern)) split_ = "val";
  const size_t stride = static_cast<size_t>(B) * static_cast<size_t>(T);
  for (const fs::path& path : resolve_shards(pattern, split_)) {
    // Mapped with the widest uint16 vocabulary, then checked here against the model's, so that the
    // message says which side is wrong.
    MappedShard shard(path, 65536);
    const auto tokens = shard.tokens();
    const auto bad = std::find_if(tokens.begin(), tokens.end(), [&](uint16_t t) { return t >= vocab_size; });
    if (bad != tokens.end())
      user_error("shard '", path.string(), "': token id ", *bad, " at position ", bad - tokens.begin(),
                 " is outside the model's vocabulary of ", vocab_size,
                 " ids (the shards and the model come from different tokenizers)");
    const size_t n = tokens.size();
    const uint32_t index = static_cast<uint32_t>(shards_.size());
    for (size_t first = 0; n > 0 && first + stride + 1 <= n; first += stride) windows_.push_back({index, first});
    total_tokens_ += n;
    shards_.push_back(std::move(shard));
  }
}

void EvalWindows::read(size_t k, int32_t* inputs, int32_t* targets) const {
  FERRY_CHECK(k < windows_.size(), "eval window ", k, " of ", windows_.size());
  const Window& w = windows_[k];
  const uint16_t* t = shards_[w.shard].tokens().data() + w.first;
  const size_t n = static_cast<size_t>(B_) * static_cast<size_t>(T_);
  for (size_t i = 0; i < n; ++i) {
    inputs[i] = t[i];
    targets[i] = t[i + 1];
  }
}

}  // namespace ferry::data
