// Off-policy evaluation on the synthetic world (issue 20, protocol P of EVALUATION.md): a logger
// (softmax over the model's scores with epsilon uniform slates) writes impressions; every
// estimator of policy/ope.h estimates the value of ten candidate policies from each log, and is
// scored against the candidates' exact values V(π) (policy/environment.h).
//   build/bench/bench_policy [--seeds 20] [--users 200] [--items 1000] [--k 10]
//                            [--impressions 100000] [--bootstrap 200] [--model-noise 1.0]
//                            [--logger softmax:temperature=1,epsilon=0.1] [--threads 0]
//                            [--offline-seeds 3] [--offline-epochs 5]
//                            [--online-rounds 1000000] [--online-k 1] [--online-seeds 3]
//                            [--gammas 1000,3000] [--epsilons 0.01,0.02,0.05]
// The world is generated once (seed 42); each seed draws a new log. "The model" is the world's
// true click logit plus N(0, model-noise²) noise fixed per (user, item, scenario): a CTR model of
// known error, whose sigmoid is also the reward model of DM and the DR family.
// Printed: the candidates' exact values; per estimator the median relative error |V̂ − V| / V
// over seeds and candidates, the 95% intervals' coverage, the median and worst Kendall τ between
// the estimated and true ranking of the candidates; throughput of simulate and evaluate.
// Then policy learning (policy/learn.h) in the same world:
//   offline: on the logs of the first --offline-seeds seeds, top-K off-policy REINFORCE against
//   the supervised CTR ranker of the same architecture; the share of the gap between that ranker
//   and the oracle closed, per scenario, from exact values;
//   online: --online-rounds rounds (k = --online-k) of SquareCB (each γ of --gammas) and
//   ε-greedy (each ε of --epsilons) over --online-seeds seeds, against uniform slates (exact);
//   cumulative regret, its ratio best-to-best, and the regret curve.
// --seeds 0 skips the estimators, --offline-seeds 0 and --online-rounds 0 the learners.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <map>

#include "mtrec/core/log.h"
#include "mtrec/policy/environment.h"
#include "mtrec/policy/learn.h"
#include "mtrec/policy/ope.h"
#include "stats.h"

using namespace mtrec;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

using bench::mean_ci;
using bench::median;

double kendall_tau(const std::vector<double>& a, const std::vector<double>& b) {
  double concordant = 0, discordant = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = i + 1; j < a.size(); ++j) {
      const double s = (a[i] - a[j]) * (b[i] - b[j]);
      concordant += s > 0, discordant += s < 0;
    }
  const double pairs = double(a.size() * (a.size() - 1) / 2);
  return (concordant - discordant) / pairs;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_policy: off-policy estimators against exact policy values on the synthetic world"};
  int seeds = 20, users = 200, items = 1000, threads = 0;
  int64_t k = 10, impressions = 100000, bootstrap = 200;
  double model_noise = 1.0;
  std::string logger_spec = "softmax:temperature=1,epsilon=0.1";
  app.add_option("--seeds", seeds);
  app.add_option("--users", users);
  app.add_option("--items", items);
  app.add_option("--k", k);
  app.add_option("--impressions", impressions);
  app.add_option("--bootstrap", bootstrap);
  app.add_option("--model-noise", model_noise);
  app.add_option("--logger", logger_spec);
  app.add_option("--threads", threads);
  int offline_seeds = 3, offline_epochs = 5, online_seeds = 3;
  int64_t online_rounds = 1000000, online_k = 1;
  std::vector<double> gammas = {1000, 3000}, epsilons = {0.01, 0.02, 0.05};
  app.add_option("--offline-seeds", offline_seeds);
  app.add_option("--offline-epochs", offline_epochs);
  app.add_option("--online-rounds", online_rounds);
  app.add_option("--online-k", online_k);
  app.add_option("--online-seeds", online_seeds);
  app.add_option("--gammas", gammas)->delimiter(',');
  app.add_option("--epsilons", epsilons)->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  set_log_level(LogLevel::Warn);

  const auto t_world = Clock::now();
  const SyntheticWorld world =
      generate_world(SyntheticOptions().users(users).items(items).interactions(int64_t(users) * 20).seed(42));
  WorldEnvironment env(world, EnvironmentOptions().k(k).threads(threads));
  const RequestScorer model = noisy_truth_scorer(env, model_noise, 101);
  const RewardModel reward = sigmoid_reward_model(model);
  const Policy logger = scored_policy(model, parse_exploration(logger_spec), k);

  // Ten candidates of distinct value: rankings of the model and of better and worse models,
  // stochastic policies over the model, a non-personalised ranking, uniform slates.
  const RequestScorer quality = [&](const PolicyRequest&, std::vector<float>& s) {
    s.assign(world.truth.item_quality.begin(), world.truth.item_quality.end());
  };
  const std::vector<std::pair<std::string, Policy>> candidates = {
      {"oracle (true top-k)", env.oracle()},
      {"greedy, model noise 0.5", scored_policy(noisy_truth_scorer(env, 0.5, 303), ExplorationOptions(), k)},
      {"greedy, the model", scored_policy(model, ExplorationOptions(), k)},
      {"greedy, model noise 2", scored_policy(noisy_truth_scorer(env, 2.0, 404), ExplorationOptions(), k)},
      {"epsilon_greedy 0.2, the model", scored_policy(model, parse_exploration("epsilon_greedy:epsilon=0.2"), k)},
      {"softmax T=0.5, the model", scored_policy(model, parse_exploration("softmax:temperature=0.5"), k)},
      {"softmax T=1, the model", scored_policy(model, parse_exploration("softmax:temperature=1"), k)},
      {"squarecb gamma=2000, the model", scored_policy(
                                             [&](const PolicyRequest& r, std::vector<float>& s) {
                                               model(r, s);
                                               for (float& x : s) x = 1 / (1 + std::exp(-x));
                                             },
                                             parse_exploration("squarecb:gamma=2000"), k)},
      {"greedy by item quality", scored_policy(quality, ExplorationOptions(), k)},
      {"uniform", scored_policy(model, parse_exploration("uniform"), k)},
  };
  std::vector<double> truth;
  for (const auto& c : candidates) truth.push_back(env.value(c.second));
  const double logger_value = env.value(logger);
  const double setup_s = seconds_since(t_world);

  fmt::print(
      "bench_policy: {} users x {} scenarios, {} items, k={}, {} impressions per log, {} seeds, "
      "{} bootstrap replicates\n",
      users, env.scenarios(), items, k, impressions, seeds, bootstrap);
  fmt::print("logger: {} over the model (true logit + N(0, {}^2)); exact values in {:.1f} s\n\n", logger_spec,
             model_noise, setup_s);
  fmt::print("{:<34} {:>12}\n", "policy", "V (exact)");
  fmt::print("{:<34} {:>12.5f}\n", "logger", logger_value);
  for (size_t c = 0; c < candidates.size(); ++c) fmt::print("{:<34} {:>12.5f}\n", candidates[c].first, truth[c]);

  const auto& names = ope_estimators();
  std::map<std::string, std::vector<double>> rel_err, taus;
  std::map<std::string, std::vector<std::vector<double>>> rel_err_by_candidate;
  std::map<std::string, int> covered;
  std::vector<double> simulate_rate, evaluate_rate;
  for (int seed = 1; seed <= seeds; ++seed) {
    auto t0 = Clock::now();
    const ImpressionLog log = simulate(env, logger, impressions, uint64_t(seed));
    simulate_rate.push_back(double(impressions) / seconds_since(t0));
    std::map<std::string, std::vector<double>> estimate;
    for (size_t c = 0; c < candidates.size(); ++c) {
      t0 = Clock::now();
      const OpeResult r = evaluate_off_policy(log, candidates[c].second, reward,
                                              OpeOptions().bootstrap(bootstrap).seed(uint64_t(seed)).threads(threads));
      evaluate_rate.push_back(double(impressions) / seconds_since(t0));
      for (const auto& e : r.estimates) {
        rel_err[e.estimator].push_back(std::abs(e.value - truth[c]) / truth[c]);
        auto& per = rel_err_by_candidate[e.estimator];
        per.resize(candidates.size());
        per[c].push_back(std::abs(e.value - truth[c]) / truth[c]);
        covered[e.estimator] += e.low <= truth[c] && truth[c] <= e.high;
        estimate[e.estimator].push_back(e.value);
      }
    }
    for (const auto& name : names) taus[name].push_back(kendall_tau(estimate[name], truth));
    fmt::print(stderr, "seed {} done\n", seed);
  }

  const double runs = double(seeds) * double(candidates.size());
  if (seeds > 0) {
    fmt::print("\n{:<10} {:>14} {:>14} {:>10} {:>12} {:>10}\n", "estimator", "median rel.err", "90th pct", "coverage",
               "median tau", "min tau");
    for (const auto& name : names) {
      auto v = rel_err[name];
      std::sort(v.begin(), v.end());
      const double p90 = v[size_t(0.9 * double(v.size() - 1))];
      fmt::print("{:<10} {:>13.2f}% {:>13.2f}% {:>9.1f}% {:>12.3f} {:>10.3f}\n", name, 100 * median(rel_err[name]),
                 100 * p90, 100 * covered[name] / runs, median(taus[name]),
                 *std::min_element(taus[name].begin(), taus[name].end()));
    }
    fmt::print("\nmedian relative error per candidate (%):\n{:<34}", "policy");
    for (const auto& name : names) fmt::print(" {:>9}", name);
    fmt::print("\n");
    for (size_t c = 0; c < candidates.size(); ++c) {
      fmt::print("{:<34}", candidates[c].first);
      for (const auto& name : names) fmt::print(" {:>9.2f}", 100 * median(rel_err_by_candidate[name][c]));
      fmt::print("\n");
    }
    fmt::print(
        "\nthroughput: simulate {:.0f} impressions/s, evaluate (10 estimators' point values and {} bootstrap "
        "replicates) {:.0f} impressions/s (medians)\n",
        median(simulate_rate), bootstrap, median(evaluate_rate));
  }

  if (offline_seeds > 0) {
    // Offline: REINFORCE against the supervised CTR ranker on the same logs.
    std::vector<double> v_oracle_s, dummy;
    env.value(env.oracle(), &v_oracle_s);
    fmt::print("\noffline learning on the logger's logs ({} impressions, {} epochs), exact values per scenario:\n",
               impressions, offline_epochs);
    fmt::print("{:<6} {:<26}", "seed", "learner");
    for (int32_t sc = 0; sc < env.scenarios(); ++sc) fmt::print(" {:>10}", env.scenario_ids().raw(sc));
    fmt::print(" {:>10}\n", "overall");
    fmt::print("{:<6} {:<26}", "", "oracle");
    for (double v : v_oracle_s) fmt::print(" {:>10.4f}", v);
    fmt::print(" {:>10.4f}\n", env.value(env.oracle()));
    std::map<std::string, std::vector<std::vector<double>>> closed;  // learner -> per seed, per scenario
    std::map<std::string, std::vector<std::vector<double>>> gain;    // learner - ranker, per seed, per scenario
    for (int seed = 1; seed <= offline_seeds; ++seed) {
      const ImpressionLog log = simulate(env, logger, impressions, uint64_t(seed));
      std::vector<double> base;
      for (const std::string objective : {"supervised", "reinforce"}) {
        for (const std::string behavior : {"learned", "logged"}) {
          if (objective == "supervised" && behavior == "logged") continue;
          const auto t0 = Clock::now();
          const auto learned = learn_offline(
              log, env.users(), env.items(), env.scenarios(),
              OfflineOptions().objective(objective).behavior(behavior).epochs(offline_epochs).seed(uint64_t(seed)));
          std::vector<double> per;
          const double v = env.value(learned->policy(k), &per);
          const std::string name = objective == "supervised" ? "supervised CTR ranker" : "reinforce, beta " + behavior;
          fmt::print("{:<6} {:<26}", seed, name);
          for (double x : per) fmt::print(" {:>10.4f}", x);
          fmt::print(" {:>10.4f}   ({:.0f} s)\n", v, seconds_since(t0));
          if (objective == "supervised") {
            base = per;
          } else {
            std::vector<double> share, diff;
            for (size_t sc = 0; sc < per.size(); ++sc) {
              share.push_back((per[sc] - base[sc]) / (v_oracle_s[sc] - base[sc]));
              diff.push_back(per[sc] - base[sc]);
            }
            closed[name].push_back(share);
            gain[name].push_back(diff);
          }
        }
      }
    }
    fmt::print("\nshare of the supervised ranker's gap to the oracle closed (mean over seeds):\n");
    for (const auto& [name, per_seed] : closed) {
      fmt::print("{:<33}", name);
      for (int32_t sc = 0; sc < env.scenarios(); ++sc) {
        double m = 0;
        for (const auto& v : per_seed) m += v[size_t(sc)] / double(per_seed.size());
        fmt::print(" {:>9.1f}%", 100 * m);
      }
      fmt::print("\n");
    }
    fmt::print("\nvalue minus the supervised ranker's, paired over seeds, mean [95% interval]:\n");
    for (const auto& [name, per_seed] : gain) {
      fmt::print("{:<33}", name);
      for (int32_t sc = 0; sc < env.scenarios(); ++sc) {
        std::vector<double> d;
        for (const auto& v : per_seed) d.push_back(v[size_t(sc)]);
        fmt::print("  {}: {}", env.scenario_ids().raw(sc), mean_ci(d));
      }
      fmt::print("\n");
    }
  }

  if (online_rounds > 0) {
    // Online: cumulative regret of SquareCB and epsilon-greedy; uniform's is exact.
    WorldEnvironment online_env(world, EnvironmentOptions().k(online_k).threads(threads));
    const double v_oracle = online_env.value(online_env.oracle());
    const double v_uniform = online_env.value(scored_policy(model, parse_exploration("uniform"), online_k));
    const double uniform_regret = (v_oracle - v_uniform) * double(online_rounds);
    fmt::print("\nonline learning, k={}, {} rounds, {} seeds: oracle {:.4f} and uniform {:.4f} clicks per round\n",
               online_k, online_rounds, online_seeds, v_oracle, v_uniform);
    fmt::print("{:<30} {:>16} {:>16} {:>20} {:>8}\n", "policy", "cum. regret", "last 10%/round", "learned greedy V",
               "s/run");
    struct Row {
      std::string name;
      double regret = 0, tail = 0, greedy = 0, seconds = 0;
      std::vector<double> per_seed;  // cumulative regret of each seed
      std::vector<double> curve;
      std::vector<int64_t> x;
    };
    std::vector<Row> rows;
    std::vector<std::string> specs;
    for (double g : gammas) specs.push_back(fmt::format("squarecb:gamma={}", g));
    for (double e : epsilons) specs.push_back(fmt::format("epsilon_greedy:epsilon={}", e));
    for (const auto& spec : specs) {
      Row row;
      row.name = spec;
      for (int seed = 1; seed <= online_seeds; ++seed) {
        const OnlineResult r = learn_online(
            online_env, OnlineOptions().exploration(spec).rounds(online_rounds).curve_points(10).seed(uint64_t(seed)));
        const double m = double(online_seeds);
        row.regret += r.cumulative_regret.back() / m;
        row.per_seed.push_back(r.cumulative_regret.back());
        row.tail += (r.cumulative_regret[9] - r.cumulative_regret[8]) / double(r.rounds[9] - r.rounds[8]) / m;
        row.greedy += r.final_greedy_value / m;
        row.seconds += r.seconds / m;
        row.curve.resize(r.cumulative_regret.size());
        for (size_t j = 0; j < r.cumulative_regret.size(); ++j) row.curve[j] += r.cumulative_regret[j] / m;
        row.x = r.rounds;
      }
      fmt::print("{:<30} {:>16.0f} {:>16.4f} {:>20.4f} {:>8.1f}\n", row.name, row.regret, row.tail, row.greedy,
                 row.seconds);
      rows.push_back(row);
    }
    fmt::print("{:<30} {:>16.0f} {:>16.4f} {:>20}\n", "uniform (exact)", uniform_regret, v_oracle - v_uniform, "-");
    const auto best_of = [&](const std::string& prefix) {
      const Row* best = nullptr;
      for (const auto& r : rows)
        if (r.name.rfind(prefix, 0) == 0 && (!best || r.regret < best->regret)) best = &r;
      return best;
    };
    const Row* sq = best_of("squarecb");
    const Row* eg = best_of("epsilon_greedy");
    if (sq && eg) {
      fmt::print("\nbest SquareCB ({}) / best epsilon-greedy ({}): {:.3f}; / uniform: {:.3f}\n", sq->name, eg->name,
                 sq->regret / eg->regret, sq->regret / uniform_regret);
      std::vector<double> ratio, diff;
      for (size_t j = 0; j < sq->per_seed.size(); ++j) {
        ratio.push_back(sq->per_seed[j] / eg->per_seed[j]);
        diff.push_back(sq->per_seed[j] - eg->per_seed[j]);
      }
      fmt::print("paired over {} seeds (same seeds, requests and world): regret difference {}; ratio {}\n",
                 ratio.size(), mean_ci(diff), mean_ci(ratio));
      fmt::print("regret curve (mean over seeds):\n{:>10} {:>14} {:>14} {:>14}\n", "round", "squarecb",
                 "epsilon_greedy", "uniform");
      for (size_t j = 0; j < sq->x.size(); ++j)
        fmt::print("{:>10} {:>14.0f} {:>14.0f} {:>14.0f}\n", sq->x[j], sq->curve[j], eg->curve[j],
                   (v_oracle - v_uniform) * double(sq->x[j]));
    }
  }
  return 0;
}
