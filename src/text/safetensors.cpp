// safetensors reader and writer (format: https://github.com/huggingface/safetensors).
#include "mtrec/text/safetensors.h"

#include "mtrec/core/check.h"
#include "mtrec/core/io.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors stores little-endian data; this code copies bytes as is");

namespace mtrec {
namespace {

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
};
constexpr DtypeInfo kDtypes[] = {
    {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16}, {"F64", at::kDouble}, {"I64", at::kLong},
    {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},       {"U8", at::kByte},    {"BOOL", at::kBool},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

std::string supported_dtypes() {
  std::string s;
  for (const auto& d : kDtypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

// A header larger than this is not a tensor index but a corrupt length field.
constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;

struct Parsed {
  std::vector<SafetensorsInfo> infos;  // sorted by begin
  uint64_t data_start = 0;
};

Parsed parse_header(std::ifstream& in, const std::string& path) {
  MTREC_CHECK(in.good(), "cannot open '", path, "': ", std::strerror(errno));
  in.seekg(0, std::ios::end);
  const auto file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  if (file_size < 8)
    throw DataError(
        path, 0, "header",
        "file has " + std::to_string(file_size) + " bytes, fewer than the 8-byte header length (truncated?)");
  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > file_size - 8 || header_len > kMaxHeaderBytes)
    throw DataError(path, 0, "header",
                    "header length " + std::to_string(header_len) + " exceeds the " + std::to_string(file_size - 8) +
                        " bytes after the length field (truncated or not safetensors)");
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  MTREC_CHECK(in.good(), "error reading the header of '", path, "'");

  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(path, 0, "header", std::string("header is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw DataError(path, 0, "header", "header JSON is not an object");

  Parsed p;
  p.data_start = 8 + header_len;
  const uint64_t data_size = file_size - p.data_start;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") continue;
    auto fail = [&](const std::string& msg) { throw DataError(path, 0, name, msg); };
    const auto& e = it.value();
    if (!e.is_object()) fail("header entry is not an object");
    if (!e.contains("dtype") || !e["dtype"].is_string()) fail("missing string \"dtype\"");
    if (!e.contains("shape") || !e["shape"].is_array()) fail("missing array \"shape\"");
    if (!e.contains("data_offsets") || !e["data_offsets"].is_array() || e["data_offsets"].size() != 2)
      fail("missing \"data_offsets\" [begin, end]");
    SafetensorsInfo info;
    info.name = name;
    info.dtype = e["dtype"].get<std::string>();
    const DtypeInfo* d = find_dtype(info.dtype);
    if (d == nullptr) fail("unsupported dtype \"" + info.dtype + "\" (supported: " + supported_dtypes() + ")");
    uint64_t numel = 1;
    for (const auto& dim : e["shape"]) {
      if (!dim.is_number_unsigned()) fail("shape " + e["shape"].dump() + " has a non-integer or negative dimension");
      const auto v = dim.get<uint64_t>();
      if (v > (uint64_t{1} << 40)) fail("shape " + e["shape"].dump() + " has an implausible dimension");
      numel *= v;
      info.shape.push_back(static_cast<int64_t>(v));
    }
    for (const auto& o : e["data_offsets"])
      if (!o.is_number_unsigned()) fail("data_offsets " + e["data_offsets"].dump() + " are not non-negative integers");
    const auto begin = e["data_offsets"][0].get<uint64_t>();
    const auto end = e["data_offsets"][1].get<uint64_t>();
    if (begin > end) fail("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] are reversed");
    if (end > data_size)
      fail("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] run past the " +
           std::to_string(data_size) + "-byte data section (truncated file?)");
    const uint64_t expect = numel * c10::elementSize(d->type);
    if (end - begin != expect)
      fail("data_offsets span " + std::to_string(end - begin) + " bytes but shape " + e["shape"].dump() + " of " +
           info.dtype + " needs " + std::to_string(expect));
    info.begin = static_cast<int64_t>(begin);
    info.end = static_cast<int64_t>(end);
    p.infos.push_back(std::move(info));
  }
  std::sort(p.infos.begin(), p.infos.end(), [](const SafetensorsInfo& a, const SafetensorsInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < p.infos.size(); ++i)
    if (p.infos[i].begin < p.infos[i - 1].end)
      throw DataError(path, 0, p.infos[i].name, "data_offsets overlap those of tensor '" + p.infos[i - 1].name + "'");
  return p;
}

const char* dtype_name(at::ScalarType t, const std::string& tensor) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.name;
  MTREC_CHECK(false, "tensor '", tensor, "' has dtype ", c10::toString(t),
              ", which safetensors writing does not support (", supported_dtypes(), ")");
  return nullptr;
}

// Converts 16-bit floats to float32 with a plain loop: exact, and faster than Tensor::to on CPU
// in LibTorch 1.13.
void half_to_float(const uint16_t* src, float* dst, int64_t n, bool bf16) {
  if (!bf16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = c10::detail::fp16_ieee_to_fp32_value(src[i]);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits = static_cast<uint32_t>(src[i]) << 16;  // bfloat16 is the top half of a float32
    std::memcpy(dst + i, &bits, 4);
  }
}

// Reads a 16-bit float tensor as float32 through a small buffer: allocating (and page-faulting)
// a full-size half copy costs more than the conversion itself.
void read_half_as_float(std::ifstream& in, float* dst, int64_t n, bool bf16) {
  constexpr int64_t kChunk = int64_t{1} << 18;
  std::vector<uint16_t> buf(static_cast<size_t>(std::min(n, kChunk)));
  for (int64_t done = 0; done < n;) {
    const int64_t m = std::min(kChunk, n - done);
    in.read(reinterpret_cast<char*>(buf.data()), m * 2);
    if (!in.good()) return;  // the caller reports it
    half_to_float(buf.data(), dst + done, m, bf16);
    done += m;
  }
}

}  // namespace

std::vector<SafetensorsInfo> read_safetensors_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return parse_header(in, path).infos;
}

std::vector<std::pair<std::string, at::Tensor>> read_safetensors_ordered(const std::string& path,
                                                                         const SafetensorsReadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  Parsed p = parse_header(in, path);
  std::vector<std::pair<std::string, at::Tensor>> out;
  out.reserve(p.infos.size());
  for (const auto& info : p.infos) {
    const at::ScalarType stored = find_dtype(info.dtype)->type;
    const bool widen_half = !options.keep_dtype() && (stored == at::kHalf || stored == at::kBFloat16);
    // Read straight into the tensor's storage: no second copy of a large checkpoint.
    at::Tensor t = torch::empty(info.shape, torch::TensorOptions().dtype(widen_half ? at::kFloat : stored));
    if (info.end > info.begin) {  // an empty tensor may have no storage to read into
      in.seekg(static_cast<std::streamoff>(p.data_start + info.begin));
      if (widen_half)
        read_half_as_float(in, t.data_ptr<float>(), t.numel(), stored == at::kBFloat16);
      else
        in.read(static_cast<char*>(t.data_ptr()), info.end - info.begin);
      if (!in.good()) throw DataError(path, 0, info.name, "error reading the tensor's bytes");
    }
    if (!options.keep_dtype() && !widen_half) {
      if (at::isFloatingType(stored) && stored != at::kFloat)
        t = t.to(at::kFloat);
      else if (!at::isFloatingType(stored) && stored != at::kLong)
        t = t.to(at::kLong);
    }
    out.emplace_back(info.name, std::move(t));
  }
  return out;
}

std::map<std::string, at::Tensor> read_safetensors(const std::string& path, const SafetensorsReadOptions& options) {
  std::map<std::string, at::Tensor> out;
  for (auto& [name, t] : read_safetensors_ordered(path, options)) out.emplace(name, std::move(t));
  return out;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::vector<at::Tensor> data;
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    MTREC_CHECK(!name.empty() && name != "__metadata__", "safetensors tensor name '", name, "' is not allowed (", path,
                ")");
    MTREC_CHECK(seen.insert(name).second, "tensor '", name, "' appears twice (", path, ")");
    MTREC_CHECK(tensor.defined(), "tensor '", name, "' is undefined (", path, ")");
    at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", dtype_name(t.scalar_type(), name)},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(std::move(t));
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // the format pads the header so data starts 8-aligned
  char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<char>((static_cast<uint64_t>(h.size()) >> (8 * i)) & 0xFF);
  AtomicFile out(path);
  out.stream().write(len_bytes, 8);
  out.stream().write(h.data(), static_cast<std::streamsize>(h.size()));
  for (const auto& t : data)
    if (t.numel() > 0)
      out.stream().write(static_cast<const char*>(t.data_ptr()),
                         static_cast<std::streamsize>(t.numel() * t.element_size()));
  out.commit();
}

}  // namespace mtrec
