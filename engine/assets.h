// engine/assets.h — where fetched assets (GPT-2 vocabulary, npm corpora) live.
// $FERRY_ASSETS when set, else <source tree>/data/cache, filled by scripts/fetch_assets.sh at set-up.
#pragma once
#include <filesystem>

namespace ferry {

std::filesystem::path assets_dir();

}  // namespace ferry
