// engine/planner.cpp
#include "engine/planner.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "base/error.h"
#include "engine/op.h"

namespace ferry {

namespace {

bool in_arena(const Value& v) {
  return v.role == ValueRole::Input || v.role == ValueRole::Activation || v.role == ValueRole::Output;
}

size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

int find(std::vector<int>& parent, int x) {
  while (parent[x] != x) x = parent[x] = parent[parent[x]];
  return x;
}

}  // namespace

MemoryPlan plan_memory(const Graph& g, size_t alignment) {
  const int nv = static_cast<int>(g.values.size());
  const int nn = static_cast<int>(g.nodes.size());
  MemoryPlan plan;
  plan.offset.assign(nv, -1);
  plan.live.assign(nv, LiveRange{});
  plan.buffer_of.assign(nv, -1);

  for (int v = 0; v < nv; ++v) {
    const Value& val = g.values[v];
    if (in_arena(val)) {
      // Inputs and outputs span the whole step: the host writes inputs once and may run the forward
      // pass again (evaluation, finite differences) without rewriting them; it reads outputs after.
      const bool whole_step = val.role == ValueRole::Input || val.role == ValueRole::Output;
      plan.live[v].first = val.role == ValueRole::Input ? 0 : val.producer;
      plan.live[v].last = whole_step ? nn : plan.live[v].first;
    }
  }
  // The flat buffers hold every parameter at its aligned storage offset (graph.h), gaps included.
  if (!g.params.empty()) {
    const size_t elem = dtype_size(g.values[g.params[0].value].dtype);
    plan.param_bytes = static_cast<size_t>(g.storage_size()) * elem;
    for (const Value& val : g.values)
      if (val.role == ValueRole::ParamGrad) plan.grad_bytes = plan.param_bytes;
  }
  for (int i = 0; i < nn; ++i)
    for (int v : g.nodes[i].in)
      if (v >= 0 && in_arena(g.values[v])) plan.live[v].last = std::max(plan.live[v].last, i);

  // In-place groups: an op's output may take over an input that is read for the last time there.
  std::vector<int> parent(nv);
  std::iota(parent.begin(), parent.end(), 0);
  for (int i = 0; i < nn; ++i) {
    const Node& n = g.nodes[i];
    const OpDef& def = op_def(n.op);
    if (def.inplace_out < 0) continue;
    const int out = n.out[def.inplace_out];
    const int in = n.in[def.inplace_in];
    if (out < 0 || in < 0) continue;
    const Value& vin = g.values[in];
    if (vin.role != ValueRole::Activation || plan.live[in].last != i) continue;
    if (vin.nbytes() != g.values[out].nbytes()) continue;
    parent[find(parent, out)] = find(parent, in);
  }

  struct Buffer {
    size_t size = 0;
    LiveRange live{1 << 30, -1};
    int64_t offset = -1;
  };
  std::vector<Buffer> buffers;
  std::vector<int> group_to_buffer(nv, -1);
  for (int v = 0; v < nv; ++v) {
    if (!in_arena(g.values[v])) continue;
    const int root = find(parent, v);
    if (group_to_buffer[root] < 0) {
      group_to_buffer[root] = static_cast<int>(buffers.size());
      buffers.emplace_back();
    }
    Buffer& b = buffers[group_to_buffer[root]];
    b.size = std::max(b.size, align_up(g.values[v].nbytes(), alignment));
    b.live.first = std::min(b.live.first, plan.live[v].first);
    b.live.last = std::max(b.live.last, plan.live[v].last);
    plan.buffer_of[v] = group_to_buffer[root];
    plan.unshared_bytes += g.values[v].nbytes();
  }

  std::vector<int> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    if (buffers[a].size != buffers[b].size) return buffers[a].size > buffers[b].size;
    return buffers[a].live.first < buffers[b].live.first;
  });
  std::vector<int> placed;
  for (int bi : order) {
    Buffer& b = buffers[bi];
    std::vector<std::pair<int64_t, int64_t>> busy;  // [start, end) of clashing buffers
    for (int pj : placed)
      if (buffers[pj].live.overlaps(b.live))
        busy.emplace_back(buffers[pj].offset, buffers[pj].offset + static_cast<int64_t>(buffers[pj].size));
    std::sort(busy.begin(), busy.end());
    int64_t at = 0;
    for (auto [s, e] : busy) {
      if (at + static_cast<int64_t>(b.size) <= s) break;
      at = std::max(at, e);
    }
    b.offset = at;
    placed.push_back(bi);
    plan.arena_bytes = std::max(plan.arena_bytes, static_cast<size_t>(at) + b.size);
  }
  for (int v = 0; v < nv; ++v)
    if (plan.buffer_of[v] >= 0) plan.offset[v] = buffers[plan.buffer_of[v]].offset;
  return plan;
}

void verify_plan(const Graph& g, const MemoryPlan& plan) {
  const int nv = static_cast<int>(g.values.size());
  for (int a = 0; a < nv; ++a) {
    if (plan.offset[a] < 0) continue;
    FERRY_CHECK(plan.offset[a] + static_cast<int64_t>(g.values[a].nbytes()) <= static_cast<int64_t>(plan.arena_bytes),
                g.values[a].name, " ends past the arena");
    for (int b = a + 1; b < nv; ++b) {
      if (plan.offset[b] < 0 || plan.buffer_of[a] == plan.buffer_of[b]) continue;
      if (!plan.live[a].overlaps(plan.live[b])) continue;
      const int64_t a0 = plan.offset[a], a1 = a0 + static_cast<int64_t>(g.values[a].nbytes());
      const int64_t b0 = plan.offset[b], b1 = b0 + static_cast<int64_t>(g.values[b].nbytes());
      FERRY_CHECK(a1 <= b0 || b1 <= a0, "planned overlap: ", g.values[a].name, " and ", g.values[b].name);
    }
  }
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", bytes, units[u]);
  return buf;
}

}  // namespace ferry
