// tools/tokenizer/byte_pair_merge.cpp — merge tables and the two merge loops (short and long pieces).
#include "tools/tokenizer/byte_pair_merge.h"

#include <bit>
#include <queue>

#include "base/error.h"

namespace ferry::tokenizer {

void MergeTable::reserve(size_t pairs) {
  // Load factor at most one half keeps linear probes short.
  const size_t capacity = std::bit_ceil(std::max<size_t>(16, 2 * pairs));
  if (capacity <= slots_.size()) return;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot{});
  mask_ = capacity - 1;
  shift_ = 64 - std::countr_zero(capacity);
  size_ = 0;
  for (const Slot& s : old) {
    if (s.key != kEmptyKey) insert(int32_t(s.key >> 32), int32_t(uint32_t(s.key)), s.merge);
  }
}

void MergeTable::insert(int32_t left, int32_t right, Merge merge) {
  if (2 * (size_ + 1) > slots_.size()) reserve(2 * (size_ + 1));
  const uint64_t key = pack(left, right);
  for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == key) {
      s.merge = merge;
      return;
    }
    if (s.key == kEmptyKey) {
      s = Slot{key, merge};
      ++size_;
      return;
    }
  }
}

namespace {

// Pieces up to this many bytes use a flat scan for the lowest rank (quadratic, but on a few cache
// lines it beats a heap); longer ones — a run of digits or symbols thousands of bytes long — use the
// heap so that encoding stays O(n log n) on any input.
constexpr size_t kFlatScanMaxBytes = 64;

void merge_flat(std::string_view piece, const int32_t (&byte_tokens)[256], const MergeTable& merges,
                std::vector<int32_t>& out) {
  const size_t n = piece.size();
  int32_t tokens[kFlatScanMaxBytes];
  int32_t ranks[kFlatScanMaxBytes];  // ranks[i]: merge of tokens[i] and tokens[i + 1]
  for (size_t i = 0; i < n; ++i) tokens[i] = byte_tokens[static_cast<unsigned char>(piece[i])];
  size_t count = n;
  for (size_t i = 0; i + 1 < count; ++i) ranks[i] = merges.find(tokens[i], tokens[i + 1]).rank;
  while (count > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < count; ++i) {
      if (ranks[i] < ranks[best]) best = i;  // strict: the leftmost lowest rank wins
    }
    if (ranks[best] == MergeTable::kNone.rank) break;
    tokens[best] = merges.find(tokens[best], tokens[best + 1]).token;
    for (size_t i = best + 1; i + 1 < count; ++i) {
      tokens[i] = tokens[i + 1];
      ranks[i] = ranks[i + 1];
    }
    --count;
    // Only the pairs touching the merged token changed.
    if (best > 0) ranks[best - 1] = merges.find(tokens[best - 1], tokens[best]).rank;
    if (best + 1 < count) ranks[best] = merges.find(tokens[best], tokens[best + 1]).rank;
  }
  out.insert(out.end(), tokens, tokens + count);
}

void merge_with_heap(std::string_view piece, const int32_t (&byte_tokens)[256], const MergeTable& merges,
                     std::vector<int32_t>& out) {
  const int32_t n = static_cast<int32_t>(piece.size());
  // A doubly linked list of the current tokens, indexed by the position of their first byte; that
  // position orders the list, so it also breaks rank ties towards the left.
  struct Node {
    int32_t token;
    int32_t prev;
    int32_t next;     // n at the end
    uint32_t version;  // bumped whenever the node changes token or dies, invalidating heap entries
    bool alive;
  };
  std::vector<Node> nodes(n);
  for (int32_t i = 0; i < n; ++i) {
    nodes[i] = Node{byte_tokens[static_cast<unsigned char>(piece[i])], i - 1, i + 1, 0, true};
  }
  struct Candidate {
    int32_t rank;
    int32_t left;
    int32_t right;
    uint32_t left_version;
    uint32_t right_version;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto consider = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = nodes[left].next;
    if (right >= n) return;
    const auto merge = merges.find(nodes[left].token, nodes[right].token);
    if (merge.token < 0) return;
    heap.push({merge.rank, left, right, nodes[left].version, nodes[right].version});
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);

  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Node& l = nodes[c.left];
    Node& r = nodes[c.right];
    if (!l.alive || !r.alive || l.version != c.left_version || r.version != c.right_version || l.next != c.right) {
      continue;  // stale: one side has merged since this pair was seen
    }
    l.token = merges.find(l.token, r.token).token;
    ++l.version;
    r.alive = false;
    ++r.version;
    l.next = r.next;
    if (r.next < n) nodes[r.next].prev = c.left;
    consider(l.prev);
    consider(c.left);
  }
  for (int32_t i = 0; i < n; i = nodes[i].next) out.push_back(nodes[i].token);
}

}  // namespace

void byte_pair_merge(std::string_view piece, const int32_t (&byte_tokens)[256], const MergeTable& merges,
                     std::vector<int32_t>& out) {
  FERRY_CHECK(piece.size() < size_t(INT32_MAX), "piece of ", piece.size(), " bytes");
  if (piece.size() <= kFlatScanMaxBytes) {
    merge_flat(piece, byte_tokens, merges, out);
  } else {
    merge_with_heap(piece, byte_tokens, merges, out);
  }
}

}  // namespace ferry::tokenizer
