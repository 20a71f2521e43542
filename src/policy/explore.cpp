#include "mtrec/policy/explore.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <unordered_set>

#include "mtrec/core/check.h"

namespace mtrec {
namespace {

// 8-point Gauss–Legendre on [-1, 1].
constexpr double kGlNode[8] = {-0.9602898564975363, -0.7966664774136267, -0.5255324099163290, -0.1834346424956498,
                               0.1834346424956498,  0.5255324099163290,  0.7966664774136267,  0.9602898564975363};
constexpr double kGlWeight[8] = {0.1012285362903763, 0.2223810344533745, 0.3137066458778873, 0.3626837833783620,
                                 0.3626837833783620, 0.3137066458778873, 0.2223810344533745, 0.1012285362903763};

// Multiplies the truncated polynomial `c` (degrees 0..K-1) by (q + p z).
inline void times_bernoulli(double* c, int64_t K, double p, double q) {
  for (int64_t m = K - 1; m > 0; --m) c[m] = c[m] * q + c[m - 1] * p;
  c[0] *= q;
}

// P(N(t) <= K-1) for the arrival count of all items by time t.
double below_k(const std::vector<double>& w, int64_t K, double t, std::vector<double>& c) {
  c.assign(size_t(K), 0.0);
  c[0] = 1;
  for (double wj : w) {
    if (wj <= 0) continue;
    times_bernoulli(c.data(), K, -std::expm1(-wj * t), std::exp(-wj * t));
  }
  return std::accumulate(c.begin(), c.end(), 0.0);
}

}  // namespace

std::vector<double> plackett_luce_marginals(const std::vector<double>& w, int64_t K) {
  const auto n = int64_t(w.size());
  MTREC_CHECK(K >= 1 && K <= n, "Plackett-Luce marginals need 1 <= k <= items, got k=", K, " items=", n);
  const int64_t positive = std::count_if(w.begin(), w.end(), [](double x) { return x > 0; });
  MTREC_CHECK(positive >= K, "Plackett-Luce over ", n, " items with ", positive, " positive weights cannot fill k=", K,
              " positions");
  std::vector<double> M(size_t(n * K), 0.0);
  for (int64_t i = 0; i < n; ++i) M[size_t(i * K)] = w[size_t(i)];  // the first pick: w_i exactly
  if (K == 1) return M;

  // Integration range in t. Below t_lo the k >= 1 integrands are at most w_i t (at least one
  // other arrival); above t_hi fewer than K arrivals have negligible probability, and every
  // item's integrand is at most w_i P(N(t) <= K-1).
  std::vector<double> scratch;
  const double t_lo = 1e-6;
  double t_hi = 1;
  while (below_k(w, K, t_hi, scratch) > 1e-15 && t_hi < 1e300) t_hi *= 2;
  t_hi *= 2;
  const double x_lo = std::log(t_lo), x_hi = std::log(t_hi);
  const auto panels = int64_t(std::ceil(x_hi - x_lo));  // panels of width <= 1 in log t
  const double h = (x_hi - x_lo) / double(panels);

  std::vector<double> p(static_cast<size_t>(n)), q(static_cast<size_t>(n));
  std::vector<double> L(static_cast<size_t>(K)), F(static_cast<size_t>(K)), Q(static_cast<size_t>(K));
  std::vector<int64_t> heavy;
  std::vector<double> pre, suf;
  for (int64_t panel = 0; panel < panels; ++panel) {
    for (int g = 0; g < 8; ++g) {
      const double x = x_lo + h * (double(panel) + 0.5 * (kGlNode[g] + 1));
      const double t = std::exp(x);
      const double omega = 0.5 * h * kGlWeight[g] * t;  // dt = t dx
      // Light items (P(arrived) <= 1/2) are divided out of the total stably (forward division
      // amplifies by p/q <= 1); the few heavy ones are left out by prefix/suffix products.
      std::fill(L.begin(), L.end(), 0.0);
      L[0] = 1;
      heavy.clear();
      for (int64_t j = 0; j < n; ++j) {
        const double wj = w[size_t(j)];
        p[size_t(j)] = wj > 0 ? -std::expm1(-wj * t) : 0.0;
        q[size_t(j)] = wj > 0 ? std::exp(-wj * t) : 1.0;
        if (p[size_t(j)] > 0.5) {
          heavy.push_back(j);
        } else if (wj > 0) {
          times_bernoulli(L.data(), K, p[size_t(j)], q[size_t(j)]);
        }
      }
      const auto H = int64_t(heavy.size());
      // pre[h] = L * heavy[0..h), suf[h] = heavy(h..H)
      pre.assign(size_t((H + 1) * K), 0.0);
      suf.assign(size_t((H + 1) * K), 0.0);
      std::copy(L.begin(), L.end(), pre.begin());
      for (int64_t a = 0; a < H; ++a) {
        std::copy_n(pre.begin() + a * K, K, pre.begin() + (a + 1) * K);
        times_bernoulli(pre.data() + (a + 1) * K, K, p[size_t(heavy[size_t(a)])], q[size_t(heavy[size_t(a)])]);
      }
      suf[size_t(H * K)] = 1;
      for (int64_t a = H - 1; a >= 0; --a) {
        std::copy_n(suf.begin() + (a + 1) * K, K, suf.begin() + a * K);
        times_bernoulli(suf.data() + a * K, K, p[size_t(heavy[size_t(a)])], q[size_t(heavy[size_t(a)])]);
      }
      std::copy_n(pre.begin() + H * K, K, F.begin());
      if (std::accumulate(F.begin(), F.end(), 0.0) < 1e-300) continue;  // no mass below K arrivals
      for (int64_t i = 0; i < n; ++i) {
        const double wi = w[size_t(i)];
        if (wi <= 0 || p[size_t(i)] > 0.5) continue;
        // Q = F / (q + p z); w_i e^{-w_i t} Q_m = w_i (F_m - p Q_{m-1}).
        const double pi = p[size_t(i)], qi = q[size_t(i)];
        double prev = F[0] / qi;
        double* row = M.data() + i * K;
        for (int64_t m = 1; m < K; ++m) {
          const double num = F[size_t(m)] - pi * prev;
          row[m] += omega * wi * num;
          prev = num / qi;
        }
      }
      for (int64_t a = 0; a < H; ++a) {
        const int64_t i = heavy[size_t(a)];
        const double* A = pre.data() + a * K;
        const double* B = suf.data() + (a + 1) * K;
        for (int64_t m = 0; m < K; ++m) {
          double s = 0;
          for (int64_t r = 0; r <= m; ++r) s += A[r] * B[m - r];
          Q[size_t(m)] = s;
        }
        double* row = M.data() + i * K;
        const double f = omega * w[size_t(i)] * q[size_t(i)];
        for (int64_t m = 1; m < K; ++m) row[m] += f * Q[size_t(m)];
      }
    }
  }
  return M;
}

SlateDistribution SlateDistribution::ranking(std::vector<int32_t> order, int32_t items, int64_t k, double epsilon,
                                             bool marginals) {
  MTREC_CHECK(k >= 1 && k <= items, "a slate needs 1 <= k <= items, got k=", k, " items=", items);
  MTREC_CHECK(epsilon >= 0 && epsilon <= 1, "epsilon must lie in [0, 1], got ", epsilon);
  MTREC_CHECK(epsilon == 1 || int64_t(order.size()) >= k, "a ranking of ", order.size(), " items cannot fill k=", k);
  SlateDistribution d;
  d.n_ = items;
  d.k_ = k;
  d.epsilon_ = epsilon;
  if (epsilon < 1) order.resize(size_t(k));
  d.order_ = std::move(order);
  if (marginals) d.marginals_.assign(size_t(items) * size_t(k), epsilon / items);
  if (epsilon < 1) {
    for (int64_t pos = 0; pos < k; ++pos) {
      const int32_t i = d.order_[size_t(pos)];
      MTREC_CHECK(
          i >= 0 && i < items && std::find(d.order_.begin(), d.order_.begin() + pos, i) == d.order_.begin() + pos,
          "a ranking must hold distinct items in [0, ", items, "), got ", i, " at position ", pos);
      if (marginals) d.marginals_[size_t(i) * size_t(k) + size_t(pos)] += 1 - epsilon;
    }
  }
  return d;
}

SlateDistribution SlateDistribution::plackett_luce(std::vector<double> weights, int64_t k, double epsilon,
                                                   bool marginals) {
  const auto n = int32_t(weights.size());
  MTREC_CHECK(k >= 1 && k <= n, "a slate needs 1 <= k <= items, got k=", k, " items=", n);
  MTREC_CHECK(epsilon >= 0 && epsilon <= 1, "epsilon must lie in [0, 1], got ", epsilon);
  double total = 0;
  for (double x : weights) {
    MTREC_CHECK(std::isfinite(x) && x >= 0, "Plackett-Luce weights must be finite and >= 0, got ", x);
    total += x;
  }
  MTREC_CHECK(total > 0, "Plackett-Luce weights are all zero");
  for (double& x : weights) x /= total;
  SlateDistribution d;
  d.n_ = n;
  d.k_ = k;
  d.epsilon_ = epsilon;
  if (marginals) {
    d.marginals_ = plackett_luce_marginals(weights, k);
    for (double& m : d.marginals_) m = (1 - epsilon) * m + epsilon / n;
  } else {
    const int64_t positive = std::count_if(weights.begin(), weights.end(), [](double x) { return x > 0; });
    MTREC_CHECK(positive >= k, "Plackett-Luce over ", n, " items with ", positive,
                " positive weights cannot fill k=", k, " positions");
  }
  d.weights_ = std::move(weights);
  return d;
}

Slate SlateDistribution::sample(Rng& rng) const {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  Slate s;
  s.items.reserve(size_t(k_));
  const bool uniform = epsilon_ > 0 && (epsilon_ >= 1 || unit(rng) < epsilon_);
  if (uniform) {
    std::unordered_set<int32_t> taken;
    std::uniform_int_distribution<int32_t> pick(0, n_ - 1);
    while (int64_t(s.items.size()) < k_) {
      const int32_t i = pick(rng);
      if (taken.insert(i).second) s.items.push_back(i);
    }
  } else if (weights_.empty()) {
    s.items.assign(order_.begin(), order_.begin() + k_);
  } else {
    // Exponential race: E_i ~ Exp(w_i); the K earliest arrivals in order are a Plackett–Luce draw.
    std::vector<std::pair<double, int32_t>> arrival;
    arrival.reserve(size_t(n_));
    for (int32_t i = 0; i < n_; ++i) {
      const double u = unit(rng);
      if (weights_[size_t(i)] > 0) arrival.emplace_back(-std::log1p(-u) / weights_[size_t(i)], i);
    }
    std::partial_sort(arrival.begin(), arrival.begin() + k_, arrival.end());
    for (int64_t j = 0; j < k_; ++j) s.items.push_back(arrival[size_t(j)].second);
  }
  for (int64_t pos = 0; pos < k_; ++pos) {
    if (has_marginals()) s.propensity.push_back(marginal(s.items[size_t(pos)], pos));
    s.prefix.push_back(prefix_probability(s.items.data(), pos + 1));
  }
  return s;
}

double SlateDistribution::marginal(int32_t item, int64_t position) const {
  MTREC_CHECK(has_marginals(), "this slate distribution was built without marginals");
  MTREC_CHECK(item >= 0 && item < n_ && position >= 0 && position < k_, "marginal of item ", item, " at position ",
              position, " of a k=", k_, " distribution over ", n_, " items");
  return marginals_[size_t(item) * size_t(k_) + size_t(position)];
}

double SlateDistribution::prefix_probability(const int32_t* slate, int64_t length) const {
  MTREC_CHECK(length >= 0 && length <= k_, "a prefix of length ", length, " of a k=", k_, " slate");
  double uniform = 1, ranked = 1, left = 1;
  for (int64_t j = 0; j < length; ++j) {
    const int32_t i = slate[j];
    MTREC_CHECK(i >= 0 && i < n_, "slate item ", i, " outside [0, ", n_, ")");
    for (int64_t l = 0; l < j; ++l)
      if (slate[l] == i) return 0;  // a repeated item is impossible
    uniform /= double(n_ - j);
    if (weights_.empty()) {
      if (epsilon_ < 1 && order_[size_t(j)] != i) ranked = 0;
    } else {
      const double wi = weights_[size_t(i)];
      ranked *= left > 0 ? wi / left : 0;
      left = std::max(0.0, left - wi);
    }
  }
  if (epsilon_ >= 1) return uniform;
  return (1 - epsilon_) * ranked + epsilon_ * uniform;
}

double SlateDistribution::expected(const std::vector<double>& position_weight, const std::vector<double>& value) const {
  MTREC_CHECK(has_marginals(), "this slate distribution was built without marginals");
  MTREC_CHECK(int64_t(position_weight.size()) == k_ && int64_t(value.size()) == n_,
              "expected(): ", position_weight.size(), " position weights and ", value.size(), " values for k=", k_,
              " items=", n_);
  double total = 0;
  for (int32_t i = 0; i < n_; ++i) {
    const double* row = marginals_.data() + size_t(i) * size_t(k_);
    double s = 0;
    for (int64_t pos = 0; pos < k_; ++pos) s += row[pos] * position_weight[size_t(pos)];
    total += s * value[size_t(i)];
  }
  return total;
}

ExplorationOptions parse_exploration(std::string_view spec) {
  ExplorationOptions o;
  const std::string text(spec);
  const size_t colon = text.find(':');
  o.kind(text.substr(0, colon));
  const auto& kind = o.kind();
  MTREC_CHECK(
      kind == "greedy" || kind == "epsilon_greedy" || kind == "softmax" || kind == "squarecb" || kind == "uniform",
      "exploration '", text, "': unknown policy '", kind, "' (greedy, epsilon_greedy, softmax, squarecb, uniform)");
  bool epsilon_given = false;
  if (colon != std::string::npos) {
    std::string rest = text.substr(colon + 1);
    size_t start = 0;
    while (start <= rest.size()) {
      const size_t comma = std::min(rest.find(',', start), rest.size());
      const std::string part = rest.substr(start, comma - start);
      const size_t eq = part.find('=');
      MTREC_CHECK(eq != std::string::npos, "exploration '", text, "': '", part, "' is not key=value");
      const std::string key = part.substr(0, eq), value = part.substr(eq + 1);
      double v = 0;
      try {
        size_t used = 0;
        v = std::stod(value, &used);
        MTREC_CHECK(used == value.size(), "trailing text");
      } catch (const std::exception&) {
        MTREC_FAIL("exploration '", text, "': ", key, "='", value, "' is not a number");
      }
      MTREC_CHECK(std::isfinite(v), "exploration '", text, "': ", key, " must be finite");
      if (key == "epsilon") {
        MTREC_CHECK(v >= 0 && v <= 1, "exploration '", text, "': epsilon must lie in [0, 1], got ", v);
        o.epsilon(v);
        epsilon_given = true;
      } else if (key == "temperature") {
        MTREC_CHECK(v > 0, "exploration '", text, "': temperature must be > 0, got ", v);
        o.temperature(v);
      } else if (key == "gamma") {
        MTREC_CHECK(v > 0, "exploration '", text, "': gamma must be > 0, got ", v);
        o.gamma(v);
      } else {
        MTREC_FAIL("exploration '", text, "': unknown key '", key, "' (epsilon, temperature, gamma)");
      }
      start = comma + 1;
    }
  }
  if (kind == "epsilon_greedy" && !epsilon_given) o.epsilon(0.1);
  if (kind == "uniform") o.epsilon(1);
  return o;
}

std::string to_string(const ExplorationOptions& o) {
  const auto num = [](double v) {
    std::ostringstream os;
    os.precision(17);
    os << v;
    return os.str();
  };
  std::string s = o.kind();
  if (o.kind() == "uniform") return s;
  s += ":epsilon=" + num(o.epsilon());
  if (o.kind() == "softmax") s += ",temperature=" + num(o.temperature());
  if (o.kind() == "squarecb") s += ",gamma=" + num(o.gamma());
  return s;
}

SlateDistribution explore(const ExplorationOptions& o, const float* scores, int32_t n, int64_t k, bool marginals) {
  MTREC_CHECK(n >= 1, "exploration over an empty catalogue");
  int32_t best = 0;
  for (int32_t i = 0; i < n; ++i) {
    MTREC_CHECK(std::isfinite(scores[i]), "exploration: score of item ", i, " is ", scores[i]);
    if (scores[i] > scores[best]) best = i;
  }
  const std::string& kind = o.kind();
  if (kind == "uniform") return SlateDistribution::ranking({}, n, k, 1.0, marginals);
  if (kind == "greedy" || kind == "epsilon_greedy") {
    MTREC_CHECK(k >= 1 && k <= n, "a slate needs 1 <= k <= items, got k=", k, " items=", n);
    std::vector<int32_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int32_t a, int32_t b) { return scores[a] > scores[b] || (scores[a] == scores[b] && a < b); });
    order.resize(size_t(k));
    return SlateDistribution::ranking(std::move(order), n, k, o.epsilon(), marginals);
  }
  std::vector<double> w(static_cast<size_t>(n));
  if (kind == "softmax") {
    MTREC_CHECK(o.temperature() > 0, "softmax temperature must be > 0, got ", o.temperature());
    for (int32_t i = 0; i < n; ++i) w[size_t(i)] = std::exp((double(scores[i]) - scores[best]) / o.temperature());
  } else if (kind == "squarecb") {
    MTREC_CHECK(o.gamma() > 0, "squarecb gamma must be > 0, got ", o.gamma());
    double rest = 0;
    for (int32_t i = 0; i < n; ++i) {
      if (i == best) continue;
      w[size_t(i)] = 1.0 / (double(n) + o.gamma() * (double(scores[best]) - scores[i]));
      rest += w[size_t(i)];
    }
    w[size_t(best)] = 1.0 - rest;  // >= 1/n
  } else {
    MTREC_FAIL("exploration: unknown policy '", kind, "'");
  }
  return SlateDistribution::plackett_luce(std::move(w), k, o.epsilon(), marginals);
}

}  // namespace mtrec
