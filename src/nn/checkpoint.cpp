#include "mtrec/nn/checkpoint.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "mtrec/core/check.h"
#include "mtrec/core/head.h"
#include "mtrec/core/io.h"

namespace mtrec {
namespace {

constexpr char kMagic[8] = {'M', 'T', 'R', 'E', 'C', 'K', 'P', 'T'};
constexpr uint32_t kVersion = 1;

template <typename T>
void put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}
template <typename T>
T get(std::string_view in, size_t at) {
  T v;
  std::memcpy(&v, in.data() + at, sizeof(T));
  return v;
}

std::string dtype_name(c10::ScalarType t) {
  switch (t) {
    case c10::kFloat:
      return "f32";
    case c10::kDouble:
      return "f64";
    case c10::kLong:
      return "i64";
    case c10::kInt:
      return "i32";
    case c10::kByte:
      return "u8";
    case c10::kBool:
      return "b8";
    default:
      MTREC_CHECK(false, "checkpoint: unsupported tensor dtype ", c10::toString(t));
  }
  return "";
}
c10::ScalarType dtype_of(const std::string& name, const std::string& file) {
  if (name == "f32") return c10::kFloat;
  if (name == "f64") return c10::kDouble;
  if (name == "i64") return c10::kLong;
  if (name == "i32") return c10::kInt;
  if (name == "u8") return c10::kByte;
  if (name == "b8") return c10::kBool;
  MTREC_CHECK(false, "checkpoint '", file, "': unknown tensor dtype '", name, "'");
  return c10::kFloat;
}

nlohmann::json id_map_json(const IdMap& m) { return m.raws(); }
IdMap id_map_from(const nlohmann::json& j) {
  IdMap m;
  for (const auto& s : j) m.intern(s.get<std::string>());
  return m;
}

}  // namespace

at::Tensor bytes_to_tensor(std::string_view bytes) {
  at::Tensor t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kByte);
  if (!bytes.empty()) std::memcpy(t.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  return t;
}

std::string tensor_to_bytes(const at::Tensor& t) {
  MTREC_CHECK(t.scalar_type() == c10::kByte && t.dim() == 1, "tensor_to_bytes: expected a 1-D uint8 tensor, got ",
              c10::toString(t.scalar_type()), " with ", t.dim(), " dimensions");
  at::Tensor c = t.to(torch::kCPU).contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), static_cast<size_t>(c.numel()));
}

uint64_t fnv1a64(std::string_view data) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

const at::Tensor& Checkpoint::tensor(const std::string& name) const {
  std::string names;
  for (const auto& [n, t] : tensors) {
    if (n == name) return t;
    names += (names.empty() ? "" : ", ") + n;
  }
  MTREC_CHECK(false, "checkpoint '", path, "' (task ", task, ") has no tensor '", name, "'; it has: ", names);
  return tensors.front().second;  // unreachable
}

std::string serialize_checkpoint(const Checkpoint& ck) {
  nlohmann::json header;
  header["task"] = ck.task;
  header["config"] = ck.config_json.empty() ? nlohmann::json::object() : nlohmann::json::parse(ck.config_json);
  header["users"] = id_map_json(ck.users);
  header["items"] = id_map_json(ck.items);
  header["scenarios"] = id_map_json(ck.scenarios);
  std::string payload;
  nlohmann::json table = nlohmann::json::array();
  for (const auto& [name, t] : ck.tensors) {
    at::Tensor c = t.detach().to(c10::kCPU).contiguous();
    size_t bytes = static_cast<size_t>(c.numel()) * c.element_size();
    table.push_back({{"name", name},
                     {"dtype", dtype_name(c.scalar_type())},
                     {"shape", c.sizes().vec()},
                     {"offset", payload.size()},
                     {"bytes", bytes}});
    payload.append(static_cast<const char*>(c.data_ptr()), bytes);
  }
  header["tensors"] = table;
  nlohmann::json golden = nlohmann::json::array();
  for (const auto& g : ck.golden) golden.push_back({{"input", g.input}, {"score", g.score}});
  header["golden"] = golden;
  if (!ck.trainer_json.empty()) header["trainer"] = nlohmann::json::parse(ck.trainer_json);
  std::string head = header.dump();

  std::string out(kMagic, sizeof(kMagic));
  put<uint32_t>(out, kVersion);
  put<uint64_t>(out, head.size());
  out += head;
  out += payload;
  put<uint64_t>(out, fnv1a64(out));
  return out;
}

Checkpoint deserialize_checkpoint(std::string_view in, const std::string& file) {
  const size_t fixed = sizeof(kMagic) + 4 + 8;
  MTREC_CHECK(in.size() >= fixed + 8 && std::memcmp(in.data(), kMagic, sizeof(kMagic)) == 0, "'", file,
              "' is not an mtrec checkpoint (bad magic or only ", in.size(), " bytes)");
  uint64_t stored = get<uint64_t>(in, in.size() - 8);
  uint64_t actual = fnv1a64(in.substr(0, in.size() - 8));
  MTREC_CHECK(stored == actual, "checkpoint '", file, "' is corrupted: checksum mismatch (stored ", std::hex, stored,
              ", computed ", actual, std::dec, "); the file was truncated or altered");
  uint32_t version = get<uint32_t>(in, sizeof(kMagic));
  MTREC_CHECK(version == kVersion, "checkpoint '", file, "' has format version ", version, ", this build reads ",
              kVersion, " only: it was written by another version of mtrec; load it with that version, or retrain");
  uint64_t head_len = get<uint64_t>(in, sizeof(kMagic) + 4);
  MTREC_CHECK(fixed + head_len + 8 <= in.size(), "checkpoint '", file, "': header length ", head_len,
              " exceeds the file size ", in.size());
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(in.substr(fixed, head_len));
  } catch (const std::exception& e) {
    MTREC_CHECK(false, "checkpoint '", file, "': unreadable header: ", e.what());
  }
  std::string_view payload = in.substr(fixed + head_len, in.size() - 8 - fixed - head_len);

  Checkpoint ck;
  ck.path = file;
  try {
    ck.task = header.at("task").get<std::string>();
    ck.config_json = header.at("config").dump();
    ck.users = id_map_from(header.at("users"));
    ck.items = id_map_from(header.at("items"));
    ck.scenarios = id_map_from(header.at("scenarios"));
    for (const auto& e : header.at("tensors")) {
      auto name = e.at("name").get<std::string>();
      auto dtype = dtype_of(e.at("dtype").get<std::string>(), file);
      auto shape = e.at("shape").get<std::vector<int64_t>>();
      auto offset = e.at("offset").get<size_t>(), bytes = e.at("bytes").get<size_t>();
      at::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
      MTREC_CHECK(offset + bytes <= payload.size() && bytes == static_cast<size_t>(t.numel()) * t.element_size(),
                  "checkpoint '", file, "': tensor '", name, "' (", bytes, " bytes at ", offset,
                  ") does not fit its shape or the payload of ", payload.size(), " bytes");
      if (bytes > 0) std::memcpy(t.data_ptr(), payload.data() + offset, bytes);  // empty tensors have no data
      ck.tensors.emplace_back(std::move(name), std::move(t));
    }
    for (const auto& g : header.at("golden"))
      ck.golden.push_back({g.at("input").get<std::vector<int64_t>>(), g.at("score").get<float>()});
    if (header.contains("trainer")) ck.trainer_json = header.at("trainer").dump();
  } catch (const nlohmann::json::exception& e) {
    MTREC_CHECK(false, "checkpoint '", file, "': malformed header: ", e.what());
  }
  return ck;
}

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint) {
  write_file_atomic(path, serialize_checkpoint(checkpoint));
}

Checkpoint load_checkpoint(const std::string& path) { return deserialize_checkpoint(read_file(path), path); }

void add_keyed_states(Checkpoint& ck, const std::string& prefix,
                      const std::map<int, const std::vector<std::pair<std::string, at::Tensor>>*>& states) {
  for (const auto& [key, st] : states)
    for (const auto& [name, x] : *st) ck.tensors.emplace_back(prefix + std::to_string(key) + "/" + name, x);
}

std::map<int, std::shared_ptr<std::vector<std::pair<std::string, at::Tensor>>>> take_keyed_states(
    std::vector<std::pair<std::string, at::Tensor>>& tensors, const std::string& prefix) {
  std::map<int, std::shared_ptr<std::vector<std::pair<std::string, at::Tensor>>>> states;
  std::vector<std::pair<std::string, at::Tensor>> rest;
  for (auto& [name, x] : tensors) {
    const auto slash = name.find('/', prefix.size());
    if (name.rfind(prefix, 0) != 0 || slash == std::string::npos) {
      rest.emplace_back(std::move(name), std::move(x));
      continue;
    }
    const std::string digits = name.substr(prefix.size(), slash - prefix.size());
    MTREC_CHECK(!digits.empty() && digits.size() <= 9 &&
                    std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }),
                "checkpoint tensor '", name, "': no state number after '", prefix, "'");
    const int key = std::stoi(digits);
    auto& st = states[key];
    if (!st) st = std::make_shared<std::vector<std::pair<std::string, at::Tensor>>>();
    st->emplace_back(name.substr(slash + 1), std::move(x));
  }
  tensors = std::move(rest);
  return states;
}

std::vector<std::pair<std::string, at::Tensor>> module_state(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) out.emplace_back(p.key(), p.value().detach());
  for (const auto& b : module.named_buffers(/*recurse=*/true)) out.emplace_back(b.key(), b.value().detach());
  return out;
}

uint64_t state_checksum(const torch::nn::Module& module) {
  std::string bytes;
  for (const auto& [name, t] : module_state(module)) {
    at::Tensor c = t.detach().to(c10::kCPU).contiguous();
    bytes += name;
    for (int64_t d : c.sizes()) put<int64_t>(bytes, d);
    bytes.append(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel()) * c.element_size());
  }
  return fnv1a64(bytes);
}

void load_module_state(torch::nn::Module& module, const Checkpoint& ck) {
  torch::NoGradGuard no_grad;
  auto assign = [&](const std::string& name, at::Tensor& dst) {
    const at::Tensor& src = ck.tensor(name);
    MTREC_CHECK(src.sizes() == dst.sizes(), "checkpoint '", ck.path, "': tensor '", name, "' has shape ", src.sizes(),
                ", the model expects ", dst.sizes());
    dst.copy_(src.to(dst.device(), dst.scalar_type()));
  };
  for (auto& p : module.named_parameters(true)) assign(p.key(), p.value());
  for (auto& b : module.named_buffers(true)) assign(b.key(), b.value());
}

std::vector<GoldenPair> make_golden(const std::vector<std::vector<int64_t>>& inputs, const GoldenScoreFn& score) {
  std::vector<float> s = score(inputs);
  MTREC_CHECK(s.size() == inputs.size(), "golden scorer returned ", s.size(), " scores for ", inputs.size(), " inputs");
  std::vector<GoldenPair> out;
  for (size_t i = 0; i < inputs.size(); ++i) {
    MTREC_CHECK(std::isfinite(s[i]), "the model scores golden input ", i, " as ", s[i],
                "; a model with non-finite outputs is not saved (training diverged?)");
    out.push_back({inputs[i], s[i]});
  }
  return out;
}

void verify_golden(const Checkpoint& ck, const GoldenScoreFn& score, double tolerance) {
  if (ck.golden.empty()) return;
  std::vector<std::vector<int64_t>> inputs;
  for (const auto& g : ck.golden) inputs.push_back(g.input);
  std::vector<float> s = score(inputs);
  MTREC_CHECK(s.size() == inputs.size(), "golden scorer returned ", s.size(), " scores for ", inputs.size(), " inputs");
  for (size_t i = 0; i < s.size(); ++i) {
    double want = ck.golden[i].score, got = s[i];
    if (std::fabs(want - got) <= tolerance * (1.0 + std::fabs(want))) continue;
    std::string in;
    for (auto v : inputs[i]) in += (in.empty() ? "" : ",") + std::to_string(v);
    MTREC_CHECK(false, "checkpoint '", ck.path, "' (task ", ck.task, ") fails its golden check: input [", in,
                "] scored ", got, " but ", want, " when saved; the model code or library changed since");
  }
}

bool is_training_checkpoint(const Checkpoint& ck) { return !ck.trainer_json.empty(); }

std::string describe_checkpoint(const Checkpoint& ck) {
  const std::string task = ck.task.empty() ? "none" : ck.task;
  if (!is_training_checkpoint(ck)) return "a model export (task " + task + ")";
  std::string where;
  try {
    const auto state = nlohmann::json::parse(ck.trainer_json);
    const auto config = ck.config_json.empty() ? nlohmann::json::object() : nlohmann::json::parse(ck.config_json);
    if (config.contains("stage") && config["stage"].contains("name"))
      where += ", stage " + config["stage"]["name"].get<std::string>();
    if (state.contains("epoch")) where += ", epoch " + std::to_string(state["epoch"].get<int64_t>());
    if (state.contains("step")) where += ", step " + std::to_string(state["step"].get<int64_t>());
  } catch (const std::exception&) {
    where += ", unreadable training state";
  }
  return "a training checkpoint (task " + task + where + ")";
}

std::string model_config(const Checkpoint& ck) {
  if (!is_training_checkpoint(ck)) return ck.config_json;
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(ck.config_json);
  } catch (const std::exception& e) {
    MTREC_FAIL("checkpoint '", ck.path, "' (", describe_checkpoint(ck), "): unreadable configuration: ", e.what());
  }
  MTREC_CHECK(config.contains("model") && config["model"].is_object(), "checkpoint '", ck.path, "' is ",
              describe_checkpoint(ck), " without the model's configuration (no \"model\" in its config)");
  return config["model"].dump();
}

void require_task(const Checkpoint& ck, const std::string& task) {
  MTREC_CHECK(canonical_task_name(ck.task) == canonical_task_name(task), "checkpoint '", ck.path, "' is ",
              describe_checkpoint(ck), "; expected a ", task, " model");
}

}  // namespace mtrec
