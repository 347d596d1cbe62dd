// engine/executor.cpp
#include "engine/executor.h"

#include "base/error.h"
#include "engine/op.h"
#include "kernels/dtype.h"

namespace ferry {

Executor::Executor(const Graph& g, Backend& backend, size_t extra_bytes, size_t memory_limit)
    : g_(g), backend_(backend), plan_(plan_memory(g)) {
  if (!g.params.empty()) param_dtype_ = g.values[g.params[0].value].dtype;
  for (const auto& p : g.params)
    FERRY_CHECK(g.values[p.value].dtype == param_dtype_, "all parameters share one dtype");
  const size_t need = plan_.arena_bytes + plan_.param_bytes + plan_.param_bytes + extra_bytes;
  const size_t have = memory_limit ? memory_limit : backend.capacity();
  if (need > have)
    user_error("the step needs ", format_bytes(double(need)), " on the ", backend.name(), " backend (activations ",
               format_bytes(double(plan_.arena_bytes)), ", parameters and gradients ",
               format_bytes(2.0 * double(plan_.param_bytes)), ", optimizer ", format_bytes(double(extra_bytes)),
               ") but only ", format_bytes(double(have)), " is available: lower batch_size or seq_len");
  arena_ = DeviceBuffer(backend, plan_.arena_bytes);
  params_ = DeviceBuffer(backend, plan_.param_bytes);
  grads_ = DeviceBuffer(backend, plan_.param_bytes);
  if (plan_.param_bytes) {
    backend.zero(params_.data(), plan_.param_bytes);
    backend.zero(grads_.data(), plan_.param_bytes);
  }
}

Tensor Executor::tensor(int value) const {
  if (value < 0) return {};
  const Value& v = g_.values[value];
  Tensor t;
  t.shape = v.shape;
  t.dtype = v.dtype;
  t.device = backend_.device();
  switch (v.role) {
    case ValueRole::Param:
      t.data = static_cast<char*>(params_.data()) + g_.params[v.param].storage * dtype_size(param_dtype_);
      break;
    case ValueRole::ParamGrad:
      t.data = static_cast<char*>(grads_.data()) + g_.params[v.param].storage * dtype_size(param_dtype_);
      break;
    default:
      FERRY_CHECK(plan_.offset[value] >= 0, "value ", v.name, " has no memory");
      t.data = static_cast<char*>(arena_.data()) + plan_.offset[value];
  }
  return t;
}

void Executor::set_input(int value, const void* host, size_t bytes) {
  Tensor t = tensor(value);
  FERRY_CHECK(bytes == t.nbytes(), "input ", g_.values[value].name, ": ", bytes, " bytes for ", t.nbytes());
  backend_.upload(t.data, host, bytes);
}

void Executor::read(int value, void* host, size_t bytes) const {
  Tensor t = tensor(value);
  FERRY_CHECK(bytes == t.nbytes(), "read ", g_.values[value].name);
  backend_.download(host, t.data, bytes);
}

double Executor::read_scalar(int value) const {
  const Value& v = g_.values[value];
  if (v.dtype == DType::F64) {
    double x;
    read(value, &x, sizeof x);
    return x;
  }
  FERRY_CHECK(v.dtype == DType::F32, "read_scalar on ", dtype_name(v.dtype));
  float x;
  read(value, &x, sizeof x);
  return x;
}

void Executor::forward(bool training) { run_nodes(0, g_.num_forward_nodes, training); }
void Executor::backward() { run_nodes(g_.num_forward_nodes, static_cast<int>(g_.nodes.size()), true); }

void Executor::zero_grads() {
  if (plan_.param_bytes) backend_.zero(grads_.data(), plan_.param_bytes);
}

Tensor Executor::params() const {
  return Tensor{params_.data(), {g_.storage_size()}, param_dtype_, backend_.device()};
}
Tensor Executor::grads() const { return Tensor{grads_.data(), {g_.storage_size()}, param_dtype_, backend_.device()}; }

void Executor::set_parameters(const std::vector<float>& logical) {
  FERRY_CHECK(logical.size() == static_cast<size_t>(g_.param_count()), "set_parameters: ", logical.size(),
              " values for ", g_.param_count(), " parameters");
  const size_t n = static_cast<size_t>(g_.storage_size());
  switch (param_dtype_) {
    case DType::F32: {
      std::vector<float> storage(n, 0.0f);
      scatter_to_storage(g_, logical.data(), storage.data());
      backend_.upload(params_.data(), storage.data(), n * sizeof(float));
      break;
    }
    case DType::F64: {
      std::vector<double> storage(n, 0.0), wide(logical.begin(), logical.end());
      scatter_to_storage(g_, wide.data(), storage.data());
      backend_.upload(params_.data(), storage.data(), n * sizeof(double));
      break;
    }
    case DType::BF16: {  // a device's working copy: rounded once, to nearest even
      std::vector<bf16> storage(n, float_to_bf16(0.0f)), rounded(logical.size());
      for (size_t i = 0; i < logical.size(); ++i) rounded[i] = float_to_bf16(logical[i]);
      scatter_to_storage(g_, rounded.data(), storage.data());
      backend_.upload(params_.data(), storage.data(), n * sizeof(bf16));
      break;
    }
    default:
      FERRY_CHECK(false, "parameters in ", dtype_name(param_dtype_));
  }
}

std::vector<float> Executor::parameters() const {
  const size_t n = static_cast<size_t>(g_.storage_size());
  std::vector<float> logical(static_cast<size_t>(g_.param_count()));
  switch (param_dtype_) {
    case DType::F32: {
      std::vector<float> storage(n);
      backend_.download(storage.data(), params_.data(), n * sizeof(float));
      gather_from_storage(g_, storage.data(), logical.data());
      break;
    }
    case DType::F64: {
      std::vector<double> storage(n), wide(logical.size());
      backend_.download(storage.data(), params_.data(), n * sizeof(double));
      gather_from_storage(g_, storage.data(), wide.data());
      std::copy(wide.begin(), wide.end(), logical.begin());
      break;
    }
    case DType::BF16: {
      std::vector<bf16> storage(n), narrow(logical.size());
      backend_.download(storage.data(), params_.data(), n * sizeof(bf16));
      gather_from_storage(g_, storage.data(), narrow.data());
      for (size_t i = 0; i < narrow.size(); ++i) logical[i] = bf16_to_float(narrow[i]);
      break;
    }
    default:
      FERRY_CHECK(false, "parameters in ", dtype_name(param_dtype_));
  }
  return logical;
}

void Executor::run_nodes(int begin, int end, bool training) {
  for (int i = begin; i < end; ++i) {
    const Node& n = g_.nodes[i];
    const OpDef& def = op_def(n.op);
    const KernelFn& fn = backend_.device() == Device::CPU ? def.cpu : def.cuda;
    FERRY_CHECK(fn, "op ", n.op, " has no ", device_name(backend_.device()), " kernel");
    KernelCall call{n, {}, {}, backend_, training};
    call.in.reserve(n.in.size());
    for (int v : n.in) call.in.push_back(tensor(v));
    for (int v : n.out) call.out.push_back(tensor(v));
    fn(call);
    if (after_node_) after_node_(i);
  }
}

void Executor::swap_arena(DeviceBuffer& other) {
  FERRY_CHECK(other.size() == arena_.size(), "swap_arena: ", other.size(), " bytes for an arena of ", arena_.size());
  std::swap(arena_, other);
}

}  // namespace ferry
