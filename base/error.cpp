// base/error.cpp
#include "base/error.h"

namespace ferry {

void throw_internal(const char* file, int line, const std::string& what) {
  throw InternalError(str_cat(file, ":", line, ": ", what));
}

}  // namespace ferry
