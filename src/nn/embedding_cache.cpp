#include "mtrec/nn/embedding_cache.h"

#include <cstring>
#include <filesystem>
#include <unordered_set>

#include "mtrec/core/check.h"
#include "mtrec/core/io.h"

namespace mtrec::nn {
namespace {
constexpr char kMagic[8] = {'M', 'T', 'R', 'E', 'C', 'E', 'M', 'B'};
constexpr uint32_t kVersion = 1;

template <typename T>
void put_raw(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
}  // namespace

uint64_t text_hash(std::string_view text, uint64_t salt) {
  uint64_t h = 1469598103934665603ULL ^ (salt * 0x9E3779B97F4A7C15ULL);
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

EmbeddingCache EmbeddingCache::load_or_empty(const std::string& path, uint32_t dim) {
  EmbeddingCache cache(dim);
  if (!std::filesystem::exists(path)) return cache;
  const std::string bytes = read_file(path);
  size_t pos = 0;
  auto take = [&](void* dst, size_t n, const char* what) {
    if (pos + n > bytes.size()) throw DataError(path, 0, what, "embedding cache truncated");
    std::memcpy(dst, bytes.data() + pos, n);
    pos += n;
  };
  char magic[8];
  uint32_t version = 0, file_dim = 0;
  uint64_t count = 0;
  take(magic, 8, "magic");
  if (std::memcmp(magic, kMagic, 8) != 0) throw DataError(path, 0, "magic", "not an mtrec embedding cache");
  take(&version, 4, "version");
  if (version != kVersion) throw DataError(path, 0, "version", "unsupported version " + std::to_string(version));
  take(&file_dim, 4, "dim");
  take(&count, 8, "count");
  if (file_dim != dim) return cache;  // another model's vectors: nothing to reuse
  const size_t record = 8 + size_t(dim) * 4;
  if (bytes.size() - pos != count * record) {
    throw DataError(path, 0, "count",
                    "expected " + std::to_string(count) + " records of " + std::to_string(record) +
                        " bytes, file has " + std::to_string(bytes.size() - pos) + " bytes after the header");
  }
  std::vector<float> v(dim);
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t h = 0;
    take(&h, 8, "hash");
    take(v.data(), size_t(dim) * 4, "vector");
    cache.put(h, v.data());
  }
  return cache;
}

void EmbeddingCache::save(const std::string& path) const {
  std::string out;
  out.reserve(24 + entries_.size() * (8 + size_t(dim_) * 4));
  out.append(kMagic, 8);
  put_raw(out, kVersion);
  put_raw(out, dim_);
  put_raw(out, static_cast<uint64_t>(entries_.size()));
  for (const auto& [h, v] : entries_) {
    put_raw(out, h);
    out.append(reinterpret_cast<const char*>(v.data()), v.size() * 4);
  }
  write_file_atomic(path, out);
}

const float* EmbeddingCache::find(uint64_t hash) const {
  auto it = entries_.find(hash);
  return it == entries_.end() ? nullptr : it->second.data();
}

void EmbeddingCache::put(uint64_t hash, const float* vector) { entries_[hash].assign(vector, vector + dim_); }

void EmbeddingCache::retain(const std::vector<uint64_t>& hashes) {
  std::unordered_set<uint64_t> keep(hashes.begin(), hashes.end());
  for (auto it = entries_.begin(); it != entries_.end();)
    it = keep.count(it->first) ? std::next(it) : entries_.erase(it);
}

}  // namespace mtrec::nn
