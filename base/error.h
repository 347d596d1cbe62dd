// base/error.h — the one error path, shared by every room (kernels, engine, parallel, tools).
//
// UserError: bad input from a person (config, flag, data file, checkpoint). The command line prints
// its message as one line and exits with status 2.
// FERRY_CHECK: an internal invariant; failing it is a bug in ferry, reported with file and line.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace ferry {

class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& msg) : std::runtime_error(msg) {}
};

class InternalError : public std::runtime_error {
 public:
  explicit InternalError(const std::string& msg) : std::runtime_error(msg) {}
};

[[noreturn]] void throw_internal(const char* file, int line, const std::string& what);

namespace detail {
inline void append(std::ostringstream&) {}
template <typename A, typename... Rest>
void append(std::ostringstream& os, const A& a, const Rest&... rest) {
  os << a;
  append(os, rest...);
}
}  // namespace detail

template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  return os.str();
}

template <typename... Args>
[[noreturn]] void user_error(const Args&... args) {
  throw UserError(str_cat(args...));
}

}  // namespace ferry

#define FERRY_CHECK(cond, ...)                                                                   \
  do {                                                                                           \
    if (!(cond)) ::ferry::throw_internal(__FILE__, __LINE__, ::ferry::str_cat("check failed: " #cond " ", ##__VA_ARGS__)); \
  } while (0)
