// Item retrieval index: exact blocked scoring over fp32/fp16/int8 tables, and FAISS HNSW /
// IVF-PQ candidates re-scored in fp32. See include/mtrec/serve/index.h.
#include "mtrec/serve/index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <numeric>
#include <random>
#include <unordered_set>

#include <Eigen/Core>

#include "../core/parallel.h"
#include "mtrec/core/check.h"

#if defined(__F16C__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#ifdef MTREC_HAVE_FAISS
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/IDSelector.h>
#endif

namespace mtrec {
namespace {

constexpr int64_t kBlock = 4096;     // items scored per matrix product (fp32: 1 MiB at dim 64)
constexpr int64_t kQueryChunk = 64;  // queries per matrix product
// A filter that keeps this few items is answered by scoring them directly: a graph or list
// search would visit mostly disallowed items.
constexpr double kExactFilterFraction = 0.02;
constexpr int64_t kExactFilterItems = 4096;

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// ---- fp16 ----------------------------------------------------------------------------------

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// IEEE binary16 with round-to-nearest-even; overflow to inf, NaN kept NaN, subnormals exact.
uint16_t float_to_half(float f) {
  const uint32_t u = bits_of(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a >= 0x7f800000u) return sign | (a > 0x7f800000u ? 0x7e00u : 0x7c00u);  // NaN / inf
  if (a >= 0x477ff000u) return sign | 0x7c00u;                                // rounds to >= 65536: inf
  if (a < 0x38800000u) {  // below 2^-14: subnormal half (or zero); adding 0.5 rounds it for us
    // x + 0.5 puts the 10 fraction bits of x * 2^24 at the bottom of the mantissa, rounded to
    // nearest even by the FPU.
    const float r = float_of(a) + 0.5f;
    return sign | static_cast<uint16_t>(bits_of(r) - 0x3f000000u);
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped bits to nearest even.
  const uint32_t odd = (a >> 13) & 1u;
  const uint32_t r = a + 0xc8000fffu + odd;  // -(112 << 23) + 0xfff + odd
  return sign | static_cast<uint16_t>(r >> 13);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const int32_t em = h & 0x7fff;
  // Shifting puts exponent and mantissa in place with bias 15; * 2^112 rebiases to 127 and
  // also normalises subnormals (exact float arithmetic). Branch-free, so decode loops vectorise.
  const uint32_t finite = bits_of(float_of(static_cast<uint32_t>(em) << 13) * 0x1p112f);
  const uint32_t special = 0x7f800000u | static_cast<uint32_t>(em & 0x3ff) << 13;  // inf / NaN
  return float_of(sign | (em >= 0x7c00 ? special : finite));
}

void halves_to_floats(const uint16_t* h, int64_t count, float* out) {
  int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= count; i += 8) {
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
  }
#elif defined(__SSE2__)
  // half_to_float four at a time (SSE2 is in every x86-64; the compiler does not vectorise it).
  const __m128i sign_mask = _mm_set1_epi32(0x8000), em_mask = _mm_set1_epi32(0x7fff);
  const __m128i frac_mask = _mm_set1_epi32(0x3ff), inf_bits = _mm_set1_epi32(0x7f800000);
  const __m128i last_finite = _mm_set1_epi32(0x7bff);
  const __m128 rebias = _mm_set1_ps(0x1p112f);
  for (; i + 4 <= count; i += 4) {
    const __m128i x = _mm_unpacklo_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(h + i)), _mm_setzero_si128());
    const __m128i sign = _mm_slli_epi32(_mm_and_si128(x, sign_mask), 16);
    const __m128i em = _mm_and_si128(x, em_mask);
    const __m128i finite = _mm_castps_si128(_mm_mul_ps(_mm_castsi128_ps(_mm_slli_epi32(em, 13)), rebias));
    const __m128i special = _mm_or_si128(inf_bits, _mm_slli_epi32(_mm_and_si128(em, frac_mask), 13));
    const __m128i is_special = _mm_cmpgt_epi32(em, last_finite);
    const __m128i r = _mm_or_si128(_mm_and_si128(is_special, special), _mm_andnot_si128(is_special, finite));
    _mm_storeu_ps(out + i, _mm_castsi128_ps(_mm_or_si128(r, sign)));
  }
#endif
  for (; i < count; ++i) out[i] = half_to_float(h[i]);
}

// ---- kernels --------------------------------------------------------------------------------

/// Dot product with independent accumulators, so that -O2/-O3 vectorise it without fast-math.
float dot_f32(const float* a, const float* b, int64_t d) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= d; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < d; ++i) s += a[i] * b[i];
  return s;
}

bool better(const Hit& a, const Hit& b) { return a.score > b.score || (a.score == b.score && a.item < b.item); }

/// The k best hits seen so far: a heap whose front is the worst kept hit.
class TopK {
 public:
  explicit TopK(int64_t k = 0) : k_(k) {}
  /// Scores below this cannot enter (NaN never does).
  float threshold() const {
    if (k_ == 0) return std::numeric_limits<float>::infinity();
    return static_cast<int64_t>(heap_.size()) < k_ ? -std::numeric_limits<float>::infinity() : heap_.front().score;
  }
  void push(int32_t item, float score) {
    if (k_ == 0 || !(score >= threshold())) return;
    const Hit h{item, score};
    if (static_cast<int64_t>(heap_.size()) < k_) {
      heap_.push_back(h);
      std::push_heap(heap_.begin(), heap_.end(), better);
    } else if (better(h, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), better);
      heap_.back() = h;
      std::push_heap(heap_.begin(), heap_.end(), better);
    }
  }
  /// Scans scores of items [first, first + count), skipping allowed == 0 (allowed indexed by item).
  void scan(const float* scores, int64_t count, int32_t first, const uint8_t* allowed) {
    float thr = threshold();
    for (int64_t j = 0; j < count; ++j) {
      if (scores[j] >= thr && (!allowed || allowed[first + j])) {
        push(static_cast<int32_t>(first + j), scores[j]);
        thr = threshold();
      }
    }
  }
  void merge(const TopK& other) {
    for (const Hit& h : other.heap_) push(h.item, h.score);
  }
  int64_t size() const { return static_cast<int64_t>(heap_.size()); }
  std::vector<Hit> sorted() && {
    std::sort_heap(heap_.begin(), heap_.end(), better);
    return std::move(heap_);
  }

 private:
  int64_t k_;
  std::vector<Hit> heap_;
};

int64_t count_allowed(const uint8_t* allowed, int64_t n) {
  int64_t c = 0;
  for (int64_t i = 0; i < n; ++i) c += allowed[i] != 0;
  return c;
}

// ---- tables ---------------------------------------------------------------------------------

enum class Precision { kF32, kF16, kI8 };

/// The vectors exact search scores, in one of three precisions.
struct Table {
  Precision precision = Precision::kF32;
  int64_t n = 0, dim = 0;
  std::vector<float> f32;     // [n, dim]
  std::vector<uint16_t> f16;  // [n, dim] binary16
  std::vector<int8_t> i8;     // [n, dim], x ~ scale[row] * i8
  std::vector<float> scale;   // [n]: max|x| / 127

  void build(const float* v, int64_t rows, int64_t d, Precision p) {
    precision = p;
    n = rows;
    dim = d;
    const size_t total = static_cast<size_t>(n * dim);
    if (p == Precision::kF32) {
      f32.assign(v, v + total);
    } else if (p == Precision::kF16) {
      f16.resize(total);
      for (size_t i = 0; i < total; ++i) f16[i] = float_to_half(v[i]);
    } else {
      i8.resize(total);
      scale.resize(n);
      for (int64_t r = 0; r < n; ++r) {
        const float* x = v + r * dim;
        float m = 0;
        for (int64_t j = 0; j < dim; ++j) m = std::max(m, std::fabs(x[j]));
        const float s = m / 127.0f;
        scale[r] = s;
        const float inv = s > 0 ? 1.0f / s : 0.0f;
        for (int64_t j = 0; j < dim; ++j) {
          const float q = std::nearbyint(x[j] * inv);
          i8[r * dim + j] = static_cast<int8_t>(std::max(-127.0f, std::min(127.0f, q)));
        }
      }
    }
  }

  int64_t bytes() const { return static_cast<int64_t>(f32.size() * 4 + f16.size() * 2 + i8.size() + scale.size() * 4); }

  /// Rows [begin, end) as fp32: the table itself or a decoded copy in `scratch`.
  const float* rows(int64_t begin, int64_t end, std::vector<float>& scratch) const {
    if (precision == Precision::kF32) return f32.data() + begin * dim;
    const int64_t count = (end - begin) * dim;
    scratch.resize(static_cast<size_t>(count));
    if (precision == Precision::kF16) {
      halves_to_floats(f16.data() + begin * dim, count, scratch.data());
    } else {
      const int8_t* c = i8.data() + begin * dim;
      for (int64_t i = 0; i < count; ++i) scratch[i] = static_cast<float>(c[i]);  // scale applied after the product
    }
    return scratch.data();
  }

  /// out[q, j] = <queries[q], item begin + j> for nq queries and items [begin, end).
  void score_block(const float* queries, int64_t nq, int64_t begin, int64_t end, float* out,
                   std::vector<float>& scratch) const {
    const int64_t count = end - begin;
    Eigen::Map<const RowMatrix> x(rows(begin, end, scratch), count, dim);
    Eigen::Map<RowMatrix> s(out, nq, count);
    if (nq == 1) {
      Eigen::Map<const Eigen::VectorXf> q(queries, dim);
      Eigen::Map<Eigen::VectorXf> s1(out, count);
      s1.noalias() = x * q;
    } else {
      Eigen::Map<const RowMatrix> q(queries, nq, dim);
      s.noalias() = q * x.transpose();
    }
    if (precision == Precision::kI8) {
      Eigen::Map<const Eigen::RowVectorXf> sc(scale.data() + begin, count);
      s.array().rowwise() *= sc.array();
    }
  }

  float score(const float* q, int64_t item) const {
    if (precision == Precision::kF32) return dot_f32(q, f32.data() + item * dim, dim);
    float buf[256];
    float acc = 0;
    for (int64_t j0 = 0; j0 < dim; j0 += 256) {
      const int64_t len = std::min<int64_t>(256, dim - j0);
      if (precision == Precision::kF16) {
        halves_to_floats(f16.data() + item * dim + j0, len, buf);
      } else {
        const int8_t* c = i8.data() + item * dim + j0;
        for (int64_t j = 0; j < len; ++j) buf[j] = static_cast<float>(c[j]);
      }
      acc += dot_f32(q + j0, buf, len);
    }
    return precision == Precision::kI8 ? acc * scale[item] : acc;
  }
};

/// Exact top-k for nq queries. Work is split into (query chunk, item block) tasks; each thread
/// keeps its own heaps, merged at the end, so one query over many items uses every thread too.
std::vector<std::vector<Hit>> exact_search(const Table& t, const float* queries, int64_t nq, int64_t k,
                                           const std::vector<const uint8_t*>* allowed, int threads) {
  std::vector<std::vector<Hit>> out(nq);
  if (nq == 0 || k <= 0 || t.n == 0) return out;
  k = std::min(k, t.n);
  const int64_t chunk = std::min(nq, kQueryChunk);
  const int64_t nchunks = (nq + chunk - 1) / chunk;
  const int64_t nblocks = (t.n + kBlock - 1) / kBlock;
  const size_t tasks = static_cast<size_t>(nchunks * nblocks);
  const int nthreads = detail::resolve_threads(threads, tasks);
  struct Worker {
    std::vector<TopK> heaps;
    std::vector<float> scores, decoded;
  };
  std::vector<Worker> workers(nthreads);
  detail::parallel_for(tasks, nthreads, 1, [&](size_t task, int w) {
    Worker& me = workers[w];
    if (me.heaps.empty()) me.heaps.assign(nq, TopK(k));
    const int64_t c = static_cast<int64_t>(task) / nblocks, b = static_cast<int64_t>(task) % nblocks;
    const int64_t q0 = c * chunk, q1 = std::min(nq, q0 + chunk);
    const int64_t i0 = b * kBlock, i1 = std::min(t.n, i0 + kBlock);
    me.scores.resize(static_cast<size_t>((q1 - q0) * (i1 - i0)));
    t.score_block(queries + q0 * t.dim, q1 - q0, i0, i1, me.scores.data(), me.decoded);
    for (int64_t q = q0; q < q1; ++q) {
      const uint8_t* a = allowed ? (*allowed)[q] : nullptr;
      me.heaps[q].scan(me.scores.data() + (q - q0) * (i1 - i0), i1 - i0, static_cast<int32_t>(i0), a);
    }
  });
  for (int64_t q = 0; q < nq; ++q) {
    TopK merged(k);
    for (Worker& w : workers) {
      if (!w.heaps.empty()) merged.merge(w.heaps[q]);
    }
    out[q] = std::move(merged).sorted();
  }
  return out;
}

Precision parse_precision(const std::string& p) {
  if (p == "fp32") return Precision::kF32;
  if (p == "fp16") return Precision::kF16;
  if (p == "int8") return Precision::kI8;
  MTREC_CHECK(false, "IndexOptions.precision must be fp32, fp16 or int8, got '", p, "'");
  return Precision::kF32;
}

#ifdef MTREC_HAVE_FAISS
/// Negative inner product over an fp32 table (HNSW minimises distances).
struct NegativeDotComputer : faiss::DistanceComputer {
  const float* x;
  int64_t dim;
  const float* q = nullptr;
  NegativeDotComputer(const float* table, int64_t d) : x(table), dim(d) {}
  void set_query(const float* query) override { q = query; }
  float operator()(idx_t i) override { return -dot_f32(q, x + i * dim, dim); }
  float symmetric_dis(idx_t i, idx_t j) override { return -dot_f32(x + i * dim, x + j * dim, dim); }
};

struct AllowedSelector : faiss::IDSelector {
  const uint8_t* allowed;
  explicit AllowedSelector(const uint8_t* a) : allowed(a) {}
  bool is_member(idx_t id) const override { return allowed[id] != 0; }
};
#endif

}  // namespace

// ---- ItemIndex ------------------------------------------------------------------------------

struct ItemIndex::Impl {
  IndexOptions opt;
  std::string kind;  // resolved: exact | hnsw | ivfpq
  int64_t n = 0, dim = 0;
  Table table;  // exact kinds: the scored table; ivfpq: the fp32 re-rank table; hnsw: unused
#ifdef MTREC_HAVE_FAISS
  std::unique_ptr<faiss::IndexHNSWFlat> hnsw;
  std::unique_ptr<faiss::IndexFlatIP> coarse;
  std::unique_ptr<faiss::IndexIVFPQ> ivfpq;
  // Per-search scratch (HNSW visited flags are n bytes: too dear to allocate per query).
  struct Scratch {
    std::unique_ptr<faiss::VisitedTable> visited;
    std::vector<faiss::Index::idx_t> labels;
    std::vector<float> distances;
  };
  mutable std::mutex scratch_mu;
  mutable std::vector<std::unique_ptr<Scratch>> scratch_pool;

  std::unique_ptr<Scratch> acquire() const {
    {
      std::lock_guard<std::mutex> lock(scratch_mu);
      if (!scratch_pool.empty()) {
        auto s = std::move(scratch_pool.back());
        scratch_pool.pop_back();
        return s;
      }
    }
    auto s = std::make_unique<Scratch>();
    if (hnsw) s->visited = std::make_unique<faiss::VisitedTable>(static_cast<int>(n));
    return s;
  }
  void release(std::unique_ptr<Scratch> s) const {
    std::lock_guard<std::mutex> lock(scratch_mu);
    scratch_pool.push_back(std::move(s));
  }
#endif

  /// fp32 rows for re-ranking and score(): the HNSW storage holds them already.
  const float* fp32() const {
#ifdef MTREC_HAVE_FAISS
    if (hnsw) return static_cast<const faiss::IndexFlat*>(hnsw->storage)->get_xb();
#endif
    return table.f32.data();
  }
  float fp32_score(const float* q, int64_t item) const { return dot_f32(q, fp32() + item * dim, dim); }

  void build_ann(const float* vectors);
  std::vector<Hit> ann_search(const float* q, int64_t k, const uint8_t* allowed) const;
};

#ifdef MTREC_HAVE_FAISS
void ItemIndex::Impl::build_ann(const float* vectors) {
  if (kind == "hnsw") {
    hnsw = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(dim), opt.hnsw_m(), faiss::METRIC_INNER_PRODUCT);
    hnsw->hnsw.efConstruction = opt.hnsw_ef_construction();
    hnsw->hnsw.efSearch = opt.hnsw_ef_search();
    hnsw->add(n, vectors);
    return;
  }
  table.build(vectors, n, dim, Precision::kF32);
  int64_t lists = opt.ivf_lists() > 0
                      ? opt.ivf_lists()
                      : std::max<int64_t>(1, static_cast<int64_t>(4 * std::sqrt(static_cast<double>(n))));
  lists = std::min(lists, std::max<int64_t>(1, n / 39));  // faiss's minimum of 39 training points per list
  const int m = opt.pq_subquantizers() > 0 ? opt.pq_subquantizers() : static_cast<int>(std::max<int64_t>(1, dim / 4));
  MTREC_CHECK(dim % m == 0, "IndexOptions.pq_subquantizers must divide dim=", dim, ", got ", m);
  coarse = std::make_unique<faiss::IndexFlatIP>(static_cast<int>(dim));
  ivfpq = std::make_unique<faiss::IndexIVFPQ>(coarse.get(), dim, static_cast<size_t>(lists), static_cast<size_t>(m), 8,
                                              faiss::METRIC_INNER_PRODUCT);
  ivfpq->nprobe = static_cast<size_t>(opt.ivf_nprobe());
  ivfpq->cp.seed = static_cast<int>(opt.seed());
  ivfpq->pq.cp.seed = static_cast<int>(opt.seed() + 1);
  // k-means wants ~40 points per centroid (coarse lists and the 256 PQ codes alike); a seeded
  // sample bounds the training time on large catalogues.
  const int64_t want = std::min(n, std::max<int64_t>(40 * lists, 40 * 256));
  std::vector<float> sample;
  const float* train = vectors;
  if (want < n) {
    std::vector<int64_t> ids(n);
    std::iota(ids.begin(), ids.end(), 0);
    std::mt19937_64 rng(opt.seed());
    for (int64_t i = 0; i < want; ++i)
      std::swap(ids[i], ids[i + static_cast<int64_t>(rng() % static_cast<uint64_t>(n - i))]);
    sample.resize(static_cast<size_t>(want * dim));
    for (int64_t i = 0; i < want; ++i) std::copy_n(vectors + ids[i] * dim, dim, sample.data() + i * dim);
    train = sample.data();
  }
  ivfpq->train(want, train);
  ivfpq->add(n, vectors);
}

std::vector<Hit> ItemIndex::Impl::ann_search(const float* q, int64_t k, const uint8_t* allowed) const {
  k = std::min(k, n);
  if (k <= 0) return {};
  if (allowed) {
    const int64_t count = count_allowed(allowed, n);
    if (count <= std::max<int64_t>(kExactFilterItems, static_cast<int64_t>(kExactFilterFraction * n))) {
      TopK top(k);
      for (int64_t i = 0; i < n; ++i) {
        if (allowed[i]) top.push(static_cast<int32_t>(i), fp32_score(q, i));
      }
      return std::move(top).sorted();
    }
  }
  AllowedSelector selector(allowed);
  auto scratch = acquire();
  int64_t depth = std::min(n, k * std::max<int64_t>(1, opt.rerank()));
  int64_t nprobe = opt.ivf_nprobe();
  std::vector<Hit> result;
  for (;;) {
    scratch->labels.assign(static_cast<size_t>(depth), -1);
    scratch->distances.assign(static_cast<size_t>(depth), 0);
    if (hnsw) {
      faiss::SearchParametersHNSW params;
      params.efSearch = static_cast<int>(std::max<int64_t>(opt.hnsw_ef_search(), depth));
      params.sel = allowed ? &selector : nullptr;
      NegativeDotComputer dc(fp32(), dim);
      dc.set_query(q);
      scratch->visited->advance();
      hnsw->hnsw.search(dc, static_cast<int>(depth), scratch->labels.data(), scratch->distances.data(),
                        *scratch->visited, &params);
    } else {
      // Coarse assignment by hand keeps the whole query on this thread (no OpenMP team).
      const int64_t lists = static_cast<int64_t>(ivfpq->nlist);
      const int64_t probes = std::min(nprobe, lists);
      const float* centroids = coarse->get_xb();
      TopK nearest(probes);
      for (int64_t c = 0; c < lists; ++c) nearest.push(static_cast<int32_t>(c), dot_f32(q, centroids + c * dim, dim));
      std::vector<Hit> probe_hits = std::move(nearest).sorted();
      std::vector<faiss::Index::idx_t> assign(probe_hits.size());
      std::vector<float> coarse_dis(probe_hits.size());
      for (size_t i = 0; i < probe_hits.size(); ++i) {
        assign[i] = probe_hits[i].item;
        coarse_dis[i] = probe_hits[i].score;
      }
      faiss::SearchParametersIVF params;
      params.nprobe = static_cast<size_t>(probes);
      params.sel = allowed ? &selector : nullptr;
      ivfpq->search_preassigned(1, q, depth, assign.data(), coarse_dis.data(), scratch->distances.data(),
                                scratch->labels.data(), false, &params);
    }
    // Re-rank in fp32; drop -1 (fewer found) and, should the selector be ignored, disallowed.
    TopK top(k);
    int64_t found = 0;
    for (int64_t i = 0; i < depth; ++i) {
      const int64_t id = scratch->labels[i];
      if (id < 0 || id >= n || (allowed && !allowed[id])) continue;
      ++found;
      top.push(static_cast<int32_t>(id), fp32_score(q, id));
    }
    // HNSW has seen its whole graph once asked for n; IVF once every list is probed and fewer
    // candidates than asked for came back.
    const bool exhausted =
        hnsw ? depth >= n : nprobe >= static_cast<int64_t>(ivfpq->nlist) && (found < depth || depth >= n);
    if (top.size() >= k || exhausted) {
      result = std::move(top).sorted();
      break;
    }
    // Too few allowed hits: search deeper (and, for IVF, probe more lists).
    depth = std::min(n, depth * 2);
    nprobe *= 2;
  }
  release(std::move(scratch));
  return result;
}
#else
void ItemIndex::Impl::build_ann(const float*) {
  MTREC_CHECK(false, "IndexOptions.kind '", kind,
              "' needs FAISS, but mtrec was built without FAISS (install libfaiss-dev)");
}
std::vector<Hit> ItemIndex::Impl::ann_search(const float*, int64_t, const uint8_t*) const { return {}; }
#endif

ItemIndex::ItemIndex(const float* vectors, int64_t n, int64_t dim, IndexOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  const IndexOptions& o = options;
  MTREC_CHECK(n >= 0 && n <= std::numeric_limits<int32_t>::max(), "ItemIndex: n must be in [0, 2^31), got n=", n);
  MTREC_CHECK(dim > 0, "ItemIndex: dim must be > 0, got dim=", dim);
  MTREC_CHECK(vectors || n == 0, "ItemIndex: vectors is null with n=", n);
  MTREC_CHECK(o.kind() == "exact" || o.kind() == "hnsw" || o.kind() == "ivfpq" || o.kind() == "auto",
              "IndexOptions.kind must be exact, hnsw, ivfpq or auto, got '", o.kind(), "'");
  const Precision precision = parse_precision(o.precision());
  MTREC_CHECK(o.auto_ann_min_items() >= 0, "IndexOptions.auto_ann_min_items must be >= 0, got ",
              o.auto_ann_min_items());
  MTREC_CHECK(o.hnsw_m() >= 2, "IndexOptions.hnsw_m must be >= 2, got ", o.hnsw_m());
  MTREC_CHECK(o.hnsw_ef_construction() >= 1, "IndexOptions.hnsw_ef_construction must be >= 1, got ",
              o.hnsw_ef_construction());
  MTREC_CHECK(o.hnsw_ef_search() >= 1, "IndexOptions.hnsw_ef_search must be >= 1, got ", o.hnsw_ef_search());
  MTREC_CHECK(o.ivf_lists() >= 0, "IndexOptions.ivf_lists must be >= 0, got ", o.ivf_lists());
  MTREC_CHECK(o.pq_subquantizers() >= 0, "IndexOptions.pq_subquantizers must be >= 0, got ", o.pq_subquantizers());
  MTREC_CHECK(o.ivf_nprobe() >= 1, "IndexOptions.ivf_nprobe must be >= 1, got ", o.ivf_nprobe());
  MTREC_CHECK(o.rerank() >= 1, "IndexOptions.rerank must be >= 1, got ", o.rerank());
  MTREC_CHECK(o.threads() >= 0, "IndexOptions.threads must be >= 0, got ", o.threads());
  m.opt = o;
  m.n = n;
  m.dim = dim;
  m.kind = o.kind() == "auto" ? (n >= o.auto_ann_min_items() ? "hnsw" : "exact") : o.kind();
  if (m.kind == "exact" || n == 0) {
    m.kind = "exact";
    m.table.build(vectors, n, dim, precision);
  } else {
    m.build_ann(vectors);
  }
}

ItemIndex::~ItemIndex() = default;
ItemIndex::ItemIndex(ItemIndex&&) noexcept = default;
ItemIndex& ItemIndex::operator=(ItemIndex&&) noexcept = default;

std::vector<Hit> ItemIndex::search(const float* query, int64_t k, const uint8_t* allowed) const {
  MTREC_CHECK(k >= 0, "ItemIndex::search: k must be >= 0, got k=", k);
  if (impl_->kind != "exact") return impl_->ann_search(query, k, allowed);
  std::vector<const uint8_t*> a{allowed};
  return std::move(exact_search(impl_->table, query, 1, k, allowed ? &a : nullptr, impl_->opt.threads())[0]);
}

std::vector<std::vector<Hit>> ItemIndex::search_batch(const float* queries, int64_t nq, int64_t k,
                                                      const std::vector<const uint8_t*>* allowed) const {
  MTREC_CHECK(k >= 0, "ItemIndex::search_batch: k must be >= 0, got k=", k);
  MTREC_CHECK(nq >= 0, "ItemIndex::search_batch: nq must be >= 0, got nq=", nq);
  MTREC_CHECK(!allowed || static_cast<int64_t>(allowed->size()) == nq, "ItemIndex::search_batch: allowed holds ",
              allowed ? allowed->size() : 0, " pointers for nq=", nq);
  const Impl& m = *impl_;
  if (m.kind == "exact") return exact_search(m.table, queries, nq, k, allowed, m.opt.threads());
  std::vector<std::vector<Hit>> out(nq);
  detail::parallel_for(static_cast<size_t>(nq), m.opt.threads(), 4, [&](size_t q) {
    out[q] = m.ann_search(queries + static_cast<int64_t>(q) * m.dim, k, allowed ? (*allowed)[q] : nullptr);
  });
  return out;
}

void ItemIndex::score(const float* query, const int32_t* items, int64_t count, float* out) const {
  const Impl& m = *impl_;
  for (int64_t i = 0; i < count; ++i) {
    MTREC_CHECK(items[i] >= 0 && items[i] < m.n, "ItemIndex::score: item ", items[i], " outside [0, ", m.n, ")");
    out[i] = m.kind == "exact" ? m.table.score(query, items[i]) : m.fp32_score(query, items[i]);
  }
}

int64_t ItemIndex::size() const { return impl_->n; }
int64_t ItemIndex::dim() const { return impl_->dim; }

std::string ItemIndex::description() const {
  const Impl& m = *impl_;
  if (m.kind != "exact") return m.kind;
  if (m.table.precision == Precision::kF16) return "exact:fp16";
  if (m.table.precision == Precision::kI8) return "exact:int8";
  return "exact";
}

int64_t ItemIndex::memory_bytes() const {
  const Impl& m = *impl_;
  int64_t bytes = m.table.bytes();
#ifdef MTREC_HAVE_FAISS
  if (m.hnsw) {
    const faiss::HNSW& g = m.hnsw->hnsw;
    bytes += m.n * m.dim * 4 +
             static_cast<int64_t>(g.neighbors.size() * sizeof(g.neighbors[0]) + g.levels.size() * sizeof(g.levels[0]) +
                                  g.offsets.size() * sizeof(g.offsets[0]));
  }
  if (m.ivfpq) {
    bytes += static_cast<int64_t>(m.ivfpq->nlist) * m.dim * 4;                              // centroids
    bytes += m.n * static_cast<int64_t>(m.ivfpq->code_size + sizeof(faiss::Index::idx_t));  // codes + ids
    bytes += static_cast<int64_t>(m.ivfpq->pq.centroids.size() * 4);
  }
#endif
  return bytes;
}

std::vector<Hit> top_k(const float* scores, int64_t n, int64_t k, const uint8_t* allowed) {
  MTREC_CHECK(k >= 0 && n >= 0, "top_k needs k >= 0 and n >= 0, got k=", k, " n=", n);
  TopK top(std::min(k, n));
  for (int64_t i0 = 0; i0 < n; i0 += kBlock)
    top.scan(scores + i0, std::min(kBlock, n - i0), static_cast<int32_t>(i0), allowed);
  return std::move(top).sorted();
}

double recall_at_k(const std::vector<std::vector<Hit>>& approx, const std::vector<std::vector<Hit>>& exact) {
  MTREC_CHECK(approx.size() == exact.size(), "recall_at_k: ", approx.size(), " approximate result lists vs ",
              exact.size(), " exact ones");
  double sum = 0;
  int64_t counted = 0;
  for (size_t q = 0; q < exact.size(); ++q) {
    if (exact[q].empty()) continue;
    std::unordered_set<int32_t> truth;
    for (const Hit& h : exact[q]) truth.insert(h.item);
    int64_t hit = 0;
    for (const Hit& h : approx[q]) hit += truth.count(h.item);
    sum += static_cast<double>(hit) / static_cast<double>(exact[q].size());
    ++counted;
  }
  return counted ? sum / static_cast<double>(counted) : 1.0;
}

}  // namespace mtrec
