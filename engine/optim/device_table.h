// engine/optim/device_table.h — the one segment table (engine/optim/adamw.h) as the CUDA kernels
// read it (kernels/adamw.h, kernels/adamw_norm_share.h): offsets relative to the table's range, so
// that a ZeRO-1 shard's fp32 master weights, moments and reduce-scattered gradients — buffers of
// the shard's size — are indexed from 0, and the unsharded buffer (range [0, params)) unchanged.
//
//   n          elements the kernels cover: the parameters' storage inside the range (a shard's
//              padding past the last parameter is neither updated nor counted)
//   segments   the table's segments, begin − range.begin; one lr_scale-0 segment at 0 when the
//              range holds no parameter (the kernel takes at least one)
//   counted    the counted segments as norm ranges, adjacent ones merged: what this rank's share of
//              the global gradient norm sums (frozen parameters never; under TP the replicated
//              parameters another rank owns neither)
//   counts_all one counted range over all of [0, n): the whole buffer's vectorized norm is the same sum
#pragma once
#include <vector>

#include "engine/optim/adamw.h"
#include "kernels/adamw_norm_share.h"

namespace ferry {

struct DeviceTable {
  size_t n = 0;
  std::vector<AdamWSegment> segments;
  std::vector<kernels::cuda::NormRange> counted;
  bool counts_all = false;
};

DeviceTable device_table(const AdamWTable& t);

}  // namespace ferry
