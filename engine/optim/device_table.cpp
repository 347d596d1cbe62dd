// engine/optim/device_table.cpp — see device_table.h.
#include "engine/optim/device_table.h"

#include "base/error.h"

namespace ferry {

DeviceTable device_table(const AdamWTable& t) {
  FERRY_CHECK(t.end >= t.range.begin && t.end <= t.range.end, "table end ", t.end, " outside its range [",
              t.range.begin, ", ", t.range.end, ")");
  DeviceTable d;
  const size_t base = t.range.begin;
  d.n = t.end - base;
  for (size_t i = 0; i < t.segments.size(); ++i) {
    const AdamWSegment& s = t.segments[i];
    FERRY_CHECK(s.begin >= base && s.begin < t.end, "segment at ", s.begin, " outside [", base, ", ", t.end, ")");
    d.segments.push_back({s.begin - base, s.lr_scale, s.weight_decay});
    if (!t.counted[i]) continue;
    const size_t b = s.begin - base, e = t.segment_end(i) - base;
    if (!d.counted.empty() && d.counted.back().end == b)
      d.counted.back().end = e;
    else
      d.counted.push_back({b, e});
  }
  if (d.segments.empty()) d.segments.push_back({0, 0.0f, 0.0f});
  d.counts_all = d.n > 0 && d.counted.size() == 1 && d.counted[0].begin == 0 && d.counted[0].end == d.n;
  return d;
}

}  // namespace ferry
