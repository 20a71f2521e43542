#pragma once
// Top-K retrieval by inner product over an item table: exact (blocked matrix product + partial
// sort, multi-threaded) or approximate (FAISS: HNSW, or IVF with product quantisation), over
// fp32, fp16 or int8 (per-row scale) copies of the vectors.
//
//   mtrec::ItemIndex index(vectors.data(), num_items, dim, mtrec::IndexOptions().kind("hnsw"));
//   std::vector<mtrec::Hit> top = index.search(query.data(), 10, allowed);  // allowed: nullptr or num_items flags
//
// Results are sorted by score (descending; ties: lower item first), never contain an item
// twice or an item whose allowed flag is 0, and hold fewer than k hits only when fewer items
// are allowed (the approximate kinds search deeper until k allowed hits are found or the
// catalogue is exhausted). Searching is const and thread-safe.
#include <torch/arg.h>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mtrec/core/options.h"

namespace mtrec {

struct Hit {
  int32_t item = 0;
  float score = 0;
};

#define MTREC_INDEX_OPTIONS(X)                                                \
  /* exact | hnsw | ivfpq | auto (hnsw from auto_ann_min_items) */            \
  X(std::string, kind, "exact")                                               \
  /* fp32 | fp16 | int8: the table exact search scores (ANN: fp32 re-rank) */ \
  X(std::string, precision, "fp32")                                           \
  X(int64_t, auto_ann_min_items, 200000)                                      \
  X(int, hnsw_m, 32)                                                          \
  X(int, hnsw_ef_construction, 80)                                            \
  X(int, hnsw_ef_search, 64)                                                  \
  /* 0: about 4 sqrt(n) */                                                    \
  X(int64_t, ivf_lists, 0)                                                    \
  /* 0: dim / 4 (8 bits each) */                                              \
  X(int, pq_subquantizers, 0)                                                 \
  X(int, ivf_nprobe, 16)                                                      \
  /* ANN: k * rerank candidates re-scored exactly in fp32 */                  \
  X(int64_t, rerank, 4)                                                       \
  /* batch search and exact scoring (0: hardware concurrency) */              \
  X(int, threads, 0)                                                          \
  /* k-means training of IVF-PQ */                                            \
  X(uint64_t, seed, 42)

struct IndexOptions {
  MTREC_OPTIONS(MTREC_INDEX_OPTIONS)
};

class ItemIndex {
 public:
  /// Copies `vectors` (row-major [n, dim]); builds the approximate structure when asked.
  /// Throws mtrec::Error on bad options (naming the option and its value).
  ItemIndex(const float* vectors, int64_t n, int64_t dim, IndexOptions options = {});
  ~ItemIndex();
  ItemIndex(ItemIndex&&) noexcept;
  ItemIndex& operator=(ItemIndex&&) noexcept;

  /// Top-k items for one query [dim]; allowed: nullptr (every item) or n flags (0 = skip).
  std::vector<Hit> search(const float* query, int64_t k, const uint8_t* allowed = nullptr) const;
  /// nq queries [nq, dim] at once (threads over queries); allowed: nullptr or nq pointers (each nullptr or n flags).
  std::vector<std::vector<Hit>> search_batch(const float* queries, int64_t nq, int64_t k,
                                             const std::vector<const uint8_t*>* allowed = nullptr) const;
  /// The inner products of one query with the given items, from the table exact search uses.
  void score(const float* query, const int32_t* items, int64_t count, float* out) const;

  int64_t size() const;
  int64_t dim() const;
  /// "exact" | "hnsw" | "ivfpq", with ":fp16" / ":int8" for a compact exact table.
  std::string description() const;
  /// Bytes of the vectors and structures held.
  int64_t memory_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Exact top-k of scores[0, n) (sorted, ties: lower index first), skipping allowed == 0.
std::vector<Hit> top_k(const float* scores, int64_t n, int64_t k, const uint8_t* allowed = nullptr);

/// recall@k of `approx` against `exact` (|approx ∩ exact| / |exact|, averaged over queries).
double recall_at_k(const std::vector<std::vector<Hit>>& approx, const std::vector<std::vector<Hit>>& exact);

}  // namespace mtrec
