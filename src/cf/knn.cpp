#include "mtrec/cf/knn.h"

#include <Eigen/SparseCore>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "../core/parallel.h"
#include "mtrec/core/check.h"
#include "mtrec/core/io.h"

namespace mtrec {

using SpRow = Eigen::SparseMatrix<float, Eigen::RowMajor, int32_t>;

struct KnnModel::State {
  int32_t num_users = 0, num_items = 0;
  double mu = 0;
  float r_min = 0, r_max = 0;
  std::vector<float> bu, bi;                // zeros unless biases were fitted
  std::vector<float> user_mean, item_mean;  // mu for rows without data
  SpRow by_user;                            // users x items
  SpRow by_item;                            // items x users
  // Neighbour lists per row (items for item-based, users for user-based), most similar first.
  std::vector<int64_t> nb_ptr;
  std::vector<int32_t> nb_idx;
  std::vector<float> nb_sim;
};

std::string_view to_string(KnnKind kind) { return kind == KnnKind::User ? "user" : "item"; }

std::string_view to_string(KnnSimilarity sim) {
  switch (sim) {
    case KnnSimilarity::Cosine:
      return "cosine";
    case KnnSimilarity::AdjustedCosine:
      return "adjusted_cosine";
    case KnnSimilarity::Pearson:
      return "pearson";
    case KnnSimilarity::PearsonBaseline:
      return "pearson_baseline";
  }
  return "?";
}

KnnKind parse_knn_kind(std::string_view s) {
  if (s == "user") return KnnKind::User;
  if (s == "item") return KnnKind::Item;
  MTREC_CHECK(false, "unknown KNN kind '", s, "' (choices: user, item)");
  return KnnKind::Item;
}

KnnSimilarity parse_knn_similarity(std::string_view s) {
  for (auto v :
       {KnnSimilarity::Cosine, KnnSimilarity::AdjustedCosine, KnnSimilarity::Pearson, KnnSimilarity::PearsonBaseline}) {
    if (s == to_string(v)) return v;
  }
  MTREC_CHECK(false, "unknown KNN similarity '", s, "' (choices: cosine, adjusted_cosine, pearson, pearson_baseline)");
  return KnnSimilarity::Cosine;
}

KnnModel::KnnModel(KnnOptions options) : options_(std::move(options)) {}
KnnModel::~KnnModel() = default;
KnnModel::KnnModel(KnnModel&&) noexcept = default;
KnnModel& KnnModel::operator=(KnnModel&&) noexcept = default;

bool KnnModel::fitted() const { return state_ != nullptr; }
int32_t KnnModel::num_users() const { return state_ ? state_->num_users : 0; }
int32_t KnnModel::num_items() const { return state_ ? state_->num_items : 0; }
double KnnModel::global_mean() const {
  MTREC_CHECK(state_, "KnnModel is not fitted");
  return state_->mu;
}

namespace {

void check_options(const KnnOptions& o) {
  MTREC_CHECK(o.k() > 0, "KnnOptions: k must be > 0, got ", o.k());
  MTREC_CHECK(o.shrinkage() >= 0, "KnnOptions: shrinkage must be >= 0, got ", o.shrinkage());
  MTREC_CHECK(o.min_support() >= 0, "KnnOptions: min_support must be >= 0, got ", o.min_support());
  MTREC_CHECK(o.max_neighbors() >= 0, "KnnOptions: max_neighbors must be >= 0, got ", o.max_neighbors());
  MTREC_CHECK(o.baseline_epochs() >= 0, "KnnOptions: baseline_epochs must be >= 0, got ", o.baseline_epochs());
  MTREC_CHECK(o.reg_user() >= 0 && o.reg_item() >= 0,
              "KnnOptions: regularisation must be >= 0, got reg_user=", o.reg_user(), " reg_item=", o.reg_item());
}

bool uses_biases(const KnnOptions& o) { return o.baseline() || o.similarity() == KnnSimilarity::PearsonBaseline; }

// Value of (row, col) in a row-major matrix, or NaN when absent (binary search).
float lookup(const SpRow& m, int32_t row, int32_t col) {
  const int32_t* b = m.innerIndexPtr() + m.outerIndexPtr()[row];
  const int32_t* e = m.innerIndexPtr() + m.outerIndexPtr()[row + 1];
  const int32_t* p = std::lower_bound(b, e, col);
  return (p != e && *p == col) ? m.valuePtr()[p - m.innerIndexPtr()] : NAN;
}

// Biases by alternating regularised least squares (Koren 2010; Surprise's baseline ALS).
void fit_biases(KnnModel::State& s, const KnnOptions& o) {
  s.bu.assign(s.num_users, 0.0f);
  s.bi.assign(s.num_items, 0.0f);
  for (int epoch = 0; epoch < o.baseline_epochs(); ++epoch) {
    for (int32_t i = 0; i < s.num_items; ++i) {
      double sum = 0;
      for (SpRow::InnerIterator it(s.by_item, i); it; ++it) sum += it.value() - s.mu - s.bu[it.index()];
      s.bi[i] = float(sum / (o.reg_item() + s.by_item.outerIndexPtr()[i + 1] - s.by_item.outerIndexPtr()[i]));
    }
    for (int32_t u = 0; u < s.num_users; ++u) {
      double sum = 0;
      for (SpRow::InnerIterator it(s.by_user, u); it; ++it) sum += it.value() - s.mu - s.bi[it.index()];
      s.bu[u] = float(sum / (o.reg_user() + s.by_user.outerIndexPtr()[u + 1] - s.by_user.outerIndexPtr()[u]));
    }
  }
}

std::vector<float> row_means(const SpRow& m, double fallback) {
  std::vector<float> mean(m.outerSize(), float(fallback));
  for (int32_t r = 0; r < m.outerSize(); ++r) {
    double sum = 0;
    int64_t n = 0;
    for (SpRow::InnerIterator it(m, r); it; ++it, ++n) sum += it.value();
    if (n > 0) mean[r] = float(sum / n);
  }
  return mean;
}

struct Acc {
  double ab = 0, aa = 0, bb = 0, a = 0, b = 0;
  int32_t n = 0;
};

// Similarities of every row of A (rows x cols, values already centred as the similarity needs)
// with every other row, by merging through the columns: for row a, each column x of a, each row
// b holding x. Only co-rated sums are kept, so the work is sum over columns of degree^2.
template <bool kCoRated>
void similarity_rows(const SpRow& A, const SpRow& At, const KnnOptions& o, std::vector<int64_t>& ptr,
                     std::vector<int32_t>& idx, std::vector<float>& sims) {
  const int32_t rows = static_cast<int32_t>(A.outerSize());
  std::vector<double> norm(rows, 0.0);
  if (!kCoRated) {
    for (int32_t r = 0; r < rows; ++r) {
      for (SpRow::InnerIterator it(A, r); it; ++it) norm[r] += double(it.value()) * it.value();
      norm[r] = std::sqrt(norm[r]);
    }
  }
  const bool pearson = o.similarity() == KnnSimilarity::Pearson;
  std::vector<std::vector<KnnNeighbor>> lists(rows);
  const int threads = detail::resolve_threads(o.threads(), size_t(rows));
  std::vector<std::vector<Acc>> accs(threads, std::vector<Acc>(kCoRated ? rows : 0));
  std::vector<std::vector<double>> dots(threads, std::vector<double>(kCoRated ? 0 : rows, 0.0));
  std::vector<std::vector<int32_t>> counts(threads, std::vector<int32_t>(kCoRated ? 0 : rows, 0));
  std::vector<std::vector<int32_t>> touched(threads);
  const int32_t* Ap = A.outerIndexPtr();
  const int32_t* Ai = A.innerIndexPtr();
  const float* Av = A.valuePtr();
  const int32_t* Tp = At.outerIndexPtr();
  const int32_t* Ti = At.innerIndexPtr();
  const float* Tv = At.valuePtr();
  detail::parallel_for(size_t(rows), threads, 16, [&](size_t row, int slot) {
    auto& acc = accs[slot];
    auto& dot = dots[slot];
    auto& cnt = counts[slot];
    auto& tl = touched[slot];
    tl.clear();
    const int32_t a = int32_t(row);
    for (int32_t p = Ap[a]; p < Ap[a + 1]; ++p) {
      const int32_t x = Ai[p];
      const double va = Av[p];
      for (int32_t q = Tp[x]; q < Tp[x + 1]; ++q) {
        const int32_t b = Ti[q];
        const double vb = Tv[q];
        if constexpr (kCoRated) {
          Acc& c = acc[b];
          if (c.n == 0) tl.push_back(b);
          c.n += 1;
          c.ab += va * vb;
          c.aa += va * va;
          c.bb += vb * vb;
          c.a += va;
          c.b += vb;
        } else {
          if (cnt[b] == 0) tl.push_back(b);
          cnt[b] += 1;
          dot[b] += va * vb;
        }
      }
    }
    auto& out = lists[a];
    for (int32_t b : tl) {
      double sim = 0;
      int32_t n;
      if constexpr (kCoRated) {
        Acc c = acc[b];
        acc[b] = Acc{};
        n = c.n;
        if (pearson) {
          double num = c.ab - c.a * c.b / n;
          double den = (c.aa - c.a * c.a / n) * (c.bb - c.b * c.b / n);
          sim = den > 1e-12 ? num / std::sqrt(den) : 0.0;
        } else {
          double den = c.aa * c.bb;
          sim = den > 0 ? c.ab / std::sqrt(den) : 0.0;
        }
      } else {
        n = cnt[b];
        double den = norm[a] * norm[b];
        sim = den > 0 ? dot[b] / den : 0.0;
        cnt[b] = 0;
        dot[b] = 0;
      }
      if (b == a || n < o.min_support()) continue;
      sim = std::clamp(sim, -1.0, 1.0);
      if (o.shrinkage() > 0) sim *= n / (n + o.shrinkage());
      if (sim != 0) out.push_back({b, float(sim)});
    }
    auto better = [](const KnnNeighbor& x, const KnnNeighbor& y) {
      return x.sim != y.sim ? x.sim > y.sim : x.index < y.index;
    };
    if (o.max_neighbors() > 0 && out.size() > size_t(o.max_neighbors())) {
      std::nth_element(out.begin(), out.begin() + o.max_neighbors(), out.end(), better);
      out.resize(o.max_neighbors());
    }
    std::sort(out.begin(), out.end(), better);
    out.shrink_to_fit();
  });
  ptr.assign(rows + 1, 0);
  for (int32_t r = 0; r < rows; ++r) ptr[r + 1] = ptr[r] + int64_t(lists[r].size());
  idx.resize(ptr[rows]);
  sims.resize(ptr[rows]);
  for (int32_t r = 0; r < rows; ++r) {
    int64_t off = ptr[r];
    for (const auto& nb : lists[r]) {
      idx[off] = nb.index;
      sims[off++] = nb.sim;
    }
    std::vector<KnnNeighbor>().swap(lists[r]);
  }
}

}  // namespace

void KnnModel::fit(const Interactions& train, int32_t num_users, int32_t num_items) {
  check_options(options_);
  train.check_consistent();
  MTREC_CHECK(num_users > 0 && num_items > 0, "KnnModel::fit needs a non-empty catalogue, got ", num_users,
              " users and ", num_items, " items");
  MTREC_CHECK(!train.empty(), "KnnModel::fit: no training interactions");
  auto s = std::make_unique<State>();
  s->num_users = num_users;
  s->num_items = num_items;

  std::vector<Eigen::Triplet<float, int32_t>> trip;
  trip.reserve(train.size());
  for (size_t r = 0; r < train.size(); ++r) {
    int32_t u = train.user[r], i = train.item[r];
    MTREC_CHECK(u >= 0 && u < num_users, "training interaction ", r, ": user ", u, " outside [0, ", num_users, ")");
    MTREC_CHECK(i >= 0 && i < num_items, "training interaction ", r, ": item ", i, " outside [0, ", num_items, ")");
    float v = train.has_rating ? train.rating[r] : 1.0f;
    MTREC_CHECK(std::isfinite(v), "training interaction ", r, ": rating ", v, " is not finite");
    trip.emplace_back(u, i, v);
  }
  s->by_user.resize(num_users, num_items);
  // Duplicates collapse in insertion order: the later value wins.
  s->by_user.setFromTriplets(trip.begin(), trip.end(), [](const float&, const float& later) { return later; });
  s->by_user.makeCompressed();
  s->by_item = s->by_user.transpose();
  s->by_item.makeCompressed();

  const int64_t nnz = s->by_user.nonZeros();
  const float* v = s->by_user.valuePtr();
  double sum = 0;
  s->r_min = s->r_max = v[0];
  for (int64_t p = 0; p < nnz; ++p) {
    sum += v[p];
    s->r_min = std::min(s->r_min, v[p]);
    s->r_max = std::max(s->r_max, v[p]);
  }
  s->mu = sum / nnz;
  s->user_mean = row_means(s->by_user, s->mu);
  s->item_mean = row_means(s->by_item, s->mu);
  if (uses_biases(options_)) {
    fit_biases(*s, options_);
  } else {
    s->bu.assign(num_users, 0.0f);
    s->bi.assign(num_items, 0.0f);
  }

  // Rows compared (A) and the same entries grouped by column (At), centred for the similarity.
  const bool item_based = options_.kind() == KnnKind::Item;
  SpRow A = item_based ? s->by_item : s->by_user;
  SpRow At = item_based ? s->by_user : s->by_item;
  auto centre = [&](SpRow& m, bool rows_are_items) {
    for (int32_t r = 0; r < m.outerSize(); ++r) {
      for (SpRow::InnerIterator it(m, r); it; ++it) {
        int32_t u = rows_are_items ? it.index() : r;
        int32_t i = rows_are_items ? r : it.index();
        switch (options_.similarity()) {
          case KnnSimilarity::AdjustedCosine:  // the mean of the other side of the compared rows
            it.valueRef() -= item_based ? s->user_mean[u] : s->item_mean[i];
            break;
          case KnnSimilarity::PearsonBaseline:
            it.valueRef() -= float(s->mu + s->bu[u] + s->bi[i]);
            break;
          default:
            break;
        }
      }
    }
  };
  centre(A, item_based);
  centre(At, !item_based);
  if (options_.similarity() == KnnSimilarity::Cosine) {
    similarity_rows<false>(A, At, options_, s->nb_ptr, s->nb_idx, s->nb_sim);
  } else {
    similarity_rows<true>(A, At, options_, s->nb_ptr, s->nb_idx, s->nb_sim);
  }
  state_ = std::move(s);
}

float KnnModel::baseline(int32_t user, int32_t item) const {
  MTREC_CHECK(state_, "KnnModel is not fitted");
  MTREC_CHECK(user >= 0 && user < state_->num_users, "user ", user, " outside [0, ", state_->num_users, ")");
  MTREC_CHECK(item >= 0 && item < state_->num_items, "item ", item, " outside [0, ", state_->num_items, ")");
  if (!options_.baseline()) return float(state_->mu);
  return float(state_->mu + state_->bu[user] + state_->bi[item]);
}

std::vector<KnnNeighbor> KnnModel::neighbors(int32_t row) const {
  MTREC_CHECK(state_, "KnnModel is not fitted");
  const int32_t rows = int32_t(state_->nb_ptr.size()) - 1;
  MTREC_CHECK(row >= 0 && row < rows, "neighbour row ", row, " outside [0, ", rows, ")");
  std::vector<KnnNeighbor> out;
  for (int64_t p = state_->nb_ptr[row]; p < state_->nb_ptr[row + 1]; ++p)
    out.push_back({state_->nb_idx[p], state_->nb_sim[p]});
  return out;
}

float KnnModel::predict(int32_t user, int32_t item) const {
  const float base = baseline(user, item);  // also checks fitted and ranges
  const State& s = *state_;
  const bool item_based = options_.kind() == KnnKind::Item;
  const int32_t row = item_based ? item : user;
  const int32_t other = item_based ? user : item;
  const SpRow& A = item_based ? s.by_item : s.by_user;
  double num = 0, den = 0;
  int found = 0;
  for (int64_t p = s.nb_ptr[row]; p < s.nb_ptr[row + 1] && found < options_.k(); ++p) {
    const double sim = s.nb_sim[p];
    // A negative weight in a mean of raw ratings is meaningless; residuals can take it (and
    // on ML-100K keeping them measured slightly better than dropping them).
    if (!options_.baseline() && sim <= 0) break;  // lists are sorted: the rest is no better
    const int32_t nb = s.nb_idx[p];
    const float r = lookup(A, nb, other);
    if (std::isnan(r)) continue;
    double target = r;
    if (options_.baseline()) target -= item_based ? s.mu + s.bu[user] + s.bi[nb] : s.mu + s.bu[nb] + s.bi[item];
    num += sim * target;
    den += std::abs(sim);
    ++found;
  }
  double pred;
  if (den > 0) {
    pred = (options_.baseline() ? base : 0.0) + num / den;
  } else if (options_.baseline()) {
    pred = base;
  } else {
    const bool user_known = s.by_user.outerIndexPtr()[user + 1] > s.by_user.outerIndexPtr()[user];
    const bool item_known = s.by_item.outerIndexPtr()[item + 1] > s.by_item.outerIndexPtr()[item];
    if (item_based) {
      pred = user_known ? s.user_mean[user] : item_known ? s.item_mean[item] : s.mu;
    } else {
      pred = item_known ? s.item_mean[item] : user_known ? s.user_mean[user] : s.mu;
    }
  }
  if (options_.clip()) pred = std::clamp(pred, double(s.r_min), double(s.r_max));
  return float(pred);
}

std::vector<float> KnnModel::predict(const Interactions& pairs) const {
  MTREC_CHECK(state_, "KnnModel is not fitted");
  MTREC_CHECK(pairs.user.size() == pairs.item.size(), "predict: ", pairs.user.size(), " users but ", pairs.item.size(),
              " items");
  std::vector<float> out(pairs.size());
  detail::parallel_for(pairs.size(), options_.threads(), 256,
                       [&](size_t r) { out[r] = predict(pairs.user[r], pairs.item[r]); });
  return out;
}

void KnnModel::score(int32_t user, const std::vector<int32_t>& items, std::vector<float>& out) const {
  MTREC_CHECK(state_, "KnnModel is not fitted");
  const State& s = *state_;
  MTREC_CHECK(user >= 0 && user < s.num_users, "user ", user, " outside [0, ", s.num_users, ")");
  out.assign(items.size(), 0.0f);
  for (int32_t item : items)
    MTREC_CHECK(item >= 0 && item < s.num_items, "candidate item ", item, " outside [0, ", s.num_items, ")");
  // Dense per-thread scratch over the catalogue: O(1) membership tests instead of searches.
  thread_local std::vector<float> scratch;
  if (scratch.size() < size_t(s.num_items)) scratch.assign(s.num_items, 0.0f);
  const int32_t* up = s.by_user.outerIndexPtr();
  const int32_t* ui = s.by_user.innerIndexPtr();
  if (options_.kind() == KnnKind::Item) {
    for (int32_t p = up[user]; p < up[user + 1]; ++p) scratch[ui[p]] = 1.0f;  // the user's items
    for (size_t c = 0; c < items.size(); ++c) {
      const int32_t row = items[c];
      const int64_t end = std::min(s.nb_ptr[row + 1], s.nb_ptr[row] + options_.k());
      double total = 0;
      for (int64_t p = s.nb_ptr[row]; p < end; ++p) total += s.nb_sim[p] * scratch[s.nb_idx[p]];
      out[c] = float(total);
    }
    for (int32_t p = up[user]; p < up[user + 1]; ++p) scratch[ui[p]] = 0.0f;
  } else {
    // Spread each of the user's k nearest users' similarity over the items they hold.
    const int64_t end = std::min(s.nb_ptr[user + 1], s.nb_ptr[user] + options_.k());
    for (int64_t p = s.nb_ptr[user]; p < end; ++p) {
      const int32_t v = s.nb_idx[p];
      for (int32_t q = up[v]; q < up[v + 1]; ++q) scratch[ui[q]] += s.nb_sim[p];
    }
    for (size_t c = 0; c < items.size(); ++c) out[c] = scratch[items[c]];
    for (int64_t p = s.nb_ptr[user]; p < end; ++p) {
      const int32_t v = s.nb_idx[p];
      for (int32_t q = up[v]; q < up[v + 1]; ++q) scratch[ui[q]] = 0.0f;
    }
  }
}

// ---- binary form ----------------------------------------------------------------------------

namespace {

constexpr char kMagic[8] = {'M', 'T', 'R', 'K', 'N', 'N', '\0', '\1'};

class Writer {
 public:
  template <class T>
  void put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    buf_.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  template <class T>
  void put_array(const T* p, size_t n) {
    put<uint64_t>(n);
    buf_.append(reinterpret_cast<const char*>(p), n * sizeof(T));
  }
  template <class T>
  void put_vec(const std::vector<T>& v) {
    put_array(v.data(), v.size());
  }
  std::string& str() { return buf_; }

 private:
  std::string buf_;
};

class Reader {
 public:
  Reader(std::string_view b, const std::string& source) : b_(b), source_(source) {}
  template <class T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  template <class T>
  std::vector<T> get_vec(size_t expected, const char* what) {
    uint64_t n = get<uint64_t>();
    need(0);
    MTREC_CHECK(n <= (b_.size() - pos_) / sizeof(T), source_, ": KNN model field '", what, "' claims ", n,
                " values but only ", b_.size() - pos_, " bytes remain");
    MTREC_CHECK(n == expected, source_, ": KNN model field '", what, "' holds ", n, " values, expected ", expected);
    need(n * sizeof(T));
    std::vector<T> v(n);
    if (n) std::memcpy(v.data(), b_.data() + pos_, n * sizeof(T));
    pos_ += n * sizeof(T);
    return v;
  }
  uint64_t peek_count() {
    need(sizeof(uint64_t));
    uint64_t n;
    std::memcpy(&n, b_.data() + pos_, sizeof(n));
    return n;
  }
  bool done() const { return pos_ == b_.size(); }

 private:
  void need(size_t n) {
    MTREC_CHECK(n <= b_.size() - pos_, source_, ": KNN model truncated at byte ", pos_, " (needs ", n, " more, has ",
                b_.size() - pos_, ")");
  }
  std::string_view b_;
  const std::string& source_;
  size_t pos_ = 0;
};

template <class P, class I>
void check_csr(const std::vector<P>& ptr, const std::vector<I>& idx, int64_t bound, const std::string& source,
               const char* what) {
  MTREC_CHECK(!ptr.empty() && ptr.front() == 0 && ptr.back() == P(idx.size()), source, ": KNN model ", what,
              " offsets are inconsistent");
  for (size_t r = 0; r + 1 < ptr.size(); ++r)
    MTREC_CHECK(ptr[r] <= ptr[r + 1], source, ": KNN model ", what, " offsets decrease at row ", r);
  for (size_t p = 0; p < idx.size(); ++p)
    MTREC_CHECK(idx[p] >= 0 && idx[p] < bound, source, ": KNN model ", what, " index ", idx[p], " at ", p,
                " outside [0, ", bound, ")");
}

}  // namespace

std::string KnnModel::to_bytes() const {
  MTREC_CHECK(state_, "KnnModel is not fitted: nothing to save");
  const State& s = *state_;
  const KnnOptions& o = options_;
  Writer w;
  w.str().append(kMagic, sizeof(kMagic));
  w.put<int32_t>(o.kind() == KnnKind::User ? 0 : 1);
  w.put<int32_t>(static_cast<int32_t>(o.similarity()));
  w.put<int32_t>(o.k());
  w.put<double>(o.shrinkage());
  w.put<int32_t>(o.min_support());
  w.put<int32_t>(o.max_neighbors());
  w.put<uint8_t>(o.baseline());
  w.put<int32_t>(o.baseline_epochs());
  w.put<double>(o.reg_user());
  w.put<double>(o.reg_item());
  w.put<uint8_t>(o.clip());
  w.put<int32_t>(o.threads());
  w.put<int32_t>(s.num_users);
  w.put<int32_t>(s.num_items);
  w.put<double>(s.mu);
  w.put<float>(s.r_min);
  w.put<float>(s.r_max);
  w.put_vec(s.bu);
  w.put_vec(s.bi);
  w.put_vec(s.user_mean);
  w.put_vec(s.item_mean);
  w.put_array(s.by_user.outerIndexPtr(), size_t(s.num_users) + 1);
  w.put_array(s.by_user.innerIndexPtr(), size_t(s.by_user.nonZeros()));
  w.put_array(s.by_user.valuePtr(), size_t(s.by_user.nonZeros()));
  w.put_vec(s.nb_ptr);
  w.put_vec(s.nb_idx);
  w.put_vec(s.nb_sim);
  return std::move(w.str());
}

KnnModel KnnModel::from_bytes(std::string_view bytes, const std::string& source) {
  MTREC_CHECK(bytes.size() >= sizeof(kMagic) && std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) == 0, source,
              ": not an mtrec KNN model (bad magic or version)");
  Reader r(bytes.substr(sizeof(kMagic)), source);
  KnnOptions o;
  int32_t kind = r.get<int32_t>();
  MTREC_CHECK(kind == 0 || kind == 1, source, ": KNN model has unknown kind ", kind);
  o.kind() = kind == 0 ? KnnKind::User : KnnKind::Item;
  int32_t sim = r.get<int32_t>();
  MTREC_CHECK(sim >= 0 && sim <= static_cast<int32_t>(KnnSimilarity::PearsonBaseline), source,
              ": KNN model has unknown similarity ", sim);
  o.similarity() = static_cast<KnnSimilarity>(sim);
  o.k() = r.get<int32_t>();
  o.shrinkage() = r.get<double>();
  o.min_support() = r.get<int32_t>();
  o.max_neighbors() = r.get<int32_t>();
  o.baseline() = r.get<uint8_t>() != 0;
  o.baseline_epochs() = r.get<int32_t>();
  o.reg_user() = r.get<double>();
  o.reg_item() = r.get<double>();
  o.clip() = r.get<uint8_t>() != 0;
  o.threads() = r.get<int32_t>();
  check_options(o);
  auto s = std::make_unique<State>();
  s->num_users = r.get<int32_t>();
  s->num_items = r.get<int32_t>();
  MTREC_CHECK(s->num_users > 0 && s->num_items > 0, source, ": KNN model has ", s->num_users, " users and ",
              s->num_items, " items");
  s->mu = r.get<double>();
  s->r_min = r.get<float>();
  s->r_max = r.get<float>();
  s->bu = r.get_vec<float>(s->num_users, "user biases");
  s->bi = r.get_vec<float>(s->num_items, "item biases");
  s->user_mean = r.get_vec<float>(s->num_users, "user means");
  s->item_mean = r.get_vec<float>(s->num_items, "item means");
  auto outer = r.get_vec<int32_t>(size_t(s->num_users) + 1, "rating offsets");
  auto inner = r.get_vec<int32_t>(r.peek_count(), "rating items");
  auto vals = r.get_vec<float>(inner.size(), "ratings");
  check_csr(outer, inner, s->num_items, source, "rating");
  for (int32_t u = 0; u < s->num_users; ++u)
    for (int32_t p = outer[u] + 1; p < outer[u + 1]; ++p)
      MTREC_CHECK(inner[p - 1] < inner[p], source, ": KNN model ratings of user ", u, " are not sorted");
  s->by_user = Eigen::Map<const SpRow>(s->num_users, s->num_items, int32_t(inner.size()), outer.data(), inner.data(),
                                       vals.data());
  s->by_user.makeCompressed();
  s->by_item = s->by_user.transpose();
  s->by_item.makeCompressed();
  const int32_t rows = o.kind() == KnnKind::Item ? s->num_items : s->num_users;
  s->nb_ptr = r.get_vec<int64_t>(size_t(rows) + 1, "neighbour offsets");
  s->nb_idx = r.get_vec<int32_t>(r.peek_count(), "neighbours");
  s->nb_sim = r.get_vec<float>(s->nb_idx.size(), "similarities");
  check_csr(s->nb_ptr, s->nb_idx, rows, source, "neighbour");
  MTREC_CHECK(r.done(), source, ": KNN model has trailing bytes");
  KnnModel m(o);
  m.state_ = std::move(s);
  return m;
}

}  // namespace mtrec
