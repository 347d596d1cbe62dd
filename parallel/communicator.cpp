// parallel/communicator.cpp — what all communicators share: element types and argument checks.
#include "parallel/communicator.h"

#include "base/error.h"

namespace ferry::parallel {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return sizeof(float);
    case DType::f64: return sizeof(double);
    case DType::i32: return sizeof(int32_t);
  }
  FERRY_CHECK(false, "unknown DType ", static_cast<int>(t));
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::i32: return "i32";
  }
  return "?";
}

const char* reduce_op_name(ReduceOp op) { return op == ReduceOp::sum ? "sum" : "max"; }

void Communicator::check_blocks(size_t whole, size_t block) const {
  FERRY_CHECK(whole == block * static_cast<size_t>(size()), "buffer of ", whole, " elements is not ", size(),
              " blocks of ", block);
}

void Communicator::check_peer(int peer, const char* what) const {
  FERRY_CHECK(peer >= 0 && peer < size(), what, ": rank ", peer, " is outside a communicator of ", size());
}

}  // namespace ferry::parallel
