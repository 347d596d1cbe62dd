// engine/finetune/model_file.cpp
#include "engine/finetune/model_file.h"

#include <fstream>

#include "engine/error.h"

namespace ferry {

namespace fs = std::filesystem;

const ModelFile::Entry* ModelFile::find(const std::string& name) const {
  for (const auto& e : params)
    if (e.name == name) return &e;
  return nullptr;
}

void save_model_file(const fs::path& dir, const nlohmann::json& meta, const Graph& g, const std::vector<float>& flat) {
  FERRY_CHECK(flat.size() == static_cast<size_t>(g.param_count()), "save_model_file layout");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) user_error("model folder '", dir.string(), "' cannot be created: ", ec.message());
  nlohmann::json j = {{"format", "ferry-model-1"}, {"meta", meta}, {"params", nlohmann::json::array()}};
  for (const ParamInfo& p : g.params)
    j["params"].push_back({{"name", p.name}, {"shape", g.values[p.value].shape}, {"offset", p.offset}});
  {
    std::ofstream bin(dir / "params.bin.tmp", std::ios::binary | std::ios::trunc);
    bin.write(reinterpret_cast<const char*>(flat.data()), static_cast<std::streamsize>(flat.size() * sizeof(float)));
    if (!bin) user_error("model folder '", dir.string(), "': cannot write params.bin");
  }
  {
    std::ofstream js(dir / "model.json.tmp", std::ios::trunc);
    js << j.dump(1) << "\n";
    if (!js) user_error("model folder '", dir.string(), "': cannot write model.json");
  }
  fs::rename(dir / "params.bin.tmp", dir / "params.bin");
  fs::rename(dir / "model.json.tmp", dir / "model.json");
}

ModelFile load_model_file(const fs::path& dir) {
  ModelFile m;
  std::ifstream js(dir / "model.json");
  if (!js) user_error("model '", dir.string(), "': no model.json (a folder written by ferry finetune)");
  nlohmann::json j;
  try {
    js >> j;
  } catch (const std::exception& e) {
    user_error("model '", dir.string(), "': model.json is not JSON: ", e.what());
  }
  if (!j.is_object() || j.value("format", "") != "ferry-model-1" || !j.contains("params") || !j["params"].is_array())
    user_error("model '", dir.string(), "': model.json is not a ferry-model-1 file");
  m.meta = j.value("meta", nlohmann::json::object());
  size_t total = 0;
  try {
    for (const auto& e : j["params"]) {
      ModelFile::Entry en{e.at("name").get<std::string>(), e.at("shape").get<Shape>(), e.at("offset").get<size_t>()};
      total = std::max(total, en.offset + static_cast<size_t>(numel(en.shape)));
      m.params.push_back(std::move(en));
    }
  } catch (const std::exception& e) {
    user_error("model '", dir.string(), "': bad parameter entry: ", e.what());
  }
  std::ifstream bin(dir / "params.bin", std::ios::binary | std::ios::ate);
  if (!bin) user_error("model '", dir.string(), "': no params.bin");
  const auto bytes = static_cast<size_t>(bin.tellg());
  if (bytes != total * sizeof(float))
    user_error("model '", dir.string(), "': params.bin holds ", bytes, " bytes, model.json describes ",
               total * sizeof(float));
  bin.seekg(0);
  m.data.resize(total);
  bin.read(reinterpret_cast<char*>(m.data.data()), static_cast<std::streamsize>(bytes));
  return m;
}

int load_params_by_name(const ModelFile& file, const Graph& g, std::vector<float>& flat) {
  FERRY_CHECK(flat.size() == static_cast<size_t>(g.param_count()), "load_params_by_name layout");
  int loaded = 0;
  for (const ParamInfo& p : g.params) {
    const ModelFile::Entry* e = file.find(p.name);
    if (!e) continue;
    if (e->shape != g.values[p.value].shape)
      user_error("model parameter ", p.name, ": stored ", shape_str(e->shape), ", this model needs ",
                 shape_str(g.values[p.value].shape));
    std::copy(file.data.begin() + static_cast<std::ptrdiff_t>(e->offset),
              file.data.begin() + static_cast<std::ptrdiff_t>(e->offset + p.numel), flat.begin() + static_cast<std::ptrdiff_t>(p.offset));
    ++loaded;
  }
  return loaded;
}

}  // namespace ferry
