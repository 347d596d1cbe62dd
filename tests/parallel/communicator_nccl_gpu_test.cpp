// tests/parallel/communicator_nccl_gpu_test.cpp — the NCCL communicator with one rank (all a
// one-GPU machine can host: NCCL refuses two ranks on one device), bootstrapped through the
// single-process communicator the way MPI bootstraps it on many ranks.
#include <gtest/gtest.h>

#include <vector>

#include "parallel/communicator.h"
#include "tests/support/support.h"

#if FERRY_WITH_NCCL
#include <cuda_runtime.h>

#include "parallel/communicator_nccl.h"

using namespace ferry::parallel;

namespace {

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(const std::vector<T>& host) : n_(host.size()) {
    EXPECT_EQ(cudaMalloc(&ptr_, n_ * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(ptr_); }
  T* get() { return ptr_; }
  std::vector<T> host() const {
    std::vector<T> h(n_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(h.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }

 private:
  T* ptr_ = nullptr;
  size_t n_;
};

}  // namespace

TEST(NcclCommunicator, OneRankCollectivesAreIdentitiesOnDeviceBuffers) {
  FERRY_SKIP_WITHOUT_GPU();
  auto bootstrap = make_single_communicator();
  auto nccl = make_nccl_communicator(*bootstrap, NcclOptions{});
  EXPECT_EQ(nccl->rank(), 0);
  EXPECT_EQ(nccl->size(), 1);
  EXPECT_TRUE(nccl->buffers_on_device());

  std::mt19937_64 rng(ferry::test::test_seed());
  const std::vector<float> x = ferry::test::random_vector<float>(4099, rng);
  DeviceBuffer<float> a(x);
  nccl->all_reduce(a.get(), x.size(), DType::f32, ReduceOp::sum);
  EXPECT_EQ(a.host(), x);
  nccl->all_reduce(a.get(), x.size(), DType::f32, ReduceOp::max);
  nccl->broadcast(a.get(), x.size(), DType::f32, 0);
  EXPECT_EQ(a.host(), x);

  DeviceBuffer<float> out(std::vector<float>(x.size(), -7.0f));
  nccl->reduce_scatter(a.get(), out.get(), x.size(), DType::f32, ReduceOp::sum);
  EXPECT_EQ(out.host(), x);
  DeviceBuffer<float> gathered(std::vector<float>(x.size(), -7.0f));
  nccl->all_gather(a.get(), gathered.get(), x.size(), DType::f32);
  EXPECT_EQ(gathered.host(), x);

  DeviceBuffer<float> received(std::vector<float>(x.size(), -7.0f));
  nccl->send_recv(a.get(), x.size(), 0, received.get(), x.size(), 0, DType::f32);
  EXPECT_EQ(received.host(), x);
  nccl->barrier();

  auto sub = nccl->split(0, 0);
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(sub->size(), 1);
  const std::vector<int32_t> k{1, -2, 3};
  DeviceBuffer<int32_t> kd(k);
  sub->all_reduce(kd.get(), k.size(), DType::i32, ReduceOp::sum);
  EXPECT_EQ(kd.host(), k);
  sub->barrier();
}

#else
TEST(NcclCommunicator, OneRankCollectivesAreIdentitiesOnDeviceBuffers) {
  GTEST_SKIP() << "built without CUDA and NCCL";
}
#endif
