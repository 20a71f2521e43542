#include "mtrec/data/split.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "mtrec/core/check.h"
#include "mtrec/core/random.h"

namespace mtrec {
namespace {

std::vector<size_t> shuffled_rows(size_t n, uint64_t seed, const char* stream) {
  std::vector<size_t> rows(n);
  std::iota(rows.begin(), rows.end(), size_t{0});
  Rng rng(derive_seed(seed, stream));
  std::shuffle(rows.begin(), rows.end(), rng);
  return rows;
}

std::vector<size_t> sorted_slice(const std::vector<size_t>& rows, size_t begin, size_t end) {
  std::vector<size_t> out(rows.begin() + static_cast<std::ptrdiff_t>(begin),
                          rows.begin() + static_cast<std::ptrdiff_t>(end));
  std::sort(out.begin(), out.end());
  return out;
}

void check_ratio(double r, const char* name) { MTREC_CHECK(r >= 0.0 && r < 1.0, name, " must lie in [0, 1), got ", r); }

}  // namespace

Split with_validation(const Split& s, double fraction, uint64_t seed) {
  check_ratio(fraction, "validation fraction");
  if (!s.valid.empty() || fraction == 0 || s.train.size() < 2) return s;
  std::vector<size_t> order = shuffled_rows(s.train.size(), seed, "split-validation");
  const size_t n_valid = std::max<size_t>(1, static_cast<size_t>(std::llround(fraction * s.train.size())));
  Split out;
  out.test = s.test;
  for (size_t k = 0; k < order.size(); ++k) (k < n_valid ? out.valid : out.train).push_back(s.train[order[k]]);
  std::sort(out.train.begin(), out.train.end());
  std::sort(out.valid.begin(), out.valid.end());
  return out;
}

Split random_split(const Interactions& x, double test_ratio, double valid_ratio, uint64_t seed) {
  check_ratio(test_ratio, "test_ratio");
  check_ratio(valid_ratio, "valid_ratio");
  MTREC_CHECK(test_ratio + valid_ratio < 1.0, "test_ratio + valid_ratio must be < 1, got ", test_ratio, " + ",
              valid_ratio);
  x.check_consistent();
  const size_t n = x.size();
  const auto n_test = static_cast<size_t>(std::llround(static_cast<double>(n) * test_ratio));
  const auto n_valid = std::min(n - n_test, static_cast<size_t>(std::llround(static_cast<double>(n) * valid_ratio)));
  auto rows = shuffled_rows(n, seed, "random-split");
  Split s;
  s.test = sorted_slice(rows, 0, n_test);
  s.valid = sorted_slice(rows, n_test, n_test + n_valid);
  s.train = sorted_slice(rows, n_test + n_valid, n);
  return s;
}

std::vector<Split> kfold_split(const Interactions& x, int k, uint64_t seed) {
  MTREC_CHECK(k >= 2, "k-fold needs k >= 2, got k=", k);
  x.check_consistent();
  const size_t n = x.size();
  MTREC_CHECK(static_cast<size_t>(k) <= n, "k-fold needs at least k rows: k=", k, " rows=", n);
  auto rows = shuffled_rows(n, seed, "kfold-split");
  std::vector<Split> folds(static_cast<size_t>(k));
  for (size_t f = 0; f < folds.size(); ++f) {
    const size_t lo = f * n / folds.size(), hi = (f + 1) * n / folds.size();
    folds[f].test = sorted_slice(rows, lo, hi);
    std::vector<size_t> rest;
    rest.reserve(n - (hi - lo));
    rest.insert(rest.end(), rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(lo));
    rest.insert(rest.end(), rows.begin() + static_cast<std::ptrdiff_t>(hi), rows.end());
    std::sort(rest.begin(), rest.end());
    folds[f].train = std::move(rest);
  }
  return folds;
}

std::vector<std::vector<size_t>> user_sequences(const Interactions& x, int32_t num_users, uint64_t seed) {
  MTREC_CHECK(x.has_timestamp, "time-ordered sequences need timestamps; these interactions have none");
  x.check_consistent();
  MTREC_CHECK(num_users >= 0, "num_users must be >= 0, got ", num_users);
  std::vector<std::vector<size_t>> seq(static_cast<size_t>(num_users));
  for (size_t r = 0; r < x.size(); ++r) {
    const int32_t u = x.user[r];
    MTREC_CHECK(u >= 0 && u < num_users, "interaction ", r, " has user id ", u, " outside [0, ", num_users, ")");
    seq[static_cast<size_t>(u)].push_back(r);
  }
  // Ties in time are broken by a seeded shuffle of each user's rows (then a stable sort by
  // time), never by item id: an id order would be an artefact a sequence model could learn.
  const uint64_t base = derive_seed(seed, "user-sequences");
  for (size_t u = 0; u < seq.size(); ++u) {
    auto& rows = seq[u];
    if (rows.size() < 2) continue;
    Rng rng(base ^ (0x9E3779B97F4A7C15ull * (u + 1)));
    std::shuffle(rows.begin(), rows.end(), rng);
    std::stable_sort(rows.begin(), rows.end(), [&](size_t a, size_t b) { return x.timestamp[a] < x.timestamp[b]; });
  }
  return seq;
}

Split leave_one_out_split(const Interactions& x, uint64_t seed) {
  MTREC_CHECK(x.has_timestamp, "leave-one-out by time needs timestamps; these interactions have none");
  int32_t num_users = 0;
  for (int32_t u : x.user) num_users = std::max(num_users, u + 1);
  auto seq = user_sequences(x, num_users, seed);
  Split s;
  s.train.reserve(x.size());
  for (const auto& rows : seq) {
    if (rows.size() < 3) {
      s.train.insert(s.train.end(), rows.begin(), rows.end());
      continue;
    }
    s.test.push_back(rows.back());
    s.valid.push_back(rows[rows.size() - 2]);
    s.train.insert(s.train.end(), rows.begin(), rows.end() - 2);
  }
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.valid.begin(), s.valid.end());
  std::sort(s.test.begin(), s.test.end());
  return s;
}

Split temporal_split(const Interactions& x, double train_frac, double valid_frac) {
  MTREC_CHECK(x.has_timestamp, "a temporal split needs timestamps; these interactions have none");
  MTREC_CHECK(train_frac > 0.0 && train_frac <= 1.0, "train_frac must lie in (0, 1], got ", train_frac);
  MTREC_CHECK(valid_frac >= 0.0 && valid_frac < 1.0, "valid_frac must lie in [0, 1), got ", valid_frac);
  MTREC_CHECK(train_frac + valid_frac <= 1.0, "train_frac + valid_frac must be <= 1, got ", train_frac, " + ",
              valid_frac);
  x.check_consistent();
  const size_t n = x.size();
  Split s;
  if (n == 0) return s;
  std::vector<int64_t> ts = x.timestamp;
  std::sort(ts.begin(), ts.end());
  // Cut points are timestamps (quantiles), so rows sharing a timestamp never straddle a cut:
  // everything in train happened strictly before everything in valid and test.
  auto cut = [&](double frac) {
    const auto idx = static_cast<size_t>(std::floor(frac * static_cast<double>(n)));
    return idx >= n ? std::numeric_limits<int64_t>::max() : ts[idx];
  };
  const int64_t t1 = cut(train_frac), t2 = cut(train_frac + valid_frac);
  for (size_t r = 0; r < n; ++r) {
    const int64_t t = x.timestamp[r];
    (t < t1 ? s.train : t < t2 ? s.valid : s.test).push_back(r);
  }
  return s;
}

}  // namespace mtrec
