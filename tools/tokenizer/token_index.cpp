// tools/tokenizer/token_index.cpp
#include "tools/tokenizer/token_index.h"

#include "base/error.h"

namespace ferry::tokenizer {

void TokenIndex::grow() {
  // Load factor at most one half keeps probes short.
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 1024 : 2 * old.size(), Slot{});
  mask_ = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.id == kAbsent) continue;
    const uint64_t h = hash_bytes(std::string_view(pool_).substr(s.offset, s.length));
    size_t i = h & mask_;
    while (slots_[i].id != kAbsent) i = (i + 1) & mask_;
    slots_[i] = s;
  }
}

bool TokenIndex::insert(std::string_view bytes, int32_t id) {
  FERRY_CHECK(id >= 0, "token id ", id);
  if (find(bytes) != kAbsent) return false;
  if (2 * (size_ + 1) > slots_.size()) grow();
  FERRY_CHECK(pool_.size() + bytes.size() < UINT32_MAX, "token pool overflow");
  const uint64_t h = hash_bytes(bytes);
  size_t i = h & mask_;
  while (slots_[i].id != kAbsent) i = (i + 1) & mask_;
  slots_[i] = Slot{static_cast<uint32_t>(h >> 32), static_cast<uint32_t>(pool_.size()),
                   static_cast<uint32_t>(bytes.size()), id};
  pool_.append(bytes);
  ++size_;
  return true;
}

}  // namespace ferry::tokenizer
