#pragma once
// A persistent cache of text embeddings keyed by a hash of the text (and of the model that
// made them), so re-embedding a catalogue only encodes the entries whose text changed.
//
//   mtrec::nn::EmbeddingCache cache = mtrec::nn::EmbeddingCache::load_or_empty("emb.cache", 64);
//   const uint64_t h = mtrec::nn::text_hash(title, model_fingerprint);
//   if (const float* v = cache.find(h)) use(v); else cache.put(h, encode(title));
//   cache.save("emb.cache");   // atomic
//
// File layout (little-endian): "MTRECEMB" magic, uint32 version 1, uint32 dim, uint64 count,
// then count records of (uint64 hash, dim float32).
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mtrec::nn {

/// FNV-1a 64-bit hash of `text`, seeded by `salt` (e.g. a hash of the model files).
uint64_t text_hash(std::string_view text, uint64_t salt = 0);

class EmbeddingCache {
 public:
  explicit EmbeddingCache(uint32_t dim) : dim_(dim) {}
  /// Reads `path`; an absent file gives an empty cache. A cache of another dimension is
  /// discarded (empty result), since its vectors cannot be reused. Corrupt files throw.
  static EmbeddingCache load_or_empty(const std::string& path, uint32_t dim);
  void save(const std::string& path) const;

  uint32_t dim() const { return dim_; }
  size_t size() const { return entries_.size(); }
  /// The cached vector (dim floats) or nullptr.
  const float* find(uint64_t hash) const;
  void put(uint64_t hash, const float* vector);
  /// Keeps only the given hashes (drops entries of texts that no longer exist).
  void retain(const std::vector<uint64_t>& hashes);

 private:
  uint32_t dim_;
  std::unordered_map<uint64_t, std::vector<float>> entries_;
};

}  // namespace mtrec::nn
