// engine/finetune/model_file.cpp
#include "engine/finetune/model_file.h"

#include "engine/checkpoint/checkpoint.h"
#include "base/error.h"

namespace ferry {

namespace fs = std::filesystem;

const ModelFile::Entry* ModelFile::find(const std::string& name) const {
  for (const auto& e : params)
    if (e.name == name) return &e;
  return nullptr;
}

void save_model_file(const fs::path& file, const GptConfig& config, const nlohmann::json& meta, const Graph& g,
                     const std::vector<float>& flat) {
  FERRY_CHECK(flat.size() == static_cast<size_t>(g.param_count()), "save_model_file layout");
  std::error_code ec;
  if (file.has_parent_path()) fs::create_directories(file.parent_path(), ec);
  if (ec) user_error("model '", file.string(), "': its folder cannot be created: ", ec.message());
  Checkpoint ck;
  ck.model = config;
  for (const ParamInfo& p : g.params)
    ck.params.push_back({p.name, static_cast<uint64_t>(p.offset), static_cast<uint64_t>(p.numel)});
  ck.parameters = flat;
  ck.state = {{"finetune", meta}};
  write_checkpoint(file, ck);
}

fs::path resolve_model_path(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return path;
  if (fs::exists(path / kTaskModelFile, ec)) return path / kTaskModelFile;
  // A `ferry pretrain` run folder keeps its checkpoints in <out>/checkpoints/.
  auto found = list_checkpoints(path);
  if (found.empty() && fs::is_directory(path / "checkpoints", ec)) found = list_checkpoints(path / "checkpoints");
  if (found.empty())
    user_error("model '", path.string(), "': a folder with neither ", kTaskModelFile,
               " (ferry finetune) nor step_*.ckpt files (ferry pretrain, also under checkpoints/)");
  return found.back().second;
}

ModelFile load_model_file(const fs::path& path) {
  const fs::path file = resolve_model_path(path);
  return model_file_of(read_checkpoint(file), file);
}

ModelFile model_file_of(Checkpoint ck, const fs::path& path) {
  ModelFile m;
  m.path = path;
  m.config = ck.model;
  m.step = ck.step;
  if (ck.state.is_object() && ck.state.contains("finetune")) m.meta = ck.state["finetune"];
  for (const auto& p : ck.params)
    m.params.push_back({p.name, static_cast<size_t>(p.offset), static_cast<size_t>(p.numel)});
  m.data = std::move(ck.parameters);
  return m;
}

int load_params_by_name(const ModelFile& file, const Graph& g, std::vector<float>& flat) {
  FERRY_CHECK(flat.size() == static_cast<size_t>(g.param_count()), "load_params_by_name layout");
  int loaded = 0;
  for (const ParamInfo& p : g.params) {
    const ModelFile::Entry* e = file.find(p.name);
    if (!e) continue;
    if (e->numel != static_cast<size_t>(p.numel))
      user_error("model ", file.path.string(), ": parameter ", p.name, " holds ", e->numel,
                 " values, this model needs ", shape_str(logical_shape(g, p)));
    std::copy_n(file.data.begin() + static_cast<std::ptrdiff_t>(e->offset), p.numel,
                flat.begin() + static_cast<std::ptrdiff_t>(p.offset));
    ++loaded;
  }
  return loaded;
}

}  // namespace ferry
