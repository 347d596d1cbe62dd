// tests/parallel/rank_grid_mpi_test.cpp — the sub-communicators made by split() hold exactly the
// ranks rank_grid says, in its order, for every layout of the world.
// ferry-mpi-ranks: 2 4
#include <gtest/gtest.h>

#include <vector>

#include "parallel/rank_grid.h"
#include "tests/parallel/mpi_world.h"

using namespace ferry::parallel;
using ferry::test::mpi_world;

namespace {

std::vector<int> world_ranks_in(Communicator& sub) {
  const int32_t me = mpi_world().rank();
  std::vector<int32_t> all(sub.size());
  sub.all_gather(&me, all.data(), 1, DType::i32);
  return {all.begin(), all.end()};
}

void expect_grid_matches_split(const GridShape& shape) {
  Communicator& w = mpi_world();
  const RankGrid grid(shape, w.size());
  GridCommunicators c = make_grid_communicators(grid, w);
  const int me = w.rank();
  EXPECT_EQ(world_ranks_in(*c.tp), grid.group_of(me, GridAxis::tp)) << shape.to_string();
  EXPECT_EQ(world_ranks_in(*c.dp), grid.group_of(me, GridAxis::dp)) << shape.to_string();
  EXPECT_EQ(world_ranks_in(*c.pp), grid.group_of(me, GridAxis::pp)) << shape.to_string();
  EXPECT_EQ(world_ranks_in(*c.model), grid.group_of(me, GridAxis::model)) << shape.to_string();
  // A DP all-reduce of the TP index sums dp copies of it: the groups do not mix TP positions.
  int32_t tp_index = grid.coord_of(me).tp;
  c.dp->all_reduce(&tp_index, 1, DType::i32, ReduceOp::sum);
  EXPECT_EQ(tp_index, grid.coord_of(me).tp * shape.dp);
}

}  // namespace

TEST(RankGridMpi, EveryFactorisationOfTheWorldSplitsAsTheGridSays) {
  const int n = mpi_world().size();
  for (int tp = 1; tp <= n; ++tp)
    for (int pp = 1; tp * pp <= n; ++pp)
      if (n % (tp * pp) == 0) expect_grid_matches_split(GridShape{tp, n / (tp * pp), pp});
}

TEST(RankGridMpi, Tp2Dp2GroupsOnFourRanks) {
  if (mpi_world().size() != 4) GTEST_SKIP() << "needs 4 ranks";
  const RankGrid grid(GridShape{2, 2, 1}, 4);
  GridCommunicators c = make_grid_communicators(grid, mpi_world());
  const int me = mpi_world().rank();
  const std::vector<std::vector<int>> tp_groups{{0, 1}, {2, 3}}, dp_groups{{0, 2}, {1, 3}};
  EXPECT_EQ(world_ranks_in(*c.tp), tp_groups[me / 2]);
  EXPECT_EQ(world_ranks_in(*c.dp), dp_groups[me % 2]);
  EXPECT_EQ(c.pp->size(), 1);
}
