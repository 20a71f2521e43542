#include "mtrec/data/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "mtrec/core/check.h"

namespace mtrec {

NegativeSampler::NegativeSampler(const Interactions& positives, int32_t num_users, int32_t num_items, Kind kind,
                                 uint64_t seed, double popularity_alpha)
    : num_items_(num_items), kind_(kind), rng_(derive_seed(seed, "negative-sampler")) {
  MTREC_CHECK(num_users >= 0 && num_items > 0, "negative sampler needs num_users >= 0 and num_items > 0, got ",
              num_users, " and ", num_items);
  MTREC_CHECK(popularity_alpha >= 0.0 && std::isfinite(popularity_alpha), "popularity_alpha must be >= 0, got ",
              popularity_alpha);
  positives.check_consistent();
  pos_.resize(static_cast<size_t>(num_users));
  std::vector<int64_t> count(static_cast<size_t>(num_items), 0);
  for (size_t r = 0; r < positives.size(); ++r) {
    const int32_t u = positives.user[r], i = positives.item[r];
    MTREC_CHECK(u >= 0 && u < num_users, "positive ", r, " has user id ", u, " outside [0, ", num_users, ")");
    MTREC_CHECK(i >= 0 && i < num_items, "positive ", r, " has item id ", i, " outside [0, ", num_items, ")");
    pos_[static_cast<size_t>(u)].push_back(i);
    count[static_cast<size_t>(i)]++;
  }
  for (auto& p : pos_) {
    std::sort(p.begin(), p.end());
    p.erase(std::unique(p.begin(), p.end()), p.end());
    p.shrink_to_fit();
  }
  if (kind_ == Kind::Popularity) {
    cdf_.resize(static_cast<size_t>(num_items));
    double acc = 0;
    for (size_t i = 0; i < count.size(); ++i) {
      acc += count[i] > 0 ? std::pow(static_cast<double>(count[i]), popularity_alpha) : 0.0;
      cdf_[i] = acc;
    }
  }
}

bool NegativeSampler::is_positive(int32_t user, int32_t item) const {
  const auto& p = positives(user);
  return std::binary_search(p.begin(), p.end(), item);
}

const std::vector<int32_t>& NegativeSampler::positives(int32_t user) const {
  MTREC_CHECK(user >= 0 && static_cast<size_t>(user) < pos_.size(), "user id ", user, " outside [0, ", pos_.size(),
              ")");
  return pos_[static_cast<size_t>(user)];
}

std::vector<int32_t> NegativeSampler::sample(int32_t user, int n) {
  const auto& pos = positives(user);
  MTREC_CHECK(n >= 0, "number of negatives must be >= 0, got ", n);
  const int64_t unseen = static_cast<int64_t>(num_items_) - static_cast<int64_t>(pos.size());
  MTREC_CHECK(unseen > 0, "user ", user, " has interacted with all ", num_items_,
              " items: there is no negative to sample");
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(n));
  if (n == 0) return out;
  const bool popular = kind_ == Kind::Popularity && !cdf_.empty() && cdf_.back() > 0;
  auto weight = [&](int32_t i) {
    return popular ? cdf_[static_cast<size_t>(i)] - (i > 0 ? cdf_[static_cast<size_t>(i) - 1] : 0.0) : 1.0;
  };

  // Fast path: rejection sampling against the sorted positives (binary search). Used when the
  // user has seen at most half the catalogue and n is well below the unseen count; a bounded
  // number of attempts guards against popularity mass concentrated in the user's positives.
  std::unordered_set<int32_t> picked;
  if (static_cast<int64_t>(pos.size()) * 2 <= num_items_ && n * int64_t{2} <= unseen) {
    std::uniform_int_distribution<int32_t> uni(0, num_items_ - 1);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const int64_t max_attempts = 64 + 16 * int64_t{n};
    for (int64_t a = 0; a < max_attempts && static_cast<int>(out.size()) < n; ++a) {
      int32_t i;
      if (popular) {
        const double t = unit(rng_) * cdf_.back();
        i = static_cast<int32_t>(std::upper_bound(cdf_.begin(), cdf_.end(), t) - cdf_.begin());
        if (i >= num_items_) i = num_items_ - 1;
      } else {
        i = uni(rng_);
      }
      if (std::binary_search(pos.begin(), pos.end(), i)) continue;
      if (n > 1 && !picked.insert(i).second) continue;
      out.push_back(i);
    }
    if (static_cast<int>(out.size()) == n) return out;
  }

  // Slow path: enumerate the unseen items not yet picked (the user has seen most of the
  // catalogue, or rejection kept failing).
  std::vector<int32_t> cand;
  cand.reserve(static_cast<size_t>(unseen));
  size_t pi = 0;
  for (int32_t i = 0; i < num_items_; ++i) {
    while (pi < pos.size() && pos[pi] < i) ++pi;
    if (pi < pos.size() && pos[pi] == i) continue;
    if (!picked.empty() && picked.count(i)) continue;
    cand.push_back(i);
  }
  const size_t need = static_cast<size_t>(n) - out.size();
  const size_t take = std::min(need, cand.size());
  if (popular) {
    // Weighted sampling without replacement (Efraimidis-Spirakis keys log(U)/w); items of
    // weight 0 rank below every weighted item, in random order among themselves.
    std::uniform_real_distribution<double> unit(std::nextafter(0.0, 1.0), 1.0);
    std::vector<std::pair<double, int32_t>> keyed(cand.size());
    for (size_t c = 0; c < cand.size(); ++c) {
      const double w = weight(cand[c]), u = unit(rng_);
      keyed[c] = {w > 0 ? std::log(u) / w : -1e300 * (1.0 + u), cand[c]};
    }
    std::partial_sort(keyed.begin(), keyed.begin() + static_cast<std::ptrdiff_t>(take), keyed.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t c = 0; c < take; ++c) out.push_back(keyed[c].second);
  } else {
    for (size_t c = 0; c < take; ++c) {
      std::uniform_int_distribution<size_t> pick(c, cand.size() - 1);
      std::swap(cand[c], cand[pick(rng_)]);
      out.push_back(cand[c]);
    }
  }
  if (static_cast<int>(out.size()) == n) return out;

  // n exceeds the unseen items: every unseen item is in already; the rest repeat, drawn
  // with replacement from the unseen items.
  std::vector<int32_t> unseen_items;
  std::vector<double> cum;
  size_t pj = 0;
  double acc = 0;
  for (int32_t i = 0; i < num_items_; ++i) {
    while (pj < pos.size() && pos[pj] < i) ++pj;
    if (pj < pos.size() && pos[pj] == i) continue;
    unseen_items.push_back(i);
    acc += weight(i);
    cum.push_back(acc);
  }
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<size_t> uni(0, unseen_items.size() - 1);
  while (static_cast<int>(out.size()) < n) {
    if (acc > 0) {
      auto c = static_cast<size_t>(std::upper_bound(cum.begin(), cum.end(), unit(rng_) * acc) - cum.begin());
      out.push_back(unseen_items[std::min(c, unseen_items.size() - 1)]);
    } else {
      out.push_back(unseen_items[uni(rng_)]);
    }
  }
  return out;
}

}  // namespace mtrec
