// tests/parallel/communicator_mpi_test.cpp — every operation of the MPI communicator against the
// values each rank can compute on its own: rank r's data is a pure function of (seed, r), so every
// rank knows every other rank's contribution.
// ferry-mpi-ranks: 2 4
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "parallel/communicator.h"
#include "tests/parallel/mpi_world.h"

using namespace ferry::parallel;
using ferry::test::mpi_test_seed;
using ferry::test::mpi_world;

namespace {

// Rank r's contribution: values of mixed magnitude, so that the summation order shows in the bits.
template <typename T>
std::vector<T> data_of(int rank, size_t n, uint64_t salt = 0) {
  std::mt19937_64 rng(mpi_test_seed() * 1000003u + static_cast<uint64_t>(rank) * 7919u + salt);
  std::uniform_real_distribution<double> mantissa(-1.0, 1.0);
  std::uniform_int_distribution<int> exponent(-8, 8);
  std::vector<T> v(n);
  for (auto& x : v) {
    if constexpr (std::is_floating_point_v<T>)
      x = static_cast<T>(std::ldexp(mantissa(rng), exponent(rng)));
    else
      x = static_cast<T>(rng() % 2001) - 1000;
  }
  return v;
}

// What a deterministic sum must give: ((x0 + x1) + x2) + … in rank order.
template <typename T>
std::vector<T> rank_ordered_sum(size_t n, int ranks, uint64_t salt = 0) {
  std::vector<T> acc = data_of<T>(0, n, salt);
  for (int r = 1; r < ranks; ++r) {
    const std::vector<T> x = data_of<T>(r, n, salt);
    for (size_t i = 0; i < n; ++i) acc[i] += x[i];
  }
  return acc;
}

template <typename T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

const size_t kSizes[] = {1, 3, 7, 1000, 4099, 65537};

}  // namespace

template <typename T>
class MpiFloatSum : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(MpiFloatSum, FloatTypes);

TYPED_TEST(MpiFloatSum, AllReduceIsBitwiseTheRankOrderedSum) {
  Communicator& w = mpi_world();
  for (size_t n : kSizes) {
    std::vector<TypeParam> v = data_of<TypeParam>(w.rank(), n);
    w.all_reduce(std::span<TypeParam>(v));
    EXPECT_TRUE(bitwise_equal(v, rank_ordered_sum<TypeParam>(n, w.size()))) << "n=" << n << " seed=" << mpi_test_seed();
  }
}

TYPED_TEST(MpiFloatSum, AllReduceRepeatsBitwiseRunToRun) {
  Communicator& w = mpi_world();
  const size_t n = 12345;
  std::vector<TypeParam> first = data_of<TypeParam>(w.rank(), n, 1);
  w.all_reduce(std::span<TypeParam>(first));
  for (int run = 0; run < 3; ++run) {
    std::vector<TypeParam> again = data_of<TypeParam>(w.rank(), n, 1);
    w.all_reduce(std::span<TypeParam>(again));
    EXPECT_TRUE(bitwise_equal(first, again)) << "run " << run;
  }
  // And every rank holds the same bits as rank 0.
  std::vector<TypeParam> from_root = first;
  w.broadcast(std::span<TypeParam>(from_root), 0);
  EXPECT_TRUE(bitwise_equal(first, from_root));
}

TYPED_TEST(MpiFloatSum, ReduceScatterGivesEachRankItsBlockOfTheRankOrderedSum) {
  Communicator& w = mpi_world();
  for (size_t block : {size_t{1}, size_t{5}, size_t{1024}}) {
    const size_t n = block * w.size();
    const std::vector<TypeParam> send = data_of<TypeParam>(w.rank(), n, 2);
    std::vector<TypeParam> recv(block);
    w.reduce_scatter(std::span<const TypeParam>(send), std::span<TypeParam>(recv));
    const std::vector<TypeParam> sum = rank_ordered_sum<TypeParam>(n, w.size(), 2);
    const std::vector<TypeParam> mine(sum.begin() + w.rank() * block, sum.begin() + (w.rank() + 1) * block);
    EXPECT_TRUE(bitwise_equal(recv, mine)) << "block " << block;
  }
}

TEST(MpiCommunicator, IsTheWorldOnTheHost) {
  Communicator& w = mpi_world();
  EXPECT_EQ(w.backend_name(), "mpi");
  EXPECT_FALSE(w.buffers_on_device());
  EXPECT_GE(w.size(), 2);
  int32_t ranks = 1;
  w.all_reduce(&ranks, 1, DType::i32, ReduceOp::sum);
  EXPECT_EQ(ranks, w.size());
}

TEST(MpiCommunicator, AllReduceMaxAndIntegerSum) {
  Communicator& w = mpi_world();
  const size_t n = 777;
  std::vector<float> v = data_of<float>(w.rank(), n, 3);
  w.all_reduce(std::span<float>(v), ReduceOp::max);
  std::vector<int32_t> k = data_of<int32_t>(w.rank(), n, 3);
  w.all_reduce(std::span<int32_t>(k));
  std::vector<int32_t> kmax = data_of<int32_t>(w.rank(), n, 3);
  w.all_reduce(std::span<int32_t>(kmax), ReduceOp::max);
  for (size_t i = 0; i < n; ++i) {
    float expect_max = data_of<float>(0, n, 3)[i];
    int32_t expect_sum = 0, expect_kmax = data_of<int32_t>(0, n, 3)[i];
    for (int r = 0; r < w.size(); ++r) {
      expect_max = std::max(expect_max, data_of<float>(r, n, 3)[i]);
      expect_sum += data_of<int32_t>(r, n, 3)[i];
      expect_kmax = std::max(expect_kmax, data_of<int32_t>(r, n, 3)[i]);
    }
    ASSERT_EQ(v[i], expect_max) << i;
    ASSERT_EQ(k[i], expect_sum) << i;
    ASSERT_EQ(kmax[i], expect_kmax) << i;
  }
}

TEST(MpiCommunicator, ReduceScatterMaxOnIntegers) {
  Communicator& w = mpi_world();
  const size_t block = 9, n = block * w.size();
  const std::vector<int32_t> send = data_of<int32_t>(w.rank(), n, 4);
  std::vector<int32_t> recv(block);
  w.reduce_scatter(std::span<const int32_t>(send), std::span<int32_t>(recv), ReduceOp::max);
  for (size_t i = 0; i < block; ++i) {
    int32_t expect = data_of<int32_t>(0, n, 4)[w.rank() * block + i];
    for (int r = 1; r < w.size(); ++r) expect = std::max(expect, data_of<int32_t>(r, n, 4)[w.rank() * block + i]);
    EXPECT_EQ(recv[i], expect);
  }
}

TEST(MpiCommunicator, AllGatherConcatenatesInRankOrder) {
  Communicator& w = mpi_world();
  const size_t block = 33;
  const std::vector<double> mine = data_of<double>(w.rank(), block, 5);
  std::vector<double> all(block * w.size());
  w.all_gather(std::span<const double>(mine), std::span<double>(all));
  std::vector<double> expect;
  for (int r = 0; r < w.size(); ++r) {
    const auto x = data_of<double>(r, block, 5);
    expect.insert(expect.end(), x.begin(), x.end());
  }
  EXPECT_EQ(all, expect);
  // In place: the rank's block already sits at its place (ZeRO-1 parameter gather).
  std::vector<double> in_place(block * w.size(), -1.0);
  std::copy(mine.begin(), mine.end(), in_place.begin() + w.rank() * block);
  w.all_gather(in_place.data() + w.rank() * block, in_place.data(), block, DType::f64);
  EXPECT_EQ(in_place, expect);
}

TEST(MpiCommunicator, BroadcastFromEveryRoot) {
  Communicator& w = mpi_world();
  for (int root = 0; root < w.size(); ++root) {
    std::vector<float> v = data_of<float>(w.rank(), 100, 6);
    w.broadcast(std::span<float>(v), root);
    EXPECT_EQ(v, data_of<float>(root, 100, 6)) << "root " << root;
  }
}

TEST(MpiCommunicator, SendRecvAroundARing) {
  Communicator& w = mpi_world();
  const int next = (w.rank() + 1) % w.size(), prev = (w.rank() + w.size() - 1) % w.size();
  const std::vector<float> mine = data_of<float>(w.rank(), 500, 7);
  std::vector<float> got(500);
  w.send_recv(mine.data(), mine.size(), next, got.data(), got.size(), prev, DType::f32);
  EXPECT_EQ(got, data_of<float>(prev, 500, 7));
}

TEST(MpiCommunicator, PointToPointMessagesArriveInTheOrderSent) {
  Communicator& w = mpi_world();
  // Pairs (0,1), (2,3): the even rank sends two messages of different sizes, the odd one receives.
  if (w.rank() % 2 == 0 && w.rank() + 1 < w.size()) {
    w.send(std::span<const double>(data_of<double>(w.rank(), 10, 8)), w.rank() + 1);
    w.send(std::span<const double>(data_of<double>(w.rank(), 20, 9)), w.rank() + 1);
  } else if (w.rank() % 2 == 1) {
    std::vector<double> a(10), b(20);
    w.recv(std::span<double>(a), w.rank() - 1);
    w.recv(std::span<double>(b), w.rank() - 1);
    EXPECT_EQ(a, data_of<double>(w.rank() - 1, 10, 8));
    EXPECT_EQ(b, data_of<double>(w.rank() - 1, 20, 9));
  }
  w.barrier();
}

TEST(MpiCommunicator, BarrierHoldsEveryRankUntilTheLastArrives) {
  Communicator& w = mpi_world();
  const int late = w.size() - 1;
  const auto start = std::chrono::steady_clock::now();
  if (w.rank() == late) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  w.barrier();
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(waited, 0.25) << "rank " << w.rank() << " left the barrier before rank " << late << " arrived";
}

TEST(MpiCommunicator, SplitByParityRanksByKey) {
  Communicator& w = mpi_world();
  // Key = −rank: each sub-communicator orders its members from the highest world rank down.
  auto sub = w.split(w.rank() % 2, -w.rank());
  ASSERT_NE(sub, nullptr);
  std::vector<int> members;
  for (int r = w.size() - 1; r >= 0; --r)
    if (r % 2 == w.rank() % 2) members.push_back(r);
  EXPECT_EQ(sub->size(), static_cast<int>(members.size()));
  std::vector<int32_t> gathered(sub->size());
  const int32_t me = w.rank();
  sub->all_gather(&me, gathered.data(), 1, DType::i32);
  EXPECT_EQ(std::vector<int>(gathered.begin(), gathered.end()), members);
  // A negative color takes part in the split and gets no communicator.
  auto none = w.split(w.rank() == 0 ? -1 : 0, 0);
  EXPECT_EQ(none == nullptr, w.rank() == 0);
  if (none) EXPECT_EQ(none->size(), w.size() - 1);
}
