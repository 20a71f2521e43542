#pragma once
// The safetensors file format (Hugging Face): 8-byte little-endian header length N, N bytes of
// JSON {"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__":
// {...}}, then the raw little-endian tensor bytes. Used to import pretrained BERT weights and to
// export our own encoders.
//
//   auto w = mtrec::read_safetensors("bert/model.safetensors");   // name -> float32 CPU tensor
//   at::Tensor emb = w.at("embeddings.word_embeddings.weight");
//   mtrec::write_safetensors("out.safetensors", {{"w", t}});       // atomic; keeps t's dtype
//
// Reading converts floating dtypes (F32, F16, BF16, F64) to float32 and integer dtypes (I64, I32,
// I16, I8, U8, BOOL) to int64, unless SafetensorsReadOptions::keep_dtype. Every error names the
// file and, when it concerns one, the tensor.
#include <torch/arg.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mtrec/core/options.h"

namespace mtrec {

/// One header entry, as stored (dtype is the safetensors name: "F32", "BF16", ...).
struct SafetensorsInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  int64_t begin = 0, end = 0;  // byte range within the data section
};

#define MTREC_SAFETENSORS_READ_OPTIONS(X)                          \
  /* true: tensors keep the stored dtype (F16 stays kHalf, ...) */ \
  X(bool, keep_dtype, false)

struct SafetensorsReadOptions {
  MTREC_OPTIONS(MTREC_SAFETENSORS_READ_OPTIONS)
};

/// The header entries in file (data offset) order; reads only the header.
std::vector<SafetensorsInfo> read_safetensors_header(const std::string& path);

/// All tensors, in file order (CPU, contiguous).
std::vector<std::pair<std::string, at::Tensor>> read_safetensors_ordered(const std::string& path,
                                                                         const SafetensorsReadOptions& options = {});
/// All tensors by name.
std::map<std::string, at::Tensor> read_safetensors(const std::string& path, const SafetensorsReadOptions& options = {});

/// Writes `tensors` (any device; stored in their own dtype: float32/16, bfloat16, float64,
/// int64/32/16/8, uint8, bool) in the given order, atomically. Names must be unique and
/// non-empty; `metadata` goes to "__metadata__" (string values only, as the format requires).
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});
/// Any name -> tensor map (std::map, ...), in its iteration order. A template so that a braced
/// list `{{"w", t}}` picks the ordered overload above unambiguously.
template <typename Map, typename = decltype(std::declval<const Map&>().begin()->second.defined())>
void write_safetensors(const std::string& path, const Map& tensors,
                       const std::map<std::string, std::string>& metadata = {}) {
  write_safetensors(path, std::vector<std::pair<std::string, at::Tensor>>(tensors.begin(), tensors.end()), metadata);
}

}  // namespace mtrec
