// parallel/rank_grid.cpp
#include "parallel/rank_grid.h"

#include "base/error.h"

namespace ferry::parallel {

std::string GridShape::to_string() const { return str_cat("tp", tp, "×dp", dp, "×pp", pp); }

RankGrid::RankGrid(GridShape shape, int world_size) : shape_(shape) {
  if (shape.tp < 1 || shape.dp < 1 || shape.pp < 1)
    user_error("parallel layout ", shape.to_string(), ": tp, pp and the data-parallel degree must be at least 1");
  if (shape.world_size() != world_size)
    user_error("parallel layout ", shape.to_string(), " needs ", shape.world_size(), " ranks but the job has ",
               world_size);
}

RankGrid RankGrid::from_tp_pp(int tp, int pp, int world_size) {
  if (tp < 1 || pp < 1) user_error("tp ", tp, " × pp ", pp, ": both must be at least 1");
  if (world_size % (tp * pp) != 0)
    user_error("tp ", tp, " × pp ", pp, ": the job's ", world_size, " ranks are not a multiple of tp·pp = ", tp * pp);
  return RankGrid(GridShape{tp, world_size / (tp * pp), pp}, world_size);
}

int RankGrid::rank_of(const GridCoord& c) const {
  FERRY_CHECK(c.tp >= 0 && c.tp < shape_.tp && c.dp >= 0 && c.dp < shape_.dp && c.pp >= 0 && c.pp < shape_.pp,
              "coordinate (", c.tp, ",", c.dp, ",", c.pp, ") outside ", shape_.to_string());
  return c.tp + shape_.tp * (c.dp + shape_.dp * c.pp);
}

GridCoord RankGrid::coord_of(int rank) const {
  FERRY_CHECK(rank >= 0 && rank < world_size(), "rank ", rank, " outside ", shape_.to_string());
  return GridCoord{rank % shape_.tp, (rank / shape_.tp) % shape_.dp, rank / (shape_.tp * shape_.dp)};
}

std::vector<int> RankGrid::group_of(int rank, GridAxis axis) const {
  const GridCoord me = coord_of(rank);
  std::vector<int> members;
  switch (axis) {
    case GridAxis::tp:
      for (int t = 0; t < shape_.tp; ++t) members.push_back(rank_of({t, me.dp, me.pp}));
      break;
    case GridAxis::dp:
      for (int d = 0; d < shape_.dp; ++d) members.push_back(rank_of({me.tp, d, me.pp}));
      break;
    case GridAxis::pp:
      for (int p = 0; p < shape_.pp; ++p) members.push_back(rank_of({me.tp, me.dp, p}));
      break;
    case GridAxis::model:
      // PP outer, TP inner: the same order as world ranks.
      for (int p = 0; p < shape_.pp; ++p)
        for (int t = 0; t < shape_.tp; ++t) members.push_back(rank_of({t, me.dp, p}));
      break;
  }
  return members;
}

int RankGrid::index_in_group(int rank, GridAxis axis) const {
  const GridCoord c = coord_of(rank);
  switch (axis) {
    case GridAxis::tp: return c.tp;
    case GridAxis::dp: return c.dp;
    case GridAxis::pp: return c.pp;
    case GridAxis::model: return c.tp + shape_.tp * c.pp;
  }
  FERRY_CHECK(false, "unknown axis");
}

int RankGrid::group_id(int rank, GridAxis axis) const {
  const GridCoord c = coord_of(rank);
  switch (axis) {
    case GridAxis::tp: return c.dp + shape_.dp * c.pp;
    case GridAxis::dp: return c.tp + shape_.tp * c.pp;
    case GridAxis::pp: return c.tp + shape_.tp * c.dp;
    case GridAxis::model: return c.dp;
  }
  FERRY_CHECK(false, "unknown axis");
}

std::vector<std::vector<int>> RankGrid::groups(GridAxis axis) const {
  std::vector<std::vector<int>> all;
  std::vector<bool> seen(world_size(), false);
  for (int r = 0; r < world_size(); ++r) {
    if (seen[r]) continue;
    all.push_back(group_of(r, axis));
    for (int m : all.back()) seen[m] = true;
  }
  return all;
}

GridCommunicators make_grid_communicators(const RankGrid& grid, Communicator& world) {
  FERRY_CHECK(world.size() == grid.world_size(), "world of ", world.size(), " ranks for grid ",
              grid.shape().to_string());
  const int me = world.rank();
  auto split_along = [&](GridAxis axis) {
    auto sub = world.split(grid.group_id(me, axis), grid.index_in_group(me, axis));
    FERRY_CHECK(sub && sub->rank() == grid.index_in_group(me, axis), "split gave the wrong rank");
    return sub;
  };
  GridCommunicators comms;
  comms.tp = split_along(GridAxis::tp);
  comms.dp = split_along(GridAxis::dp);
  comms.pp = split_along(GridAxis::pp);
  comms.model = split_along(GridAxis::model);
  return comms;
}

}  // namespace ferry::parallel
