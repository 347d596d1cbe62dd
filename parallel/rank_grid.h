// parallel/rank_grid.h — the one place that knows how ranks form the tp × dp × pp grid.
//
// TP is innermost so that a tensor-parallel group (the most talkative) stays inside one node,
// then DP, then PP outermost:
//     rank = tp_rank + tp · (dp_rank + dp · pp_rank)
// Every group, and every sub-communicator, is derived from this file; nothing else computes a rank
// from coordinates.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"

namespace ferry::parallel {

struct GridShape {
  int tp = 1;
  int dp = 1;
  int pp = 1;
  int world_size() const { return tp * dp * pp; }
  std::string to_string() const;  // "tp2×dp2×pp1"
};

struct GridCoord {
  int tp = 0;
  int dp = 0;
  int pp = 0;
  bool operator==(const GridCoord&) const = default;
};

// The axes a group can span. `model` is TP × PP at one DP index: the ranks that together hold one
// full copy of the model (global gradient norm, loss reporting).
enum class GridAxis { tp, dp, pp, model };

class RankGrid {
 public:
  // Throws UserError (one line naming --tp/--pp and the world size) unless tp·dp·pp == world_size
  // and every factor is positive.
  RankGrid(GridShape shape, int world_size);
  // dp inferred as world_size / (tp·pp), the way `ferry pretrain --tp N --pp N` asks for a layout.
  static RankGrid from_tp_pp(int tp, int pp, int world_size);

  const GridShape& shape() const { return shape_; }
  int world_size() const { return shape_.world_size(); }

  int rank_of(const GridCoord& c) const;
  GridCoord coord_of(int rank) const;

  // The world ranks in `rank`'s group along `axis`, ordered by their position in the group (so
  // index i holds the group's rank i).
  std::vector<int> group_of(int rank, GridAxis axis) const;
  // All groups along `axis`, each ordered as group_of; groups ordered by their smallest rank.
  std::vector<std::vector<int>> groups(GridAxis axis) const;
  // `rank`'s position inside its group along `axis` (its rank in the sub-communicator).
  int index_in_group(int rank, GridAxis axis) const;
  // Which group along `axis` `rank` belongs to: the split() color.
  int group_id(int rank, GridAxis axis) const;

 private:
  GridShape shape_;
};

// This rank's sub-communicators, made by split() on the world so that each sub-communicator's
// rank equals index_in_group.
struct GridCommunicators {
  std::unique_ptr<Communicator> tp;
  std::unique_ptr<Communicator> dp;
  std::unique_ptr<Communicator> pp;
  std::unique_ptr<Communicator> model;
};
// Collective over `world`, whose size must equal grid.world_size().
GridCommunicators make_grid_communicators(const RankGrid& grid, Communicator& world);

}  // namespace ferry::parallel
