// kernels/cuda/attention_cudnn.cpp — cuDNN fused attention through the C backend API (which
// attention a run uses is engine policy: engine/attention_choice.*). See attention_cudnn.h for the
// contract and why the graphs look as they do.
//
// The graphs below are cuDNN's flash-attention fusion pattern written out node by node (the
// pattern is described in cuDNN's Graph API guide, "Fused Flash Attention fprop/bprop"):
//   forward   S = Q·Kᵀ, S *= scale, [padding mask], [causal mask], softmax with stats
//             (max, sub, exp, sum, log, max+log → lse; exp/sum → P), O = P·V
//   backward  D = rowsum(dO ∘ O) (fp32, workspace), P = exp(scale·Q·Kᵀ − lse) with the same masks,
//             dV = Pᵀ·dO, dS = P ∘ (dO·Vᵀ − D) · scale, dK = dSᵀ·Q, dQ = dS·K (fp32 accumulator in
//             the workspace, then converted into dqkv)
// Q, K, V, dQ, dK, dV are strided views of the packed [B, T, 3, NH, HS] buffers; O/dO of [B, T, NH,
// HS]; lse is [B, NH, T, 1].
#include "kernels/cuda/attention_cudnn.h"

#include <cuda_runtime.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <tuple>
#include <vector>

#include "base/error.h"
#include "kernels/cuda_check.h"

#if FERRY_WITH_CUDNN
#include <cudnn.h>
#endif

namespace ferry::kernels::cuda {

// ---- what the engine's attention choice asks (no cuDNN needed) --------------------------------

bool built_with_cudnn() {
#if FERRY_WITH_CUDNN
  return true;
#else
  return false;
#endif
}

long cudnn_runtime_version() {
#if FERRY_WITH_CUDNN
  return static_cast<long>(cudnnGetVersion());
#else
  return 0;
#endif
}

namespace {

std::string version_string(long v) {
  return std::to_string(v / 10000) + "." + std::to_string((v % 10000) / 100) + "." + std::to_string(v % 100);
}

// The current device's name and compute capability; false when there is no usable device.
bool current_device(std::string* name, int* major, int* minor) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();  // clear the sticky "no driver" error for later calls
    return false;
  }
  int dev = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess) return false;
  if (name) *name = prop.name;
  if (major) *major = prop.major;
  if (minor) *minor = prop.minor;
  return true;
}

}  // namespace

std::string cuda_device_name() {
  std::string name;
  return current_device(&name, nullptr, nullptr) ? name : std::string();
}

std::string cudnn_attention_unsupported_reason(int HS, bool backward) {
  (void)backward;  // the composite backward exists wherever the forward does (see the header)
#if !FERRY_WITH_CUDNN
  (void)HS;
  return "this ferry was built without cuDNN (cudnn.h/libcudnn not found when it was configured)";
#else
  const long v = cudnn_runtime_version();
  // The flash fusion pattern (with a backward and bf16) arrived in 8.9; ferry is written against 9.
  if (v < 90000) return "cuDNN " + version_string(v) + " is older than 9.0, which ferry's cuDNN attention needs";
  std::string name;
  int major = 0, minor = 0;
  if (!current_device(&name, &major, &minor)) return "no CUDA device for cuDNN attention";
  if (major < 8)
    return "cuDNN flash attention needs compute capability 8.0 or newer; " + name + " is " + std::to_string(major) +
           "." + std::to_string(minor);
  if (HS != 0 && HS != 64 && HS != 128)
    return "head dim " + std::to_string(HS) + " is not supported by ferry's cuDNN attention (64 or 128)";
  return "";
#endif
}

#if !FERRY_WITH_CUDNN

// ---- a CUDA build without cuDNN: the type exists, using it says why it cannot ----------------

std::string cudnn_attention_summary() { return "cuDNN: not found when ferry was configured"; }

void check_cudnn_attention_graph(int, int, int, int, bool, bool, bool) {
  throw UserError("cuDNN attention: " + cudnn_attention_unsupported_reason(0, true));
}

struct CudnnAttention::Impl {};
CudnnAttention::CudnnAttention() { throw UserError("cuDNN attention: " + cudnn_attention_unsupported_reason(0, true)); }
CudnnAttention::~CudnnAttention() = default;
size_t CudnnAttention::forward_workspace_bytes(int, int, int, int, bool, bool) { return 0; }
size_t CudnnAttention::backward_workspace_bytes(int, int, int, int, bool, bool) { return 0; }
void CudnnAttention::forward(bf16*, float*, const bf16*, const int32_t*, int, int, int, int, bool, void*, size_t,
                             cudaStream_t) {}
void CudnnAttention::backward(bf16*, const bf16*, const bf16*, const bf16*, const float*, const int32_t*, int, int,
                              int, int, bool, void*, size_t, cudaStream_t) {}
size_t CudnnAttention::cached_plans() const { return 0; }

#else

// ---- cuDNN backend descriptors ----------------------------------------------------------------

namespace {

[[noreturn]] void cudnn_fail(const std::string& what, cudnnStatus_t status) {
  char last[1024] = {0};
  cudnnGetLastErrorString(last, sizeof(last));
  std::string msg = "cuDNN " + version_string(cudnn_runtime_version()) + ": " + what + " failed: " +
                    cudnnGetErrorString(status);
  if (last[0]) msg += std::string(" (") + last + ")";
  throw CudaError(msg);
}

#define FERRY_CUDNN_CHECK(call)                                 \
  do {                                                          \
    const cudnnStatus_t ferry_cudnn_status_ = (call);           \
    if (ferry_cudnn_status_ != CUDNN_STATUS_SUCCESS) cudnn_fail(#call, ferry_cudnn_status_); \
  } while (0)

// One backend descriptor, destroyed with its owner.
class Desc {
 public:
  explicit Desc(cudnnBackendDescriptorType_t type) { FERRY_CUDNN_CHECK(cudnnBackendCreateDescriptor(type, &d_)); }
  ~Desc() {
    if (d_) cudnnBackendDestroyDescriptor(d_);
  }
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;

  cudnnBackendDescriptor_t get() const { return d_; }

  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count, const void* values) {
    const cudnnStatus_t s = cudnnBackendSetAttribute(d_, name, type, count, values);
    if (s != CUDNN_STATUS_SUCCESS) cudnn_fail("cudnnBackendSetAttribute(" + std::to_string(name) + ")", s);
  }
  void set_i64(cudnnBackendAttributeName_t name, int64_t v) { set(name, CUDNN_TYPE_INT64, 1, &v); }
  void set_dtype(cudnnBackendAttributeName_t name, cudnnDataType_t v) { set(name, CUDNN_TYPE_DATA_TYPE, 1, &v); }
  void set_bool(cudnnBackendAttributeName_t name, bool v) { set(name, CUDNN_TYPE_BOOLEAN, 1, &v); }
  void set_desc(cudnnBackendAttributeName_t name, const Desc& d) {
    cudnnBackendDescriptor_t raw = d.get();
    set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &raw);
  }
  void finalize(const char* what) {
    const cudnnStatus_t s = cudnnBackendFinalize(d_);
    if (s != CUDNN_STATUS_SUCCESS) cudnn_fail(std::string("finalizing the ") + what, s);
  }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

using Dims = std::array<int64_t, 4>;

// Fixed ids of the tensors a caller's pointers go to (virtual tensors are numbered from 100).
enum Uid : int64_t {
  kQ = 1, kK, kV, kO, kStats, kScale, kNegInfPadding, kNegInfCausal, kSeqQ, kSeqKV,
  kdO, kdQ, kdK, kdV, kSoftmaxSum, kdQAccum, kOne,
};

// An operation graph under construction: owns every descriptor until the graph is finalized.
class GraphBuilder {
 public:
  GraphBuilder(cudnnHandle_t handle, const char* name) : handle_(handle), name_(name) {}

  const Desc& tensor(int64_t uid, cudnnDataType_t type, Dims dims, Dims strides, bool is_virtual = false,
                     bool by_value = false) {
    auto d = std::make_unique<Desc>(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    d->set_i64(CUDNN_ATTR_TENSOR_UNIQUE_ID, uid);
    d->set_dtype(CUDNN_ATTR_TENSOR_DATA_TYPE, type);
    d->set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data());
    d->set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides.data());
    d->set_i64(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, 16);
    d->set_bool(CUDNN_ATTR_TENSOR_IS_VIRTUAL, is_virtual);
    if (by_value) d->set_bool(CUDNN_ATTR_TENSOR_IS_BY_VALUE, true);
    d->finalize("tensor descriptor");
    return keep(std::move(d));
  }
  const Desc& virt(cudnnDataType_t type, Dims dims, Dims strides) {
    return tensor(next_virtual_++, type, dims, strides, true);
  }
  const Desc& scalar(int64_t uid) { return tensor(uid, CUDNN_DATA_FLOAT, {1, 1, 1, 1}, {1, 1, 1, 1}, false, true); }

  // y = mode(x[, b[, t]]); BINARY_SELECT takes its condition as t.
  void pointwise(cudnnPointwiseMode_t mode, const Desc& x, const Desc* b, const Desc* t, const Desc& y,
                 cudnnDataType_t compute = CUDNN_DATA_FLOAT, int64_t axis = -1) {
    auto pw = std::make_unique<Desc>(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    pw->set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    pw->set_dtype(CUDNN_ATTR_POINTWISE_MATH_PREC, compute);
    if (axis >= 0) pw->set_i64(CUDNN_ATTR_POINTWISE_AXIS, axis);
    pw->finalize("pointwise descriptor");
    auto op = std::make_unique<Desc>(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    op->set_desc(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, *pw);
    op->set_desc(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x);
    if (b) op->set_desc(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b);
    if (t) op->set_desc(CUDNN_ATTR_OPERATION_POINTWISE_TDESC, *t);
    op->set_desc(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y);
    op->finalize("pointwise operation");
    keep(std::move(pw));
    add_op(std::move(op));
  }

  void reduction(cudnnReduceTensorOp_t reduce, const Desc& x, const Desc& y) {
    auto rd = std::make_unique<Desc>(CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
    rd->set(CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &reduce);
    rd->set_dtype(CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_DATA_FLOAT);
    rd->finalize("reduction descriptor");
    auto op = std::make_unique<Desc>(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
    op->set_desc(CUDNN_ATTR_OPERATION_REDUCTION_DESC, *rd);
    op->set_desc(CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x);
    op->set_desc(CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y);
    op->finalize("reduction operation");
    keep(std::move(rd));
    add_op(std::move(op));
  }

  // c = a·b with fp32 accumulation; the overrides (per-batch lengths) bound M, N or K when padding.
  void matmul(const Desc& a, const Desc& b, const Desc& c, const Desc* m_override, const Desc* n_override,
              const Desc* k_override) {
    auto mm = std::make_unique<Desc>(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    mm->set_dtype(CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_DATA_FLOAT);
    mm->finalize("matmul descriptor");
    auto op = std::make_unique<Desc>(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
    op->set_desc(CUDNN_ATTR_OPERATION_MATMUL_ADESC, a);
    op->set_desc(CUDNN_ATTR_OPERATION_MATMUL_BDESC, b);
    op->set_desc(CUDNN_ATTR_OPERATION_MATMUL_CDESC, c);
    op->set_desc(CUDNN_ATTR_OPERATION_MATMUL_DESC, *mm);
    if (m_override) op->set_desc(CUDNN_ATTR_OPERATION_MATMUL_GEMM_M_OVERRIDE_DESC, *m_override);
    if (n_override) op->set_desc(CUDNN_ATTR_OPERATION_MATMUL_GEMM_N_OVERRIDE_DESC, *n_override);
    if (k_override) op->set_desc(CUDNN_ATTR_OPERATION_MATMUL_GEMM_K_OVERRIDE_DESC, *k_override);
    op->finalize("matmul operation");
    keep(std::move(mm));
    add_op(std::move(op));
  }

  // The same elements seen with other dims/strides (a transpose for the engine).
  void reshape(const Desc& x, const Desc& y) {
    auto op = std::make_unique<Desc>(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR);
    op->set_desc(CUDNN_ATTR_OPERATION_RESHAPE_XDESC, x);
    op->set_desc(CUDNN_ATTR_OPERATION_RESHAPE_YDESC, y);
    op->finalize("reshape operation");
    add_op(std::move(op));
  }

  // The finalized operation graph, then the first engine configuration the heuristics rank that
  // finalizes into an execution plan. Returns the plan and its workspace bytes.
  std::unique_ptr<Desc> build_plan(int64_t* workspace_bytes) {
    Desc graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    std::vector<cudnnBackendDescriptor_t> raw;
    for (const auto& op : ops_) raw.push_back(op->get());
    graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, static_cast<int64_t>(raw.size()),
              raw.data());
    graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_);
    graph.finalize((name_ + " operation graph").c_str());

    Desc heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    heur.set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
    cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
    heur.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    heur.finalize((name_ + " engine heuristics").c_str());

    int64_t count = 0;
    FERRY_CUDNN_CHECK(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr));
    if (count == 0)
      throw UserError("cuDNN " + version_string(cudnn_runtime_version()) + " has no engine for the " + name_ +
                      " graph on this device");
    std::vector<std::unique_ptr<Desc>> configs;
    std::vector<cudnnBackendDescriptor_t> config_raw;
    for (int64_t i = 0; i < count; ++i) {
      configs.push_back(std::make_unique<Desc>(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
      config_raw.push_back(configs.back()->get());
    }
    int64_t got = 0;
    FERRY_CUDNN_CHECK(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                               CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got, config_raw.data()));
    cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
    char last_msg[1024] = {0};
    for (int64_t i = 0; i < got; ++i) {
      auto plan = std::make_unique<Desc>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      plan->set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_);
      plan->set_desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, *configs[i]);
      last = cudnnBackendFinalize(plan->get());
      if (last == CUDNN_STATUS_SUCCESS) {
        int64_t n = 0;
        FERRY_CUDNN_CHECK(cudnnBackendGetAttribute(plan->get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                                   CUDNN_TYPE_INT64, 1, &n, workspace_bytes));
        return plan;
      }
      cudnnGetLastErrorString(last_msg, sizeof(last_msg));
    }
    throw UserError("cuDNN " + version_string(cudnn_runtime_version()) + ": none of the " + std::to_string(got) +
                    " engine configurations for the " + name_ + " graph builds on this device (" +
                    cudnnGetErrorString(last) + (last_msg[0] ? std::string(": ") + last_msg : std::string()) +
                    ")");
  }

 private:
  const Desc& keep(std::unique_ptr<Desc> d) {
    owned_.push_back(std::move(d));
    return *owned_.back();
  }
  void add_op(std::unique_ptr<Desc> op) {
    ops_.push_back(op.get());
    owned_.push_back(std::move(op));
  }

  cudnnHandle_t handle_;
  std::string name_;
  int64_t next_virtual_ = 100;
  std::vector<std::unique_ptr<Desc>> owned_;
  std::vector<const Desc*> ops_;
};

// The shape of one attention call, and everything its graphs need to know about it.
struct Shape {
  int B, T, NH, HS;
  bool causal;
  bool masked;  // the graph carries per-batch sequence lengths (key padding, or cuDNN's workaround)
  bool backward;
  auto key() const { return std::make_tuple(backward, B, T, NH, HS, causal, masked); }
  bool operator<(const Shape& o) const { return key() < o.key(); }

  int64_t C() const { return int64_t(NH) * HS; }
  Dims qkv_part() const { return {B, NH, T, HS}; }                      // Q, V, dQ, dK, dV
  Dims qkv_strides() const { return {int64_t(T) * 3 * C(), HS, 3 * C(), 1}; }
  Dims transposed_part() const { return {B, NH, HS, T}; }               // Kᵀ, Vᵀ
  Dims transposed_strides() const { return {int64_t(T) * 3 * C(), HS, 1, 3 * C()}; }
  Dims out_strides() const { return {int64_t(T) * C(), HS, C(), 1}; }   // O, dO
  Dims scores() const { return {B, NH, T, T}; }
  Dims score_strides() const { return {int64_t(NH) * T * T, int64_t(T) * T, T, 1}; }
  Dims scores_t_strides() const { return {int64_t(NH) * T * T, int64_t(T) * T, 1, T}; }
  Dims rows() const { return {B, NH, T, 1}; }
  Dims row_strides() const { return {int64_t(NH) * T, T, 1, 1}; }
  Dims lengths() const { return {B, 1, 1, 1}; }
};

// The masks, as the fusion engine expects them: a score tensor in, a masked score tensor out.
struct Masks {
  GraphBuilder& g;
  const Shape& s;
  const Desc* seq_q = nullptr;
  const Desc* seq_kv = nullptr;

  // Keys at or beyond their row's length (and queries beyond seq_q, which ferry sets to T) get -inf.
  const Desc& padding(const Desc& x) {
    const Desc& row = g.virt(CUDNN_DATA_INT32, s.scores(), s.score_strides());
    g.pointwise(CUDNN_POINTWISE_GEN_INDEX, x, nullptr, nullptr, row, CUDNN_DATA_INT32, 2);
    const Desc& col = g.virt(CUDNN_DATA_INT32, s.scores(), s.score_strides());
    g.pointwise(CUDNN_POINTWISE_GEN_INDEX, x, nullptr, nullptr, col, CUDNN_DATA_INT32, 3);
    const Desc& row_ok = g.virt(CUDNN_DATA_BOOLEAN, s.scores(), s.score_strides());
    g.pointwise(CUDNN_POINTWISE_CMP_LT, row, seq_q, nullptr, row_ok, CUDNN_DATA_BOOLEAN);
    const Desc& col_ok = g.virt(CUDNN_DATA_BOOLEAN, s.scores(), s.score_strides());
    g.pointwise(CUDNN_POINTWISE_CMP_LT, col, seq_kv, nullptr, col_ok, CUDNN_DATA_BOOLEAN);
    const Desc& keep = g.virt(CUDNN_DATA_BOOLEAN, s.scores(), s.score_strides());
    g.pointwise(CUDNN_POINTWISE_LOGICAL_AND, row_ok, &col_ok, nullptr, keep, CUDNN_DATA_BOOLEAN);
    const Desc& neg_inf = g.scalar(kNegInfPadding);
    const Desc& y = g.virt(CUDNN_DATA_FLOAT, s.scores(), s.score_strides());
    g.pointwise(CUDNN_POINTWISE_BINARY_SELECT, x, &neg_inf, &keep, y);
    return y;
  }

  // Query row r sees key column c ≤ r (top-left aligned diagonal).
  const Desc& causal(const Desc& x) {
    const Desc& row = g.virt(CUDNN_DATA_INT32, s.scores(), s.score_strides());
    g.pointwise(CUDNN_POINTWISE_GEN_INDEX, x, nullptr, nullptr, row, CUDNN_DATA_FLOAT, 2);
    const Desc& col = g.virt(CUDNN_DATA_INT32, s.scores(), s.score_strides());
    g.pointwise(CUDNN_POINTWISE_GEN_INDEX, x, nullptr, nullptr, col, CUDNN_DATA_FLOAT, 3);
    const Desc& keep = g.virt(CUDNN_DATA_BOOLEAN, s.scores(), s.score_strides());
    g.pointwise(CUDNN_POINTWISE_CMP_GE, row, &col, nullptr, keep, CUDNN_DATA_BOOLEAN);
    const Desc& neg_inf = g.scalar(kNegInfCausal);
    const Desc& y = g.virt(CUDNN_DATA_FLOAT, s.scores(), s.score_strides());
    g.pointwise(CUDNN_POINTWISE_BINARY_SELECT, x, &neg_inf, &keep, y);
    return y;
  }

  const Desc& apply(const Desc& x) {
    const Desc* y = &x;
    if (s.masked) y = &padding(*y);
    if (s.causal) y = &causal(*y);
    return *y;
  }
};

void build_forward(GraphBuilder& g, const Shape& s) {
  const Desc& q = g.tensor(kQ, CUDNN_DATA_BFLOAT16, s.qkv_part(), s.qkv_strides());
  const Desc& kt = g.tensor(kK, CUDNN_DATA_BFLOAT16, s.transposed_part(), s.transposed_strides());
  const Desc& v = g.tensor(kV, CUDNN_DATA_BFLOAT16, s.qkv_part(), s.qkv_strides());
  const Desc& o = g.tensor(kO, CUDNN_DATA_BFLOAT16, s.qkv_part(), s.out_strides());
  const Desc& stats = g.tensor(kStats, CUDNN_DATA_FLOAT, s.rows(), s.row_strides());
  const Desc& scale = g.scalar(kScale);
  Masks masks{g, s};
  if (s.masked) {
    masks.seq_q = &g.tensor(kSeqQ, CUDNN_DATA_INT32, s.lengths(), {1, 1, 1, 1});
    masks.seq_kv = &g.tensor(kSeqKV, CUDNN_DATA_INT32, s.lengths(), {1, 1, 1, 1});
  }

  const Desc& qk = g.virt(CUDNN_DATA_FLOAT, s.scores(), s.score_strides());
  g.matmul(q, kt, qk, masks.seq_q, masks.seq_kv, nullptr);
  const Desc& scaled = g.virt(CUDNN_DATA_FLOAT, s.scores(), s.score_strides());
  g.pointwise(CUDNN_POINTWISE_MUL, qk, &scale, nullptr, scaled);
  const Desc& logits = masks.apply(scaled);

  // Softmax with its statistics: lse = max + log Σ exp(x − max).
  const Desc& row_max = g.virt(CUDNN_DATA_FLOAT, s.rows(), s.row_strides());
  g.reduction(CUDNN_REDUCE_TENSOR_MAX, logits, row_max);
  const Desc& shifted = g.virt(CUDNN_DATA_FLOAT, s.scores(), s.score_strides());
  g.pointwise(CUDNN_POINTWISE_SUB, logits, &row_max, nullptr, shifted);
  const Desc& e = g.virt(CUDNN_DATA_FLOAT, s.scores(), s.score_strides());
  g.pointwise(CUDNN_POINTWISE_EXP, shifted, nullptr, nullptr, e);
  const Desc& row_sum = g.virt(CUDNN_DATA_FLOAT, s.rows(), s.row_strides());
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, e, row_sum);
  const Desc& log_sum = g.virt(CUDNN_DATA_FLOAT, s.rows(), s.row_strides());
  g.pointwise(CUDNN_POINTWISE_LOG, row_sum, nullptr, nullptr, log_sum);
  g.pointwise(CUDNN_POINTWISE_ADD, row_max, &log_sum, nullptr, stats);
  // P in the input type: the second matmul's A operand must be bf16.
  const Desc& p = g.virt(CUDNN_DATA_BFLOAT16, s.scores(), s.score_strides());
  g.pointwise(CUDNN_POINTWISE_DIV, e, &row_sum, nullptr, p);

  g.matmul(p, v, o, masks.seq_q, nullptr, masks.seq_kv);
}

void build_backward(GraphBuilder& g, const Shape& s) {
  const Desc& q = g.tensor(kQ, CUDNN_DATA_BFLOAT16, s.qkv_part(), s.qkv_strides());
  const Desc& kt = g.tensor(kK, CUDNN_DATA_BFLOAT16, s.transposed_part(), s.transposed_strides());
  const Desc& vt = g.tensor(kV, CUDNN_DATA_BFLOAT16, s.transposed_part(), s.transposed_strides());
  const Desc& o = g.tensor(kO, CUDNN_DATA_BFLOAT16, s.qkv_part(), s.out_strides());
  const Desc& d_o = g.tensor(kdO, CUDNN_DATA_BFLOAT16, s.qkv_part(), s.out_strides());
  const Desc& stats = g.tensor(kStats, CUDNN_DATA_FLOAT, s.rows(), s.row_strides());
  const Desc& dq = g.tensor(kdQ, CUDNN_DATA_BFLOAT16, s.qkv_part(), s.qkv_strides());
  const Desc& dk = g.tensor(kdK, CUDNN_DATA_BFLOAT16, s.qkv_part(), s.qkv_strides());
  const Desc& dv = g.tensor(kdV, CUDNN_DATA_BFLOAT16, s.qkv_part(), s.qkv_strides());
  const Desc& scale = g.scalar(kScale);
  const Desc& one = g.scalar(kOne);
  Masks masks{g, s};
  if (s.masked) {
    masks.seq_q = &g.tensor(kSeqQ, CUDNN_DATA_INT32, s.lengths(), {1, 1, 1, 1});
    masks.seq_kv = &g.tensor(kSeqKV, CUDNN_DATA_INT32, s.lengths(), {1, 1, 1, 1});
  }
  const Dims contiguous_part = {int64_t(s.NH) * s.T * s.HS, int64_t(s.T) * s.HS, s.HS, 1};

  // D = rowsum(dO ∘ O), kept in the workspace (fp32) for every key tile.
  const Desc& do_o = g.virt(CUDNN_DATA_FLOAT, s.qkv_part(), contiguous_part);
  g.pointwise(CUDNN_POINTWISE_MUL, d_o, &o, nullptr, do_o);
  const Desc& rowsum = g.virt(CUDNN_DATA_FLOAT, s.rows(), s.row_strides());
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, do_o, rowsum);
  const Desc& softmax_sum = g.tensor(kSoftmaxSum, CUDNN_DATA_FLOAT, s.rows(), s.row_strides());
  g.pointwise(CUDNN_POINTWISE_MUL, rowsum, &one, nullptr, softmax_sum);

  // P recomputed from lse: exp(scale·Q·Kᵀ − lse), masked as in the forward.
  const Desc& qk = g.virt(CUDNN_DATA_FLOAT, s.scores(), s.score_strides());
  g.matmul(q, kt, qk, masks.seq_q, masks.seq_kv, nullptr);
  const Desc& scaled = g.virt(CUDNN_DATA_FLOAT, s.scores(), s.score_strides());
  g.pointwise(CUDNN_POINTWISE_MUL, qk, &scale, nullptr, scaled);
  const Desc& centered = g.virt(CUDNN_DATA_FLOAT, s.scores(), s.score_strides());
  g.pointwise(CUDNN_POINTWISE_SUB, scaled, &stats, nullptr, centered);
  const Desc& masked = masks.apply(centered);
  const Desc& p = g.virt(CUDNN_DATA_FLOAT, s.scores(), s.score_strides());
  g.pointwise(CUDNN_POINTWISE_EXP, masked, nullptr, nullptr, p);

  // dV = Pᵀ·dO
  const Desc& pt = g.virt(CUDNN_DATA_BFLOAT16, s.scores(), s.scores_t_strides());
  g.reshape(p, pt);
  g.matmul(pt, d_o, dv, masks.seq_kv, nullptr, masks.seq_q);

  // dS = P ∘ (dO·Vᵀ − D) · scale
  const Desc& dp = g.virt(CUDNN_DATA_FLOAT, s.scores(), s.score_strides());
  g.matmul(d_o, vt, dp, masks.seq_q, masks.seq_kv, nullptr);
  const Desc& dp_centered = g.virt(CUDNN_DATA_FLOAT, s.scores(), s.score_strides());
  g.pointwise(CUDNN_POINTWISE_SUB, dp, &softmax_sum, nullptr, dp_centered);
  const Desc& ds_unscaled = g.virt(CUDNN_DATA_FLOAT, s.scores(), s.score_strides());
  g.pointwise(CUDNN_POINTWISE_MUL, dp_centered, &p, nullptr, ds_unscaled);
  const Desc& ds = g.virt(CUDNN_DATA_FLOAT, s.scores(), s.score_strides());
  g.pointwise(CUDNN_POINTWISE_MUL, ds_unscaled, &scale, nullptr, ds);

  // dK = dSᵀ·Q
  const Desc& dst = g.virt(CUDNN_DATA_BFLOAT16, s.scores(), s.scores_t_strides());
  g.reshape(ds, dst);
  g.matmul(dst, q, dk, masks.seq_kv, nullptr, masks.seq_q);

  // dQ = dS·K, accumulated in fp32 (workspace), then written into dqkv.
  const Desc& k = g.virt(CUDNN_DATA_BFLOAT16, s.qkv_part(), s.qkv_strides());
  g.reshape(kt, k);
  const Desc& dq_accum = g.tensor(kdQAccum, CUDNN_DATA_FLOAT, s.qkv_part(), contiguous_part);
  g.matmul(ds, k, dq_accum, masks.seq_q, nullptr, masks.seq_kv);
  g.pointwise(CUDNN_POINTWISE_IDENTITY, dq_accum, nullptr, nullptr, dq);
}

constexpr size_t kAlign = 256;
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

struct Plan {
  std::unique_ptr<Desc> plan;
  size_t cudnn_bytes = 0;   // what the engine asks for, at the start of the workspace
  size_t softmax_sum = 0;   // backward: byte offsets of our own fp32 tensors in the workspace
  size_t dq_accum = 0;
  size_t dq_accum_bytes = 0;
  size_t total = 0;
};

}  // namespace

std::string cudnn_attention_summary() {
  const long v = cudnn_runtime_version();
  std::string s = "cuDNN " + version_string(v) + " (built against " + version_string(CUDNN_VERSION) + ")";
  bool bwd_descriptor = false;
#if CUDNN_VERSION >= 91700
  // Runtime query: an older library than the headers refuses the descriptor type.
  cudnnBackendDescriptor_t d = nullptr;
  if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATION_SDPA_BWD_DESCRIPTOR, &d) == CUDNN_STATUS_SUCCESS) {
    bwd_descriptor = true;
    cudnnBackendDestroyDescriptor(d);
  }
#endif
  s += bwd_descriptor ? ": declares an SDPA backward descriptor" : ": no SDPA backward descriptor";
  s += "; ferry builds forward and backward as flash-attention operation graphs (matmul/pointwise/reduction)";
  const std::string why = cudnn_attention_unsupported_reason(0, true);
  if (!why.empty()) s += "; unusable here: " + why;
  return s;
}

void check_cudnn_attention_graph(int B, int Tn, int NH, int HS, bool causal, bool padded, bool backward) {
  const Shape s{B, Tn, NH, HS, causal, padded, backward};
  GraphBuilder g(nullptr, "attention graph check");
  if (backward)
    build_backward(g, s);
  else
    build_forward(g, s);
}

struct CudnnAttention::Impl {
  cudnnHandle_t handle = nullptr;
  std::map<Shape, Plan> plans;
  std::map<std::pair<int, int>, int32_t*> full_lengths;  // (B, T) → device [B] filled with T
  void* own_workspace = nullptr;
  size_t own_workspace_bytes = 0;
  // Pass-by-value scalars live here: cuDNN reads them through host pointers at execute time.
  float neg_inf = -std::numeric_limits<float>::infinity();
  float one = 1.0f;

  ~Impl() {
    for (auto& [key, ptr] : full_lengths) cudaFree(ptr);
    if (own_workspace) cudaFree(own_workspace);
    if (handle) cudnnDestroy(handle);
  }

  // cuDNN up to 9.15 needs the padded graph for a backward whose key count is not a multiple of
  // 128 (its unpadded kernel reads past the end); cuDNN's own frontend applies the same workaround.
  static bool needs_masks(bool backward, bool padded, int T) {
    return padded || (backward && T % 128 != 0 && cudnn_runtime_version() <= 91500);
  }

  Plan& plan_for(int B, int T, int NH, int HS, bool causal, bool padded, bool backward) {
    FERRY_CUDA_REQUIRE(B >= 1 && T >= 1 && NH >= 1, "positive B, T, NH");
    const Shape s{B, T, NH, HS, causal, needs_masks(backward, padded, T), backward};
    if (auto it = plans.find(s); it != plans.end()) return it->second;
    const std::string why = cudnn_attention_unsupported_reason(HS, backward);
    if (!why.empty()) throw UserError("cuDNN attention: " + why);

    const std::string name = std::string("attention ") + (backward ? "backward" : "forward") + " (B=" +
                             std::to_string(B) + " T=" + std::to_string(T) + " NH=" + std::to_string(NH) +
                             " HS=" + std::to_string(HS) + (causal ? " causal" : " bidirectional") +
                             (padded ? " key-padded" : "") + ")";
    GraphBuilder g(handle, name.c_str());
    if (backward)
      build_backward(g, s);
    else
      build_forward(g, s);
    Plan p;
    int64_t bytes = 0;
    p.plan = g.build_plan(&bytes);
    p.cudnn_bytes = align_up(static_cast<size_t>(bytes));
    p.total = p.cudnn_bytes;
    if (backward) {
      p.softmax_sum = p.total;
      p.total += align_up(size_t(B) * NH * T * sizeof(float));
      p.dq_accum = p.total;
      p.dq_accum_bytes = size_t(B) * NH * T * HS * sizeof(float);
      p.total += align_up(p.dq_accum_bytes);
    }
    if (s.masked && !full_lengths.count({B, T})) {
      int32_t* d = nullptr;
      FERRY_CUDA_CHECK(cudaMalloc(&d, size_t(B) * sizeof(int32_t)));
      const std::vector<int32_t> host(B, T);
      FERRY_CUDA_CHECK(cudaMemcpy(d, host.data(), size_t(B) * sizeof(int32_t), cudaMemcpyHostToDevice));
      full_lengths[{B, T}] = d;
    }
    return plans.emplace(s, std::move(p)).first->second;
  }

  void* workspace(const Plan& p, void* given, size_t given_bytes) {
    if (given) {
      FERRY_CUDA_REQUIRE(given_bytes >= p.total, "a workspace of the size *_workspace_bytes returned");
      return given;
    }
    if (own_workspace_bytes < p.total) {
      if (own_workspace) FERRY_CUDA_CHECK(cudaFree(own_workspace));
      own_workspace = nullptr;
      FERRY_CUDA_CHECK(cudaMalloc(&own_workspace, p.total));
      own_workspace_bytes = p.total;
    }
    return own_workspace;
  }

  void execute(const Plan& p, std::vector<int64_t>& uids, std::vector<void*>& ptrs, void* ws, cudaStream_t stream) {
    FERRY_CUDNN_CHECK(cudnnSetStream(handle, stream));
    Desc pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, static_cast<int64_t>(uids.size()), uids.data());
    pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, static_cast<int64_t>(ptrs.size()),
             ptrs.data());
    pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
    pack.finalize("variant pack");
    FERRY_CUDNN_CHECK(cudnnBackendExecute(handle, p.plan->get(), pack.get()));
  }

  // The tensors both directions share: scale, the mask constants and the lengths.
  void common_pointers(const Shape& s, float* scale, const int32_t* key_lengths, std::vector<int64_t>& uids,
                       std::vector<void*>& ptrs) {
    uids.push_back(kScale);
    ptrs.push_back(scale);
    if (s.causal) {
      uids.push_back(kNegInfCausal);
      ptrs.push_back(&neg_inf);
    }
    if (s.masked) {
      int32_t* full = full_lengths.at({s.B, s.T});
      uids.insert(uids.end(), {kNegInfPadding, kSeqQ, kSeqKV});
      ptrs.insert(ptrs.end(), {&neg_inf, full, const_cast<int32_t*>(key_lengths ? key_lengths : full)});
    }
  }
};

CudnnAttention::CudnnAttention() : impl_(std::make_unique<Impl>()) {
  const std::string why = cudnn_attention_unsupported_reason(0, true);
  if (!why.empty()) throw UserError("cuDNN attention: " + why);
  FERRY_CUDNN_CHECK(cudnnCreate(&impl_->handle));
}

CudnnAttention::~CudnnAttention() = default;

size_t CudnnAttention::cached_plans() const { return impl_->plans.size(); }

size_t CudnnAttention::forward_workspace_bytes(int B, int Tn, int NH, int HS, bool causal, bool padded) {
  return impl_->plan_for(B, Tn, NH, HS, causal, padded, false).total;
}

size_t CudnnAttention::backward_workspace_bytes(int B, int Tn, int NH, int HS, bool causal, bool padded) {
  return impl_->plan_for(B, Tn, NH, HS, causal, padded, true).total;
}

void CudnnAttention::forward(bf16* out, float* lse, const bf16* qkv, const int32_t* key_lengths, int B, int Tn,
                             int NH, int HS, bool causal, void* workspace, size_t workspace_bytes,
                             cudaStream_t stream) {
  const bool padded = key_lengths != nullptr;
  Plan& p = impl_->plan_for(B, Tn, NH, HS, causal, padded, false);
  const Shape s{B, Tn, NH, HS, causal, Impl::needs_masks(false, padded, Tn), false};
  void* ws = impl_->workspace(p, workspace, workspace_bytes);
  const size_t C = size_t(NH) * HS;
  float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  auto* base = const_cast<bf16*>(qkv);
  std::vector<int64_t> uids = {kQ, kK, kV, kO, kStats};
  std::vector<void*> ptrs = {base, base + C, base + 2 * C, out, lse};
  impl_->common_pointers(s, &scale, key_lengths, uids, ptrs);
  impl_->execute(p, uids, ptrs, ws, stream);
}

void CudnnAttention::backward(bf16* dqkv, const bf16* dout, const bf16* qkv, const bf16* out, const float* lse,
                              const int32_t* key_lengths, int B, int Tn, int NH, int HS, bool causal,
                              void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  const bool padded = key_lengths != nullptr;
  Plan& p = impl_->plan_for(B, Tn, NH, HS, causal, padded, true);
  const Shape s{B, Tn, NH, HS, causal, Impl::needs_masks(true, padded, Tn), true};
  auto* ws = static_cast<char*>(impl_->workspace(p, workspace, workspace_bytes));
  const size_t C = size_t(NH) * HS;
  float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  auto* base = const_cast<bf16*>(qkv);
  std::vector<int64_t> uids = {kQ, kK, kV, kO, kdO, kStats, kdQ, kdK, kdV, kSoftmaxSum, kdQAccum, kOne};
  std::vector<void*> ptrs = {base,
                             base + C,
                             base + 2 * C,
                             const_cast<bf16*>(out),
                             const_cast<bf16*>(dout),
                             const_cast<float*>(lse),
                             dqkv,
                             dqkv + C,
                             dqkv + 2 * C,
                             ws + p.softmax_sum,
                             ws + p.dq_accum,
                             &impl_->one};
  impl_->common_pointers(s, &scale, key_lengths, uids, ptrs);
  // cuDNN adds every key tile's dS·K into the fp32 dQ accumulator (with atomics): it must start at
  // zero on every call. Queued on the stream, so it is legal inside a captured CUDA graph too.
  FERRY_CUDA_CHECK(cudaMemsetAsync(ws + p.dq_accum, 0, p.dq_accum_bytes, stream));
  impl_->execute(p, uids, ptrs, ws, stream);
}

#endif  // FERRY_WITH_CUDNN

}  // namespace ferry::kernels::cuda
