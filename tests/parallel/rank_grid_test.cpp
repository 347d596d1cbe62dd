// tests/parallel/rank_grid_test.cpp — the tp × dp × pp grid: TP innermost, groups partition the
// world, invalid layouts are one-line user errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "base/error.h"
#include "parallel/rank_grid.h"

using namespace ferry::parallel;

TEST(RankGrid, RankIsTpPlusTpTimesDpPlusDpTimesPp) {
  const RankGrid g(GridShape{2, 3, 2}, 12);
  for (int p = 0; p < 2; ++p)
    for (int d = 0; d < 3; ++d)
      for (int t = 0; t < 2; ++t) {
        const int r = g.rank_of({t, d, p});
        EXPECT_EQ(r, t + 2 * (d + 3 * p));
        EXPECT_EQ(g.coord_of(r), (GridCoord{t, d, p}));
      }
}

TEST(RankGrid, TensorParallelGroupsAreRunsOfConsecutiveRanks) {
  const RankGrid g(GridShape{4, 2, 1}, 8);
  EXPECT_EQ(g.groups(GridAxis::tp), (std::vector<std::vector<int>>{{0, 1, 2, 3}, {4, 5, 6, 7}}));
  EXPECT_EQ(g.groups(GridAxis::dp), (std::vector<std::vector<int>>{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
}

TEST(RankGrid, Tp2Dp2Pp2Groups) {
  const RankGrid g(GridShape{2, 2, 2}, 8);
  EXPECT_EQ(g.group_of(5, GridAxis::tp), (std::vector<int>{4, 5}));
  EXPECT_EQ(g.group_of(5, GridAxis::dp), (std::vector<int>{5, 7}));
  EXPECT_EQ(g.group_of(5, GridAxis::pp), (std::vector<int>{1, 5}));
  EXPECT_EQ(g.group_of(5, GridAxis::model), (std::vector<int>{0, 1, 4, 5}));
  EXPECT_EQ(g.index_in_group(5, GridAxis::pp), 1);
  EXPECT_EQ(g.index_in_group(5, GridAxis::model), 3);
}

TEST(RankGrid, EveryAxisPartitionsTheWorldAndIndicesMatchPositions) {
  for (GridShape s : {GridShape{1, 1, 1}, GridShape{2, 1, 1}, GridShape{1, 4, 1}, GridShape{1, 1, 4},
                      GridShape{2, 3, 2}, GridShape{4, 2, 2}}) {
    const RankGrid g(s, s.world_size());
    for (GridAxis axis : {GridAxis::tp, GridAxis::dp, GridAxis::pp, GridAxis::model}) {
      std::multiset<int> all;
      std::set<int> ids;
      for (const auto& group : g.groups(axis)) {
        const int id = g.group_id(group.front(), axis);
        EXPECT_TRUE(ids.insert(id).second) << s.to_string() << ": two groups share a split color";
        for (size_t i = 0; i < group.size(); ++i) {
          all.insert(group[i]);
          EXPECT_EQ(g.index_in_group(group[i], axis), static_cast<int>(i)) << s.to_string();
          EXPECT_EQ(g.group_id(group[i], axis), id) << s.to_string();
          EXPECT_EQ(g.group_of(group[i], axis), group) << s.to_string();
        }
      }
      EXPECT_EQ(all.size(), static_cast<size_t>(s.world_size()));
      EXPECT_EQ(std::set<int>(all.begin(), all.end()).size(), all.size()) << s.to_string() << ": a rank in two groups";
    }
  }
}

TEST(RankGrid, DataParallelDegreeIsInferredFromTpAndPp) {
  const RankGrid g = RankGrid::from_tp_pp(2, 2, 16);
  EXPECT_EQ(g.shape().dp, 4);
}

TEST(RankGrid, LayoutsThatDoNotFitTheWorldAreUserErrors) {
  try {
    RankGrid::from_tp_pp(4, 1, 6);
    FAIL();
  } catch (const ferry::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("tp 4 × pp 1: the job's 6 ranks are not a multiple of tp·pp = 4"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(RankGrid(GridShape{2, 2, 2}, 4), ferry::UserError);
  EXPECT_THROW(RankGrid(GridShape{0, 1, 1}, 0), ferry::UserError);
  EXPECT_THROW(RankGrid::from_tp_pp(0, 1, 4), ferry::UserError);
}

TEST(RankGrid, SingleProcessGridGetsSingleSubCommunicators) {
  auto world = make_single_communicator();
  const RankGrid g(GridShape{}, 1);
  GridCommunicators c = make_grid_communicators(g, *world);
  for (Communicator* sub : {c.tp.get(), c.dp.get(), c.pp.get(), c.model.get()}) {
    ASSERT_NE(sub, nullptr);
    EXPECT_EQ(sub->size(), 1);
    EXPECT_EQ(sub->rank(), 0);
  }
}
