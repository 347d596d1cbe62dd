// tests/parallel/communicator_single_test.cpp — the one-process communicator: identities, copies,
// and a FIFO for messages to itself.
#include <gtest/gtest.h>

#include <vector>

#include "base/error.h"
#include "parallel/communicator.h"

using namespace ferry::parallel;

TEST(SingleCommunicator, IsRankZeroOfOneOnTheHost) {
  auto c = make_single_communicator();
  EXPECT_EQ(c->rank(), 0);
  EXPECT_EQ(c->size(), 1);
  EXPECT_FALSE(c->buffers_on_device());
  EXPECT_EQ(c->backend_name(), "single");
}

TEST(SingleCommunicator, CollectivesLeaveDataAsOneRankWouldSeeIt) {
  auto c = make_single_communicator();
  std::vector<float> v{1.5f, -2.0f, 3.25f};
  c->all_reduce(std::span<float>(v));
  EXPECT_EQ(v, (std::vector<float>{1.5f, -2.0f, 3.25f}));
  c->all_reduce(std::span<float>(v), ReduceOp::max);
  EXPECT_EQ(v, (std::vector<float>{1.5f, -2.0f, 3.25f}));
  c->broadcast(std::span<float>(v), 0);
  EXPECT_EQ(v, (std::vector<float>{1.5f, -2.0f, 3.25f}));

  std::vector<double> out(3, 0.0);
  const std::vector<double> in{1.0, 2.0, 3.0};
  c->reduce_scatter(std::span<const double>(in), std::span<double>(out));
  EXPECT_EQ(out, in);
  std::vector<int32_t> gathered(2, 0);
  const std::vector<int32_t> mine{7, 9};
  c->all_gather(std::span<const int32_t>(mine), std::span<int32_t>(gathered));
  EXPECT_EQ(gathered, mine);
  c->barrier();
}

TEST(SingleCommunicator, MessagesToItselfArriveInOrder) {
  auto c = make_single_communicator();
  const std::vector<float> first{1, 2}, second{3, 4, 5};
  c->send(std::span<const float>(first), 0);
  c->send(std::span<const float>(second), 0);
  std::vector<float> a(2), b(3);
  c->recv(std::span<float>(a), 0);
  c->recv(std::span<float>(b), 0);
  EXPECT_EQ(a, first);
  EXPECT_EQ(b, second);
  std::vector<float> x{8, 9}, y(2);
  c->send_recv(x.data(), 2, 0, y.data(), 2, 0, DType::f32);
  EXPECT_EQ(y, x);
}

TEST(SingleCommunicator, MisuseIsAnInternalErrorNotAHang) {
  auto c = make_single_communicator();
  std::vector<float> v(2);
  EXPECT_THROW(c->recv(std::span<float>(v), 0), ferry::InternalError);
  EXPECT_THROW(c->send(std::span<const float>(v), 1), ferry::InternalError);
  EXPECT_THROW(c->broadcast(std::span<float>(v), 1), ferry::InternalError);
  c->send(std::span<const float>(v), 0);
  std::vector<double> wrong(2);
  EXPECT_THROW(c->recv(std::span<double>(wrong), 0), ferry::InternalError);
  std::vector<float> gathered(3);
  EXPECT_THROW(c->all_gather(std::span<const float>(v), std::span<float>(gathered)), ferry::InternalError);
}

TEST(SingleCommunicator, SplitGivesAWorldOfOneOrNothing) {
  auto c = make_single_communicator();
  auto sub = c->split(3, 0);
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(sub->size(), 1);
  EXPECT_EQ(c->split(-1, 0), nullptr);
}
