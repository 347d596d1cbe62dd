// engine/op.cpp — the registry itself. Built-in ops register on first use (explicit calls, not
// static initializers, which a static library's linker would drop).
#include "engine/op.h"

#include <map>
#include <mutex>

#include "base/error.h"
#include "engine/ops/ops.h"

namespace ferry {

namespace {
std::map<std::string, OpDef>& table() {
  static std::map<std::string, OpDef> t;
  return t;
}
void ensure_builtins() {
  static std::once_flag once;
  std::call_once(once, [] { register_builtin_ops(); });
}
}  // namespace

void register_op(OpDef def) {
  FERRY_CHECK(!def.name.empty() && def.infer, "op definition incomplete");
  table()[def.name] = std::move(def);
}

void set_op_kernel(const std::string& op, Device device, KernelFn fn) {
  ensure_builtins();
  auto it = table().find(op);
  FERRY_CHECK(it != table().end(), "set_op_kernel: unknown op '", op, "'");
  (device == Device::CPU ? it->second.cpu : it->second.cuda) = std::move(fn);
}

const OpDef& op_def(const std::string& name) {
  ensure_builtins();
  auto it = table().find(name);
  FERRY_CHECK(it != table().end(), "unknown op '", name, "'");
  return it->second;
}

bool has_op(const std::string& name) {
  ensure_builtins();
  return table().count(name) > 0;
}

}  // namespace ferry
