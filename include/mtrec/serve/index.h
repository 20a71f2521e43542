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
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mtrec {

struct Hit {
  int32_t item = 0;
  float score = 0;
};

struct IndexOptions {
  std::string kind_ = "exact";      // exact | hnsw | ivfpq | auto (hnsw from auto_ann_min_items)
  std::string precision_ = "fp32";  // fp32 | fp16 | int8: the table exact search scores (ANN: fp32 re-rank)
  int64_t auto_ann_min_items_ = 200000;
  int hnsw_m_ = 32, hnsw_ef_construction_ = 80, hnsw_ef_search_ = 64;
  int64_t ivf_lists_ = 0;           // 0: about 4 sqrt(n)
  int pq_subquantizers_ = 0;        // 0: dim / 4 (8 bits each)
  int ivf_nprobe_ = 16;
  int64_t rerank_ = 4;              // ANN: k * rerank candidates re-scored exactly in fp32
  int threads_ = 0;                 // batch search and exact scoring (0: hardware concurrency)
  uint64_t seed_ = 42;              // k-means training of IVF-PQ
  IndexOptions& kind(std::string v) { kind_ = std::move(v); return *this; }
  IndexOptions& precision(std::string v) { precision_ = std::move(v); return *this; }
  IndexOptions& auto_ann_min_items(int64_t v) { auto_ann_min_items_ = v; return *this; }
  IndexOptions& hnsw_m(int v) { hnsw_m_ = v; return *this; }
  IndexOptions& hnsw_ef_construction(int v) { hnsw_ef_construction_ = v; return *this; }
  IndexOptions& hnsw_ef_search(int v) { hnsw_ef_search_ = v; return *this; }
  IndexOptions& ivf_lists(int64_t v) { ivf_lists_ = v; return *this; }
  IndexOptions& pq_subquantizers(int v) { pq_subquantizers_ = v; return *this; }
  IndexOptions& ivf_nprobe(int v) { ivf_nprobe_ = v; return *this; }
  IndexOptions& rerank(int64_t v) { rerank_ = v; return *this; }
  IndexOptions& threads(int v) { threads_ = v; return *this; }
  IndexOptions& seed(uint64_t v) { seed_ = v; return *this; }
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
