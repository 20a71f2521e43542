#include <gtest/gtest.h>

#include "mtrec/policy/environment.h"
#include "mtrec/policy/learn.h"

namespace mtrec {
namespace {

TEST(PolicyLearn, OfflineReinforceOnATwoItemWorldConvergesToTheBetterItem) {
  const SyntheticWorld world =
      generate_world(SyntheticOptions().users(30).items(2).interactions(600).seed(5).threads(1));
  WorldEnvironment env(world, EnvironmentOptions().k(1));
  const Policy uniform = scored_policy(truth_scorer(env), parse_exploration("uniform"), 1);
  const ImpressionLog log = simulate(env, uniform, 20000, 3);
  const auto learned =
      learn_offline(log, env.users(), env.items(), env.scenarios(), OfflineOptions().epochs(20).seed(2));
  int right = 0, clear = 0;
  std::vector<float> logits;
  for (int32_t u = 0; u < env.users(); ++u)
    for (int32_t s = 0; s < env.scenarios(); ++s) {
      const auto p = env.click_probabilities({u, s});
      if (std::abs(p[0] - p[1]) < 0.05) continue;  // too close to tell from the log
      learned->score({u, s}, logits);
      ++clear;
      right += (logits[0] > logits[1]) == (p[0] > p[1]);
    }
  ASSERT_GT(clear, 20);
  EXPECT_GE(right, clear * 9 / 10) << right << " of " << clear;
  const double v_uniform = env.value(uniform), v_oracle = env.value(env.oracle());
  EXPECT_GT(env.value(learned->policy(1)), v_uniform + 0.8 * (v_oracle - v_uniform));
}

TEST(PolicyLearn, OnlineSquareCbLearnsAndItsRegretGrowsSublinearly) {
  const SyntheticWorld world =
      generate_world(SyntheticOptions().users(40).items(30).interactions(800).seed(6).threads(1));
  WorldEnvironment env(world, EnvironmentOptions().k(1));  // SquareCB's own setting
  const auto r = learn_online(
      env, OnlineOptions().exploration("squarecb:gamma=30").rounds(40000).batch(200).lr(0.05).curve_points(4).seed(3));
  ASSERT_EQ(r.cumulative_regret.size(), 4u);
  ASSERT_EQ(r.rounds.back(), 40000);
  // Regret per round falls: the last quarter's is well below the first quarter's.
  const double first = r.cumulative_regret[0], last = r.cumulative_regret[3] - r.cumulative_regret[2];
  EXPECT_LT(last, 0.6 * first) << first << " then " << last;
  const double v_uniform = env.value(scored_policy(truth_scorer(env), parse_exploration("uniform"), 1));
  const double v_oracle = env.value(env.oracle());
  EXPECT_GT(r.final_greedy_value, v_uniform + 0.5 * (v_oracle - v_uniform));
}

}  // namespace
}  // namespace mtrec
