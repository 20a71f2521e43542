#include "mtrec/policy/learn.h"

#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/embedding.h>
#include <torch/optim/adam.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "../core/parallel.h"
#include "mtrec/core/check.h"
#include "mtrec/core/random.h"
#include "mtrec/model/io.h"
#include "mtrec/tasks/ctr.h"

namespace mtrec {
namespace {

// P(click at position k) = θ_k σ(logit): θ_0 = 1, θ_k = σ(ρ_k) learned, so a click's position
// does not bias the logit.
torch::Tensor position_click_loss(const torch::Tensor& logit, const torch::Tensor& rho, const torch::Tensor& position,
                                  const torch::Tensor& click) {
  const auto theta = torch::cat({torch::ones({1}, rho.options()), torch::sigmoid(rho.slice(0, 1))});
  const auto log_p = torch::log(theta.index_select(0, position)) + torch::nn::functional::logsigmoid(logit);
  const auto p = torch::exp(log_p).clamp_max(1 - 1e-6);
  return -(click * log_p + (1 - click) * torch::log1p(-p)).mean();
}

// The online learner's head: the CTR model's factor part (<u, i> + b_i) plus a scenario bias,
// and the position factors.
struct OnlineHeadImpl : torch::nn::Module {
  OnlineHeadImpl(int64_t users, int64_t items, int64_t scenarios, int64_t dim, int64_t k)
      : factors(register_module("factors", CtrFactors(users, items, dim))),
        scenario_bias(register_parameter("scenario_bias", torch::zeros({scenarios}))),
        rho(register_parameter("rho", torch::zeros({k}))) {
    factors->init(0.1);
  }
  torch::Tensor all_logits(const torch::Tensor& users, const torch::Tensor& scenarios) {
    return torch::matmul(factors->user->weight.index_select(0, users), factors->item->weight.t()) +
           factors->bias->weight.view({1, -1}) + scenario_bias.index_select(0, scenarios).view({-1, 1});
  }
  torch::Tensor row_logits(const torch::Tensor& users, const torch::Tensor& items, const torch::Tensor& scenarios) {
    auto [dot, bias] = factors->terms(users, items);
    return dot + bias + scenario_bias.index_select(0, scenarios);
  }
  CtrFactors factors;
  torch::Tensor scenario_bias, rho;
};
TORCH_MODULE(OnlineHead);

torch::Tensor longs(const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong); }

// The offline learner's model: state s(x) = user + scenario embeddings, item table and bias of
// the policy, and the behaviour head's own item table and bias on the detached state.
struct OfflineNetImpl : torch::nn::Module {
  OfflineNetImpl(int64_t users, int64_t items, int64_t scenarios, int64_t dim, int64_t k) {
    user = register_parameter("user", torch::randn({users, dim}) * 0.1);
    scenario = register_parameter("scenario", torch::zeros({scenarios, dim}));
    item = register_parameter("item", torch::randn({items, dim}) * 0.1);
    bias = register_parameter("bias", torch::zeros({items}));
    beta_item = register_parameter("beta_item", torch::randn({items, dim}) * 0.1);
    beta_bias = register_parameter("beta_bias", torch::zeros({items}));
    rho = register_parameter("rho", torch::zeros({k}));
  }
  torch::Tensor state(const torch::Tensor& u, const torch::Tensor& s) {
    return user.index_select(0, u) + scenario.index_select(0, s);
  }
  torch::Tensor user, scenario, item, bias, beta_item, beta_bias, rho;
};
TORCH_MODULE(OfflineNet);

}  // namespace

FactorPolicy::FactorPolicy(at::Tensor user, at::Tensor scenario, at::Tensor item, at::Tensor bias)
    : user_(std::move(user)), scenario_(std::move(scenario)), item_(std::move(item)), bias_(std::move(bias)) {}

void FactorPolicy::score(const PolicyRequest& r, std::vector<float>& logits) const {
  MTREC_CHECK(r.user >= 0 && r.user < user_.size(0) && r.scenario >= 0 && r.scenario < scenario_.size(0),
              "learned policy: request (user ", r.user, ", scenario ", r.scenario, ") outside ", user_.size(0),
              " users and ", scenario_.size(0), " scenarios");
  logits = policy_logits(user_, scenario_, item_, bias_, r.user, r.scenario);
}

Policy FactorPolicy::policy(int64_t k, const ExplorationOptions& exploration) const {
  return scored_policy([self = *this](const PolicyRequest& r, std::vector<float>& s) { self.score(r, s); }, exploration,
                       k);
}

Checkpoint FactorPolicy::to_checkpoint(const IdMap& users, const IdMap& items, const IdMap& scenarios) const {
  return policy_checkpoint(user_, scenario_, item_, bias_, users, items, scenarios);
}

OnlineResult learn_online(const WorldEnvironment& env, const OnlineOptions& o) {
  MTREC_CHECK(o.rounds() >= 1 && o.batch() >= 1 && o.updates() >= 0 && o.dim() >= 1 && o.curve_points() >= 1,
              "online learning needs rounds, batch, dim, curve_points >= 1 and updates >= 0, got rounds=", o.rounds(),
              " batch=", o.batch(), " dim=", o.dim(), " curve_points=", o.curve_points(), " updates=", o.updates());
  const auto t0 = std::chrono::steady_clock::now();
  const ExplorationOptions exploration = parse_exploration(o.exploration());
  const bool reward_scores = exploration.kind() == "squarecb";  // IGW reads scores as rewards
  const int32_t U = env.users(), I = env.items(), S = env.scenarios();
  const int64_t K = env.k();
  const auto& theta = env.examination();
  torch::manual_seed(o.seed());
  OnlineHead head(U, I, S, o.dim(), K);
  torch::optim::Adam adam(head->parameters(), torch::optim::AdamOptions(o.lr()));

  // True click probabilities and the oracle's expected clicks, per request, on first use.
  std::vector<std::vector<double>> truth(size_t(U) * size_t(S));
  std::vector<double> best(truth.size(), -1);
  const auto prepare = [&](const PolicyRequest& r) {
    const size_t key = size_t(r.user) * size_t(S) + size_t(r.scenario);
    if (best[key] >= 0) return key;
    truth[key] = env.click_probabilities(r);
    std::vector<double> p = truth[key];
    std::partial_sort(p.begin(), p.begin() + K, p.end(), std::greater<>());
    double v = 0;
    for (int64_t j = 0; j < K; ++j) v += theta[size_t(j)] * p[size_t(j)];
    best[key] = v;
    return key;
  };

  OnlineResult out;
  Rng rng(derive_seed(o.seed(), "online-requests"));
  const uint64_t base = derive_seed(o.seed(), "online-rounds");
  double regret = 0, clicks = 0;
  int64_t next_point = 1;
  const auto point_at = [&](int64_t j) {
    return std::max<int64_t>(1, int64_t(double(o.rounds()) * double(j) / double(o.curve_points())));
  };
  std::vector<PolicyRequest> req;
  std::vector<size_t> key;
  std::vector<std::vector<int32_t>> shown;
  std::vector<std::vector<uint8_t>> clicked;
  std::vector<double> round_regret;
  std::vector<int64_t> ru, ri, rs, rk;  // every row so far: user, item, scenario, position
  std::vector<float> rc;                // and its click
  Rng replay_rng(derive_seed(o.seed(), "online-replay"));
  for (int64_t done = 0; done < o.rounds();) {
    const int64_t B = std::min(o.batch(), o.rounds() - done);
    req.resize(size_t(B)), key.resize(size_t(B)), shown.assign(size_t(B), {}), clicked.assign(size_t(B), {});
    round_regret.assign(size_t(B), 0.0);
    std::vector<int64_t> users(static_cast<size_t>(B)), scenarios(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) {
      req[size_t(b)] = env.draw_request(rng);
      key[size_t(b)] = prepare(req[size_t(b)]);
      users[size_t(b)] = req[size_t(b)].user, scenarios[size_t(b)] = req[size_t(b)].scenario;
    }
    torch::Tensor scores;
    {
      torch::NoGradGuard no_grad;
      scores = head->all_logits(longs(users), longs(scenarios));
      if (reward_scores) scores = torch::sigmoid(scores);
      scores = scores.contiguous();
    }
    const float* sc = scores.data_ptr<float>();
    ExplorationOptions now = exploration;
    if (reward_scores && o.gamma_growth()) now.gamma(exploration.gamma() * std::sqrt(double(done + 1)));
    detail::parallel_for(size_t(B), 0, 16, [&](size_t b) {
      Rng r(splitmix64(base + uint64_t(done) + b));
      const SlateDistribution d = explore(now, sc + b * size_t(I), I, K, /*marginals=*/false);
      shown[b] = d.sample(r).items;
      clicked[b] = env.draw_clicks(req[b], shown[b], r);
      double got = 0;
      for (int64_t j = 0; j < K; ++j) got += theta[size_t(j)] * truth[key[b]][size_t(shown[b][size_t(j)])];
      round_regret[b] = best[key[b]] - got;
    });
    for (int64_t b = 0; b < B; ++b) {
      regret += round_regret[size_t(b)];
      for (int64_t j = 0; j < K; ++j) {
        ru.push_back(users[size_t(b)]), ri.push_back(shown[size_t(b)][size_t(j)]), rs.push_back(scenarios[size_t(b)]);
        rk.push_back(j), rc.push_back(clicked[size_t(b)][size_t(j)]);
        clicks += clicked[size_t(b)][size_t(j)];
      }
      while (next_point <= o.curve_points() && done + b + 1 >= point_at(next_point)) {
        if (out.rounds.empty() || out.rounds.back() != done + b + 1) {
          out.rounds.push_back(done + b + 1);
          out.cumulative_regret.push_back(regret);
          out.cumulative_clicks.push_back(clicks);
        }
        ++next_point;
      }
    }
    // The first update fits the batch's rows; the others minibatches of the same size drawn from
    // every row so far (replay), so the head does not forget earlier rounds.
    const auto rows = int64_t(ru.size()), m = std::min<int64_t>(rows, B * K);
    for (int u = 0; u < o.updates(); ++u) {
      std::vector<int64_t> bu(static_cast<size_t>(m)), bi(static_cast<size_t>(m)), bs(static_cast<size_t>(m)),
          bk(static_cast<size_t>(m));
      std::vector<float> bc(static_cast<size_t>(m));
      std::uniform_int_distribution<int64_t> pick(0, rows - 1);
      for (int64_t j = 0; j < m; ++j) {
        const auto row = size_t(u == 0 ? rows - m + j : pick(replay_rng));
        bu[size_t(j)] = ru[row], bi[size_t(j)] = ri[row], bs[size_t(j)] = rs[row], bk[size_t(j)] = rk[row];
        bc[size_t(j)] = rc[row];
      }
      adam.zero_grad();
      position_click_loss(head->row_logits(longs(bu), longs(bi), longs(bs)), head->rho, longs(bk), torch::tensor(bc))
          .backward();
      adam.step();
    }
    done += B;
  }
  // The learned head's greedy policy, valued exactly.
  const Policy greedy = scored_policy(
      [&](const PolicyRequest& r, std::vector<float>& s) {
        torch::NoGradGuard no_grad;
        const auto l =
            head->all_logits(torch::tensor({int64_t(r.user)}), torch::tensor({int64_t(r.scenario)})).contiguous();
        s.assign(l.data_ptr<float>(), l.data_ptr<float>() + l.numel());
      },
      ExplorationOptions(), K);
  out.final_greedy_value = env.value(greedy);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

std::shared_ptr<FactorPolicy> learn_offline(const ImpressionLog& log, int32_t users, int32_t items, int32_t scenarios,
                                            const OfflineOptions& o) {
  const int64_t N = log.size(), K = log.k;
  MTREC_CHECK(N > 0 && K > 0, "offline learning from an empty log (", N, " impressions, k=", K, ")");
  MTREC_CHECK(o.objective() == "reinforce" || o.objective() == "supervised", "offline objective '", o.objective(),
              "' (reinforce | supervised)");
  MTREC_CHECK(o.behavior() == "learned" || o.behavior() == "logged", "offline behavior '", o.behavior(),
              "' (learned | logged)");
  MTREC_CHECK(o.weight_cap() > 0 && o.epochs() >= 1 && o.batch() >= 1 && o.dim() >= 1,
              "offline learning needs weight_cap > 0 and epochs, batch, dim >= 1");
  for (int64_t n = 0; n < N; ++n)
    MTREC_CHECK(log.user[size_t(n)] >= 0 && log.user[size_t(n)] < users && log.scenario[size_t(n)] >= 0 &&
                    log.scenario[size_t(n)] < scenarios,
                "offline learning: impression ", n, " has user ", log.user[size_t(n)], " scenario ",
                log.scenario[size_t(n)], " outside ", users, " users and ", scenarios, " scenarios");
  for (int32_t i : log.item) MTREC_CHECK(i >= 0 && i < items, "offline learning: item ", i, " outside ", items);
  torch::manual_seed(o.seed());
  OfflineNet net(users, items, scenarios, o.dim(), K);
  torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(o.lr()));
  const bool reinforce = o.objective() == "reinforce";

  // Rows: every shown (impression, position).
  const int64_t R = N * K;
  std::vector<int64_t> order(static_cast<size_t>(R));
  std::iota(order.begin(), order.end(), 0);
  Rng rng(derive_seed(o.seed(), "offline-order"));
  for (int epoch = 0; epoch < o.epochs(); ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    for (int64_t start = 0; start < R; start += o.batch()) {
      const int64_t B = std::min(o.batch(), R - start);
      std::vector<int64_t> u(static_cast<size_t>(B)), s(static_cast<size_t>(B)), a(static_cast<size_t>(B)),
          k(static_cast<size_t>(B));
      std::vector<float> r(static_cast<size_t>(B)), mu(static_cast<size_t>(B));
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = order[size_t(start + b)], n = row / K;
        u[size_t(b)] = log.user[size_t(n)], s[size_t(b)] = log.scenario[size_t(n)];
        a[size_t(b)] = log.item[size_t(row)], k[size_t(b)] = row % K;
        r[size_t(b)] = log.click[size_t(row)], mu[size_t(b)] = float(log.propensity[size_t(row)]);
      }
      const auto tu = longs(u), ts = longs(s), ta = longs(a), tk = longs(k), tr = torch::tensor(r);
      const auto state = net->state(tu, ts);
      adam.zero_grad();
      torch::Tensor loss;
      if (reinforce) {
        const auto log_pi = torch::log_softmax(torch::matmul(state, net->item.t()) + net->bias.view({1, -1}), 1)
                                .gather(1, ta.view({-1, 1}))
                                .view(-1);
        const auto log_beta_all =
            torch::log_softmax(torch::matmul(state.detach(), net->beta_item.t()) + net->beta_bias.view({1, -1}), 1);
        const auto log_beta = log_beta_all.gather(1, ta.view({-1, 1})).view(-1);
        torch::Tensor weight;
        {
          torch::NoGradGuard no_grad;
          const auto pi = log_pi.exp();
          const auto beta = o.behavior() == "learned" ? log_beta.exp() : torch::tensor(mu);
          weight = (pi / beta).clamp_max(o.weight_cap());
          if (o.top_k_correction()) weight = weight * double(K) * torch::pow(1 - pi, double(K - 1));
        }
        loss = -(weight * tr * log_pi).mean();
        if (o.behavior() == "learned") loss = loss - log_beta.mean();  // β: maximum likelihood on the log
      } else {
        const auto logit = (state * net->item.index_select(0, ta)).sum(1) + net->bias.index_select(0, ta);
        loss = position_click_loss(logit, net->rho, tk, tr);
      }
      loss.backward();
      adam.step();
    }
  }
  torch::NoGradGuard no_grad;
  return std::make_shared<FactorPolicy>(net->user.detach().clone(), net->scenario.detach().clone(),
                                        net->item.detach().clone(), net->bias.detach().clone());
}

}  // namespace mtrec
