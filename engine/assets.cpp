// engine/assets.cpp
#include "engine/assets.h"

#include <cstdlib>

namespace ferry {

std::filesystem::path assets_dir() {
  if (const char* env = std::getenv("FERRY_ASSETS"); env && *env) return env;
  return std::filesystem::path(FERRY_DEFAULT_ASSETS);
}

}  // namespace ferry
