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

// P(item j arrived by t = e^x) for rate e^{lw_j}: p = 1 - exp(-e^{lw + x}), q = 1 - p.
inline void arrival(double lw, double x, double& p, double& q) {
  if (lw == -INFINITY) {
    p = 0, q = 1;
    return;
  }
  const double r = std::exp(lw + x);
  p = -std::expm1(-r), q = std::exp(-r);
}

// P(N(e^x) <= K-1) for the arrival count of all items.
double below_k(const std::vector<double>& lw, int64_t K, double x, std::vector<double>& c) {
  c.assign(size_t(K), 0.0);
  c[0] = 1;
  double p, q;
  for (double l : lw) {
    arrival(l, x, p, q);
    times_bernoulli(c.data(), K, p, q);
  }
  return std::accumulate(c.begin(), c.end(), 0.0);
}

// Log-weights shifted so that their log-sum-exp is 0 (weights summing to 1).
std::vector<double> normalised_log(std::vector<double> lw, int64_t k) {
  double top = -INFINITY;
  int64_t finite = 0;
  for (double l : lw) {
    MTREC_CHECK(!std::isnan(l) && l != INFINITY, "Plackett-Luce log-weights must be finite or -inf, got ", l);
    if (l != -INFINITY) top = std::max(top, l), ++finite;
  }
  MTREC_CHECK(finite >= k, "Plackett-Luce over ", lw.size(), " items with ", finite,
              " positive weights cannot fill k=", k, " positions");
  double sum = 0;
  for (double l : lw)
    if (l != -INFINITY) sum += std::exp(l - top);
  const double shift = top + std::log(sum);
  for (double& l : lw)
    if (l != -INFINITY) l -= shift;
  return lw;
}

}  // namespace

std::vector<double> plackett_luce_marginals(const std::vector<double>& w, int64_t K) {
  std::vector<double> lw(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    MTREC_CHECK(std::isfinite(w[i]) && w[i] >= 0, "Plackett-Luce weights must be finite and >= 0, got ", w[i]);
    lw[i] = w[i] > 0 ? std::log(w[i]) : -INFINITY;
  }
  return plackett_luce_marginals_log(lw, K);
}

std::vector<double> plackett_luce_marginals_log(const std::vector<double>& log_w, int64_t K) {
  const auto n = int64_t(log_w.size());
  MTREC_CHECK(K >= 1 && K <= n, "Plackett-Luce marginals need 1 <= k <= items, got k=", K, " items=", n);
  const std::vector<double> lw = normalised_log(log_w, K);
  std::vector<double> M(size_t(n * K), 0.0);
  for (int64_t i = 0; i < n; ++i) M[size_t(i * K)] = lw[size_t(i)] == -INFINITY ? 0.0 : std::exp(lw[size_t(i)]);
  if (K == 1) return M;

  // Integration range in x = log t. Below t = 1e-6 the k >= 1 integrands are at most w_i t (at
  // least one other arrival, total rate 1); above x_hi fewer than K arrivals have negligible
  // probability, and every item's integrand is at most w_i P(N(t) <= K-1). x_hi starts where the
  // K-th heaviest item has arrived with probability 1 - e^{-e}, then grows by 1.
  std::vector<double> sorted = lw;
  std::nth_element(sorted.begin(), sorted.begin() + (K - 1), sorted.end(), std::greater<>());
  std::vector<double> scratch;
  const double x_lo = std::log(1e-6);
  double x_hi = std::max(x_lo + 1, 1.0 - sorted[size_t(K - 1)]);
  while (below_k(lw, K, x_hi, scratch) > 1e-15) x_hi += 1;
  x_hi += 1;
  const auto panels = int64_t(std::ceil(x_hi - x_lo));  // panels of width <= 1 in log t
  const double h = (x_hi - x_lo) / double(panels);

  std::vector<double> p(static_cast<size_t>(n)), q(static_cast<size_t>(n));
  std::vector<double> L(static_cast<size_t>(K)), F(static_cast<size_t>(K)), Q(static_cast<size_t>(K));
  std::vector<int64_t> heavy;
  std::vector<double> pre, suf;
  for (int64_t panel = 0; panel < panels; ++panel) {
    for (int g = 0; g < 8; ++g) {
      const double x = x_lo + h * (double(panel) + 0.5 * (kGlNode[g] + 1));
      const double omega = 0.5 * h * kGlWeight[g];  // dt = t dx: t joins each item's rate below
      // Light items (P(arrived) <= 1/2) are divided out of the total stably (forward division
      // amplifies by p/q <= 1); the few heavy ones are left out by prefix/suffix products.
      std::fill(L.begin(), L.end(), 0.0);
      L[0] = 1;
      heavy.clear();
      for (int64_t j = 0; j < n; ++j) {
        arrival(lw[size_t(j)], x, p[size_t(j)], q[size_t(j)]);
        if (p[size_t(j)] > 0.5) {
          heavy.push_back(j);
        } else if (p[size_t(j)] > 0) {
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
        const double pi = p[size_t(i)], qi = q[size_t(i)];
        if (pi <= 0 || pi > 0.5) continue;
        // Q = F / (q + p z); w_i t e^{-w_i t} Q_m = r (F_m - p Q_{m-1}) with r = w_i t.
        const double r = std::exp(lw[size_t(i)] + x);
        double prev = F[0] / qi;
        double* row = M.data() + i * K;
        for (int64_t m = 1; m < K; ++m) {
          const double num = F[size_t(m)] - pi * prev;
          row[m] += omega * r * num;
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
        // r e^{-r} in the log domain (r may overflow where e^{-r} is 0).
        const double ax = lw[size_t(i)] + x;
        const double f = omega * std::exp(ax - std::exp(ax));
        double* row = M.data() + i * K;
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
  std::vector<double> lw(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    MTREC_CHECK(std::isfinite(weights[i]) && weights[i] >= 0, "Plackett-Luce weights must be finite and >= 0, got ",
                weights[i]);
    lw[i] = weights[i] > 0 ? std::log(weights[i]) : -INFINITY;
  }
  return plackett_luce_log(std::move(lw), k, epsilon, marginals);
}

SlateDistribution SlateDistribution::plackett_luce_log(std::vector<double> log_weights, int64_t k, double epsilon,
                                                       bool marginals) {
  const auto n = int32_t(log_weights.size());
  MTREC_CHECK(k >= 1 && k <= n, "a slate needs 1 <= k <= items, got k=", k, " items=", n);
  MTREC_CHECK(epsilon >= 0 && epsilon <= 1, "epsilon must lie in [0, 1], got ", epsilon);
  SlateDistribution d;
  d.n_ = n;
  d.k_ = k;
  d.epsilon_ = epsilon;
  d.log_weights_ = normalised_log(std::move(log_weights), k);
  d.weights_.resize(d.log_weights_.size());
  for (size_t i = 0; i < d.weights_.size(); ++i) d.weights_[i] = std::exp(d.log_weights_[i]);
  if (marginals) {
    d.marginals_ = plackett_luce_marginals_log(d.log_weights_, k);
    for (double& m : d.marginals_) m = (1 - epsilon) * m + epsilon / n;
  }
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
  } else if (log_weights_.empty()) {
    s.items.assign(order_.begin(), order_.begin() + k_);
  } else {
    // Exponential race: E_i ~ Exp(w_i), log E_i = log Exp(1) - log w_i; the K earliest
    // arrivals in order are a Plackett–Luce draw.
    std::vector<std::pair<double, int32_t>> arrival;
    arrival.reserve(size_t(n_));
    for (int32_t i = 0; i < n_; ++i) {
      const double u = unit(rng);
      const double l = log_weights_[size_t(i)];
      if (l != -INFINITY) arrival.emplace_back(std::log(-std::log1p(-u)) - l, i);
    }
    std::partial_sort(arrival.begin(), arrival.begin() + k_, arrival.end());
    for (int64_t j = 0; j < k_; ++j) s.items.push_back(arrival[size_t(j)].second);
  }
  for (int64_t pos = 0; pos < k_; ++pos)
    if (has_marginals()) s.propensity.push_back(marginal(s.items[size_t(pos)], pos));
  s.prefix = prefix_probabilities(s.items.data(), k_);
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
  return length == 0 ? 1.0 : prefix_probabilities(slate, length).back();
}

std::vector<double> SlateDistribution::prefix_probabilities(const int32_t* slate, int64_t length) const {
  std::vector<double> out;
  double uniform = 1, ranked = 1, drawn = 0;
  std::vector<uint8_t> taken;  // the drawn items, for the slow path only
  for (int64_t j = 0; j < length; ++j) {
    const int32_t i = slate[j];
    MTREC_CHECK(i >= 0 && i < n_, "slate item ", i, " outside [0, ", n_, ")");
    bool repeated = false;
    for (int64_t l = 0; l < j; ++l) repeated |= slate[l] == i;
    if (repeated) {  // a repeated item is impossible
      out.resize(size_t(length), 0.0);
      return out;
    }
    uniform /= double(n_ - j);
    if (log_weights_.empty()) {
      if (epsilon_ < 1 && order_[size_t(j)] != i) ranked = 0;
    } else if (ranked > 0 && weights_[size_t(i)] > 0 && 1 - drawn > 1e-6) {
      // w_i over the weights not yet drawn (the weights sum to 1).
      ranked *= weights_[size_t(i)] / (1 - drawn);
      drawn += weights_[size_t(i)];
      if (!taken.empty()) taken[size_t(i)] = 1;
    } else if (ranked > 0) {
      if (taken.empty()) {
        taken.assign(size_t(n_), 0);
        for (int64_t l = 0; l < j; ++l) taken[size_t(slate[l])] = 1;
      }
      // The drawn items held almost all of the mass (or w_i underflows): the weights not yet
      // drawn, summed afresh relative to the largest of them, in the log domain.
      double top = -INFINITY;
      for (int32_t a = 0; a < n_; ++a)
        if (!taken[size_t(a)]) top = std::max(top, log_weights_[size_t(a)]);
      double left = 0;
      for (int32_t a = 0; a < n_; ++a)
        if (!taken[size_t(a)] && log_weights_[size_t(a)] != -INFINITY) left += std::exp(log_weights_[size_t(a)] - top);
      const double li = log_weights_[size_t(i)];
      ranked *= li == -INFINITY ? 0.0 : std::exp(li - top) / left;
      drawn += weights_[size_t(i)];
      taken[size_t(i)] = 1;
    }
    out.push_back(epsilon_ >= 1 ? uniform : (1 - epsilon_) * ranked + epsilon_ * uniform);
  }
  return out;
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
    for (int32_t i = 0; i < n; ++i) w[size_t(i)] = (double(scores[i]) - scores[best]) / o.temperature();
    return SlateDistribution::plackett_luce_log(std::move(w), k, o.epsilon(), marginals);
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
