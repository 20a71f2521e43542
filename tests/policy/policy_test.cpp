#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <algorithm>
#include <map>
#include <numeric>

#include "mtrec/core/check.h"
#include "mtrec/policy/environment.h"
#include "mtrec/policy/explore.h"
#include "mtrec/policy/ope.h"

namespace mtrec {
namespace {

// Exact Plackett–Luce position marginals and prefix probabilities by enumerating every ordered
// k-subset: the slow oracle of the quadrature.
void enumerate(const std::vector<double>& w, int64_t K, std::vector<int32_t>& prefix, double p, double left,
               std::vector<double>& M, std::map<std::vector<int32_t>, double>* slates) {
  if (int64_t(prefix.size()) == K) {
    for (int64_t k = 0; k < K; ++k) M[size_t(prefix[size_t(k)] * K + k)] += p;
    if (slates) (*slates)[prefix] += p;
    return;
  }
  for (int32_t i = 0; i < int32_t(w.size()); ++i) {
    if (w[size_t(i)] == 0 || std::find(prefix.begin(), prefix.end(), i) != prefix.end()) continue;
    prefix.push_back(i);
    enumerate(w, K, prefix, p * w[size_t(i)] / left, left - w[size_t(i)], M, slates);
    prefix.pop_back();
  }
}

std::vector<double> normalised(std::vector<double> w) {
  const double s = std::accumulate(w.begin(), w.end(), 0.0);
  for (double& x : w) x /= s;
  return w;
}

TEST(Explore, PlackettLuceMarginalsEqualEnumeration) {
  const std::vector<std::vector<double>> cases = {{0.5, 0.3, 0.1, 0.05, 0.05},
                                                  {1, 1, 1, 1, 1, 1},
                                                  {1e-6, 0.9, 0.09, 0.01, 1e-3, 0.0, 2e-4},
                                                  {100, 1e-3, 1e-3, 1e-3, 1e-8}};
  for (const auto& raw : cases) {
    const auto w = normalised(raw);
    for (int64_t K : {1, 2, 4}) {
      std::vector<double> exact(w.size() * size_t(K), 0.0);
      std::vector<int32_t> prefix;
      enumerate(w, K, prefix, 1, 1, exact, nullptr);
      const auto M = plackett_luce_marginals(w, K);
      double row_total = 0;
      std::vector<double> column(size_t(K), 0.0);
      for (size_t j = 0; j < M.size(); ++j) {
        EXPECT_NEAR(M[j], exact[j], 1e-9 * std::max(1e-3, exact[j])) << "cell " << j << " K " << K;
        row_total += M[j];
        column[j % size_t(K)] += M[j];
      }
      EXPECT_NEAR(row_total, double(K), 1e-9);            // inclusion probabilities sum to K
      for (double c : column) EXPECT_NEAR(c, 1.0, 1e-9);  // every position holds one item
    }
  }
}

TEST(Explore, MarginalsHoldWhenMostItemsArriveEarlyAndForPeakedSoftmax) {
  // k close to n: most items are "heavy" (left out by prefix/suffix products, not division).
  const auto w = normalised({5, 4, 3, 2, 1, 0.5, 0.25, 0.1});
  std::vector<double> exact(w.size() * 7, 0.0);
  std::vector<int32_t> prefix;
  enumerate(w, 7, prefix, 1, 1, exact, nullptr);
  const auto M = plackett_luce_marginals(w, 7);
  for (size_t j = 0; j < M.size(); ++j) EXPECT_NEAR(M[j], exact[j], 1e-9 * std::max(1e-3, exact[j])) << j;
  // A very low temperature (log-weights 370 apart per rank): nothing underflows, the top ten in
  // order with certainty.
  std::vector<float> scores(300);
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = float(i) * 0.37f;
  const auto d = explore(parse_exploration("softmax:temperature=0.001"), scores.data(), 300, 10);
  for (int64_t k = 0; k < 10; ++k) {
    double c = 0;
    for (int32_t i = 0; i < 300; ++i) c += d.marginal(i, k);
    EXPECT_NEAR(c, 1.0, 1e-9);
    EXPECT_NEAR(d.marginal(299 - int32_t(k), k), 1.0, 1e-9);  // the top items in order
  }
  Rng rng(1);
  const Slate s = d.sample(rng);
  EXPECT_EQ(s.items, (std::vector<int32_t>{299, 298, 297, 296, 295, 294, 293, 292, 291, 290}));
  EXPECT_NEAR(s.prefix.back(), 1.0, 1e-9);
}

TEST(Explore, PrefixProbabilitiesAndMixtureMarginalsAreExact) {
  const auto w = normalised({3, 2, 1, 0.5, 0.25});
  const int64_t K = 3;
  const double eps = 0.2;
  const auto d = SlateDistribution::plackett_luce(w, K, eps);
  std::vector<double> M(w.size() * K, 0.0);
  std::map<std::vector<int32_t>, double> slates;
  std::vector<int32_t> prefix;
  enumerate(w, K, prefix, 1, 1, M, &slates);
  const double uniform_slate = 1.0 / (5 * 4 * 3);
  double total = 0;
  for (const auto& [s, p] : slates) {
    EXPECT_NEAR(d.prefix_probability(s.data(), K), (1 - eps) * p + eps * uniform_slate, 1e-12);
    total += d.prefix_probability(s.data(), K);
  }
  EXPECT_NEAR(total, 1.0, 1e-12);
  for (int32_t i = 0; i < 5; ++i)
    for (int64_t k = 0; k < K; ++k) EXPECT_NEAR(d.marginal(i, k), (1 - eps) * M[size_t(i * K + k)] + eps / 5, 1e-10);
}

TEST(Explore, SampledSlatesFollowTheirPropensitiesAndAreSeeded) {
  const std::vector<float> scores = {2.0f, 1.5f, 1.0f, 0.2f, -1.0f, 0.0f};
  for (const char* spec : {"softmax:temperature=0.7,epsilon=0.1", "epsilon_greedy:epsilon=0.3", "squarecb:gamma=5"}) {
    const auto d = explore(parse_exploration(spec), scores.data(), 6, 3);
    Rng rng(11);
    const int draws = 40000;
    std::vector<double> freq(18, 0.0);
    for (int r = 0; r < draws; ++r) {
      const Slate s = d.sample(rng);
      for (int64_t k = 0; k < 3; ++k) freq[size_t(s.items[size_t(k)] * 3 + k)] += 1.0 / draws;
    }
    for (size_t j = 0; j < freq.size(); ++j) {
      const double m = d.marginals()[j], se = std::sqrt(m * (1 - m) / draws);
      EXPECT_LE(std::abs(freq[j] - m), 5 * se + 1e-12) << spec << " cell " << j;
    }
    Rng a(5), b(5);
    for (int r = 0; r < 20; ++r) EXPECT_EQ(d.sample(a).items, d.sample(b).items) << spec;
  }
}

TEST(Explore, SquareCbFirstPositionIsInverseGapWeighting) {
  const std::vector<float> y = {0.1f, 0.5f, 0.3f, 0.45f};
  const double gamma = 10;
  const auto d = explore(ExplorationOptions().kind("squarecb").gamma(gamma), y.data(), 4, 1);
  double others = 0;
  for (int32_t i : {0, 2, 3}) {
    const double p = 1 / (4 + gamma * (0.5 - double(y[size_t(i)])));
    EXPECT_NEAR(d.marginal(i, 0), p, 1e-7);
    others += p;
  }
  EXPECT_NEAR(d.marginal(1, 0), 1 - others, 1e-7);
}

TEST(Explore, SpecsParseAndBadSpecsAreRefused) {
  auto o = parse_exploration("softmax:temperature=0.5,epsilon=0.1");
  EXPECT_EQ(o.kind(), "softmax");
  EXPECT_EQ(o.temperature(), 0.5);
  EXPECT_EQ(o.epsilon(), 0.1);
  EXPECT_EQ(to_string(parse_exploration(to_string(o))), to_string(o));
  EXPECT_EQ(parse_exploration("epsilon_greedy").epsilon(), 0.1);
  for (const char* bad : {"boltzmann", "softmax:temperature=0", "softmax:temp=1", "greedy:epsilon=2", "softmax:x"}) {
    EXPECT_THROW(parse_exploration(bad), Error) << bad;
  }
}

class PolicyWorld : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new SyntheticWorld(
        generate_world(SyntheticOptions().users(24).items(15).interactions(2000).seed(3).threads(1)));
  }
  static void TearDownTestSuite() { delete world_; }
  static SyntheticWorld* world_;
};
SyntheticWorld* PolicyWorld::world_ = nullptr;

TEST_F(PolicyWorld, ExactValueMatchesSimulatedClicksAndTheOracleIsBest) {
  WorldEnvironment env(*world_, EnvironmentOptions().k(3).threads(1));
  const Policy logger = scored_policy(noisy_truth_scorer(env, 1.0, 9), parse_exploration("softmax:epsilon=0.1"), 3);
  const double v = env.value(logger);
  const ImpressionLog log = simulate(env, logger, 60000, 4);
  double sq = 0;
  std::vector<double> per(size_t(log.size()), 0.0);
  for (int64_t n = 0; n < log.size(); ++n)
    for (int64_t k = 0; k < 3; ++k) per[size_t(n)] += log.click[size_t(n * 3 + k)];
  const double mean = log.mean_reward();
  for (double r : per) sq += (r - mean) * (r - mean);
  const double se = std::sqrt(sq / double(log.size() - 1) / double(log.size()));
  EXPECT_LE(std::abs(mean - v), 4 * se) << "exact " << v << " simulated " << mean;
  const double oracle = env.value(env.oracle());
  EXPECT_GT(oracle, v);
  EXPECT_GT(oracle, env.value(scored_policy(noisy_truth_scorer(env, 1.0, 9), ExplorationOptions(), 3)));
  EXPECT_GT(v, env.value(scored_policy(truth_scorer(env), parse_exploration("uniform"), 3)));
}

TEST_F(PolicyWorld, SimulatedLogsAreSeededAndThreadIndependent) {
  WorldEnvironment env(*world_, EnvironmentOptions().k(2));
  const Policy logger = scored_policy(truth_scorer(env), parse_exploration("softmax:temperature=0.5"), 2);
  const ImpressionLog a = simulate(env, logger, 500, 8, /*threads=*/1), b = simulate(env, logger, 500, 8, 2);
  EXPECT_EQ(a.item, b.item);
  EXPECT_EQ(a.click, b.click);
  EXPECT_EQ(a.propensity, b.propensity);
  EXPECT_NE(a.item, simulate(env, logger, 500, 9).item);
}

TEST_F(PolicyWorld, SnipsOfTheLoggingPolicyIsTheLoggedMeanReward) {
  WorldEnvironment env(*world_, EnvironmentOptions().k(3));
  const Policy logger = scored_policy(noisy_truth_scorer(env, 0.5, 2), parse_exploration("softmax:epsilon=0.2"), 3);
  const ImpressionLog log = simulate(env, logger, 3000, 1);
  const OpeResult r = evaluate_off_policy(log, logger, sigmoid_reward_model(noisy_truth_scorer(env, 1.0, 3)),
                                          OpeOptions().bootstrap(50));
  EXPECT_NEAR(r["snips"].value, log.mean_reward(), 1e-12);
  EXPECT_NEAR(r["ips"].value, log.mean_reward(), 1e-12);
  EXPECT_NEAR(r["rips"].value, log.mean_reward(), 1e-12);
  EXPECT_NEAR(r["slate_ips"].value, log.mean_reward(), 1e-12);
  EXPECT_NEAR(r.max_weight, 1.0, 1e-12);
  EXPECT_LE(r["snips"].low, r["snips"].value);
  EXPECT_GE(r["snips"].high, r["snips"].value);
  EXPECT_GT(r["snips"].high, r["snips"].low);
}

TEST_F(PolicyWorld, IpsAndDrAreUnbiasedOverReplicates) {
  WorldEnvironment env(*world_, EnvironmentOptions().k(3));
  const Policy logger = scored_policy(noisy_truth_scorer(env, 1.0, 5), parse_exploration("softmax:epsilon=0.2"), 3);
  // Targets: a deterministic ranking and a sharper stochastic one, both far from the logger.
  const Policy greedy = scored_policy(noisy_truth_scorer(env, 0.3, 6), ExplorationOptions(), 3);
  const Policy sharp = scored_policy(truth_scorer(env), parse_exploration("softmax:temperature=0.3"), 3);
  // A deliberately wrong reward model: DR must stay unbiased, DM must not.
  const RewardModel model = sigmoid_reward_model(noisy_truth_scorer(env, 1.5, 7));
  for (const Policy* target : {&greedy, &sharp}) {
    const double truth = env.value(*target);
    const int reps = 200;
    std::map<std::string, std::vector<double>> est;
    for (int rep = 0; rep < reps; ++rep) {
      const ImpressionLog log = simulate(env, logger, 400, uint64_t(100 + rep));
      const OpeResult r = evaluate_off_policy(log, *target, model, OpeOptions().bootstrap(0).threads(1));
      for (const char* e : {"ips", "dr", "rips", "dm"}) est[e].push_back(r[e].value);
    }
    for (const char* e : {"ips", "dr", "rips"}) {
      const auto& v = est[e];
      const double mean = std::accumulate(v.begin(), v.end(), 0.0) / reps;
      double sq = 0;
      for (double x : v) sq += (x - mean) * (x - mean);
      const double se = std::sqrt(sq / (reps - 1) / reps);
      EXPECT_LE(std::abs(mean - truth), 3 * se) << e << " mean " << mean << " truth " << truth << " se " << se;
    }
    const double dm = std::accumulate(est["dm"].begin(), est["dm"].end(), 0.0) / reps;
    EXPECT_GT(std::abs(dm - truth), 0.01) << "the wrong reward model should bias DM";
  }
}

}  // namespace
}  // namespace mtrec
