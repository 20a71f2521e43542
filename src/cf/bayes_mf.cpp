#include "mtrec/cf/bayes_mf.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "../core/parallel.h"
#include "mtrec/core/check.h"
#include "mtrec/core/random.h"

namespace mtrec {

float BayesMf::predict(int32_t user, int32_t item) const {
  MTREC_CHECK(user >= 0 && static_cast<size_t>(user) < user_bias.size() && item >= 0 &&
                  static_cast<size_t>(item) < item_bias.size(),
              "BayesMf::predict: (user ", user, ", item ", item, ") outside ", user_bias.size(), " x ",
              item_bias.size());
  double s = global_mean + user_bias[user] + item_bias[item];
  const float* p = &user_factors[static_cast<size_t>(user) * dim];
  const float* q = &item_factors[static_cast<size_t>(item) * dim];
  for (int64_t k = 0; k < dim; ++k) s += double(p[k]) * q[k];
  return static_cast<float>(s);
}

namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A cheap per-entity normal stream: one per (sweep, side, id), so draws do not depend on which
// thread samples which entity.
class NormalStream {
 public:
  NormalStream(uint64_t seed, uint64_t sweep, uint64_t side, uint64_t id) : state_(seed) {
    state_ ^= splitmix64(state_) + sweep * 0x9E3779B97F4A7C15ull + (side << 62) + id;
    splitmix64(state_);
  }
  double operator()() {  // Box-Muller, both values used
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = (double(splitmix64(state_) >> 11) + 0.5) * 0x1.0p-53;
    double u2 = double(splitmix64(state_) >> 11) * 0x1.0p-53;
    double r = std::sqrt(-2.0 * std::log(u1)), t = 2.0 * M_PI * u2;
    spare_ = r * std::sin(t);
    has_spare_ = true;
    return r * std::cos(t);
  }

 private:
  uint64_t state_;
  double spare_ = 0;
  bool has_spare_ = false;
};

// Mean and precision of one group's prior: the bias and each factor dimension.
struct Prior {
  double mu_b = 0, lam_b = 1;
  std::vector<double> mu_f, lam_f;
  explicit Prior(int64_t d) : mu_f(d, 0.0), lam_f(d, 1.0) {}
};

// One Gibbs draw of θ given everything else, for a model linear in θ with slope h_n on row n:
//   var = 1 / (α Σ h² + λ),  mean = var (α Σ (e_n + θ h_n) h_n + μ λ);  then e_n -= (θ' − θ) h_n.
// `e` holds the residuals r − r̂ of the entity's rows; h == nullptr means h_n = 1 (the bias).
void draw(double& theta, double* e, const double* h, size_t m, double alpha, double mu, double lam,
          NormalStream& normal) {
  double s2 = 0, s1 = 0;
  for (size_t n = 0; n < m; ++n) {
    const double hn = h ? h[n] : 1.0;
    s2 += hn * hn;
    s1 += (e[n] + theta * hn) * hn;
  }
  const double var = 1.0 / (alpha * s2 + lam);
  const double next = var * (alpha * s1 + mu * lam) + std::sqrt(var) * normal();
  const double delta = next - theta;
  for (size_t n = 0; n < m; ++n) e[n] -= delta * (h ? h[n] : 1.0);
  theta = next;
}

// Samples the mean and precision of the prior over `values` (every `stride`-th from `offset`),
// with libFM's hyperpriors: μ ~ N(0, 1/(γ0 λ)), λ ~ Γ(α_λ, β_λ), γ0 = α_λ = β_λ = 1.
void draw_prior(const std::vector<double>& values, size_t stride, size_t offset, size_t count, double& mu, double& lam,
                Rng& rng) {
  constexpr double gamma0 = 1, alpha_l = 1, beta_l = 1;
  double sum = 0;
  for (size_t j = 0; j < count; ++j) sum += values[j * stride + offset];
  std::normal_distribution<double> normal(0.0, 1.0);
  mu = sum / (count + gamma0) + std::sqrt(1.0 / ((count + gamma0) * lam)) * normal(rng);
  double ss = gamma0 * mu * mu;
  for (size_t j = 0; j < count; ++j) {
    const double z = values[j * stride + offset] - mu;
    ss += z * z;
  }
  lam = std::gamma_distribution<double>((alpha_l + count + 1) / 2, 2.0 / (beta_l + ss))(rng);
}

// One side (users or items) of the matrix as CSR over the row-major rating arrays.
struct Side {
  std::vector<size_t> ptr;   // [entities + 1]
  std::vector<size_t> rows;  // indices into the rating arrays
  size_t max_rows = 0;
};

Side group_rows(const std::vector<int32_t>& ids, int32_t count) {
  Side s;
  s.ptr.assign(count + 1, 0);
  for (int32_t id : ids) ++s.ptr[id + 1];
  for (int32_t j = 0; j < count; ++j) {
    s.max_rows = std::max(s.max_rows, s.ptr[j + 1]);
    s.ptr[j + 1] += s.ptr[j];
  }
  s.rows.resize(ids.size());
  std::vector<size_t> fill(s.ptr.begin(), s.ptr.end() - 1);
  for (size_t n = 0; n < ids.size(); ++n) s.rows[fill[ids[n]]++] = n;
  return s;
}

}  // namespace

BayesMf fit_bayes_mf(const Interactions& train, int32_t num_users, int32_t num_items, const BayesMfOptions& o,
                     const BayesMfMonitor& monitor) {
  train.check_consistent();
  MTREC_CHECK(train.has_rating, "Bayesian MF needs interactions with ratings");
  MTREC_CHECK(!train.empty(), "Bayesian MF needs at least one training rating");
  MTREC_CHECK(num_users > 0 && num_items > 0, "Bayesian MF needs positive sizes, got users=", num_users,
              " items=", num_items);
  MTREC_CHECK(o.dim() >= 1 && o.iterations() >= 1 && o.burn_in() >= 0 && o.burn_in() < o.iterations(),
              "Bayesian MF options: dim=", o.dim(), " iterations=", o.iterations(), " burn_in=", o.burn_in(),
              " (need dim >= 1 and 0 <= burn_in < iterations)");
  for (size_t n = 0; n < train.size(); ++n)
    MTREC_CHECK(train.user[n] >= 0 && train.user[n] < num_users && train.item[n] >= 0 && train.item[n] < num_items,
                "Bayesian MF: row ", n, " has (user ", train.user[n], ", item ", train.item[n], ") outside ", num_users,
                " x ", num_items);

  const size_t n_rows = train.size(), d = static_cast<size_t>(o.dim());
  const Side by_user = group_rows(train.user, num_users), by_item = group_rows(train.item, num_items);

  // Parameters in double: a sweep adds many small updates to the residuals.
  Rng rng(derive_seed(o.seed(), "bayes-mf"));
  std::normal_distribution<double> init(0.0, o.init_std());
  std::vector<double> P(num_users * d), Q(num_items * d), bu(num_users, 0.0), bi(num_items, 0.0);
  for (auto& v : P) v = init(rng);
  for (auto& v : Q) v = init(rng);
  double w0 = 0;
  std::vector<double> e(n_rows);
  auto predict_row = [&](size_t n) {
    const double* p = &P[train.user[n] * d];
    const double* q = &Q[train.item[n] * d];
    double s = w0 + bu[train.user[n]] + bi[train.item[n]];
    for (size_t k = 0; k < d; ++k) s += p[k] * q[k];
    return s;
  };
  for (size_t n = 0; n < n_rows; ++n) e[n] = train.rating[n] - predict_row(n);

  double alpha = 1;
  Prior user_prior(o.dim()), item_prior(o.dim());
  std::vector<double> sum_P(P.size(), 0.0), sum_Q(Q.size(), 0.0), sum_bu(num_users, 0.0), sum_bi(num_items, 0.0);
  double sum_w0 = 0, sum_noise_sd = 0;
  int kept = 0;

  const int threads = detail::resolve_threads(o.threads(), std::max(num_users, num_items));
  struct Scratch {
    std::vector<double> e, h;
  };
  std::vector<Scratch> scratch(threads);
  for (auto& s : scratch) {
    const size_t m = std::max(by_user.max_rows, by_item.max_rows);
    s.e.resize(m);
    s.h.resize(m * d);
  }

  // Samples every entity of one side given the other side's factors `other` (read only).
  auto sweep_side = [&](int sweep, uint64_t side_id, const Side& side, const std::vector<int32_t>& other_ids,
                        const std::vector<double>& other, std::vector<double>& factors, std::vector<double>& bias,
                        const Prior& prior) {
    detail::parallel_for(bias.size(), threads, 16, [&](size_t j, int worker) {
      Scratch& s = scratch[worker];
      const size_t begin = side.ptr[j], m = side.ptr[j + 1] - begin;
      // Gather the residuals and, transposed, the other side's factors of this entity's rows.
      for (size_t t = 0; t < m; ++t) {
        const size_t n = side.rows[begin + t];
        s.e[t] = e[n];
        const double* q = &other[other_ids[n] * d];
        for (size_t k = 0; k < d; ++k) s.h[k * m + t] = q[k];
      }
      NormalStream normal(o.seed(), sweep, side_id, j);
      draw(bias[j], s.e.data(), nullptr, m, alpha, prior.mu_b, prior.lam_b, normal);
      double* f = &factors[j * d];
      for (size_t k = 0; k < d; ++k)
        draw(f[k], s.e.data(), &s.h[k * m], m, alpha, prior.mu_f[k], prior.lam_f[k], normal);
      for (size_t t = 0; t < m; ++t) e[side.rows[begin + t]] = s.e[t];
    });
  };

  for (int sweep = 0; sweep < o.iterations(); ++sweep) {
    {  // w0 under a flat prior
      double s1 = 0;
      for (double r : e) s1 += r + w0;
      const double var = 1.0 / (alpha * n_rows);
      const double next = var * alpha * s1 + std::sqrt(var) * std::normal_distribution<double>(0.0, 1.0)(rng);
      for (double& r : e) r -= next - w0;
      w0 = next;
    }
    sweep_side(sweep, 0, by_user, train.item, Q, P, bu, user_prior);
    sweep_side(sweep, 1, by_item, train.user, P, Q, bi, item_prior);
    double se = 0;
    for (double r : e) se += r * r;
    // Noise precision: α ~ Γ((α0 + n)/2, (β0 + Σe²)/2), α0 = β0 = 1.
    alpha = std::gamma_distribution<double>((1.0 + n_rows) / 2, 2.0 / (1.0 + se))(rng);
    draw_prior(bu, 1, 0, num_users, user_prior.mu_b, user_prior.lam_b, rng);
    draw_prior(bi, 1, 0, num_items, item_prior.mu_b, item_prior.lam_b, rng);
    for (size_t k = 0; k < d; ++k) {
      draw_prior(P, d, k, num_users, user_prior.mu_f[k], user_prior.lam_f[k], rng);
      draw_prior(Q, d, k, num_items, item_prior.mu_f[k], item_prior.lam_f[k], rng);
    }
    if (monitor) monitor(sweep + 1, std::sqrt(se / n_rows));
    if (sweep < o.burn_in()) continue;
    ++kept;
    sum_w0 += w0;
    sum_noise_sd += 1.0 / std::sqrt(alpha);
    for (size_t k = 0; k < P.size(); ++k) sum_P[k] += P[k];
    for (size_t k = 0; k < Q.size(); ++k) sum_Q[k] += Q[k];
    for (int32_t u = 0; u < num_users; ++u) sum_bu[u] += bu[u];
    for (int32_t i = 0; i < num_items; ++i) sum_bi[i] += bi[i];
  }

  BayesMf out;
  out.dim = o.dim();
  out.samples = kept;
  out.global_mean = static_cast<float>(sum_w0 / kept);
  out.noise_sd = sum_noise_sd / kept;
  auto mean_of = [kept](const std::vector<double>& sum) {
    std::vector<float> v(sum.size());
    for (size_t k = 0; k < sum.size(); ++k) v[k] = static_cast<float>(sum[k] / kept);
    return v;
  };
  out.user_factors = mean_of(sum_P);
  out.item_factors = mean_of(sum_Q);
  out.user_bias = mean_of(sum_bu);
  out.item_bias = mean_of(sum_bi);
  double se = 0;
  for (size_t n = 0; n < n_rows; ++n) {
    const double r = train.rating[n] - out.predict(train.user[n], train.item[n]);
    se += r * r;
  }
  out.train_rmse = std::sqrt(se / n_rows);
  return out;
}

}  // namespace mtrec
