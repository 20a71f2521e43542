// `mtrec policy simulate|evaluate`: exploration and off-policy evaluation in the synthetic world
// (policy/). Both commands build the same world from the world options and --world-seed; the
// policy scores items with "the model", the world's true click logit plus N(0, model-noise²)
// noise fixed per (user, item, scenario) (0: the truth itself), whose sigmoid is also the reward
// model of the direct method and the doubly robust estimators.
#include <fmt/format.h>

#include <chrono>

#include "mtrec/core/check.h"
#include "mtrec/core/log.h"
#include "mtrec/data/impressions.h"
#include "mtrec/policy/environment.h"
#include "mtrec/policy/ope.h"
#include "synthetic_cli.h"

namespace mtrec::cli {
namespace {

struct PolicyWorldFlags {
  SyntheticOptions world = SyntheticOptions().users(500).items(1000).interactions(10000);
  uint64_t world_seed = 42;
  int64_t k = 10;
  double model_noise = 1.0;
  uint64_t model_seed = 101;
  std::string policy;
};

void add_policy_world_options(CLI::App* cmd, PolicyWorldFlags& f) {
  add_world_options(cmd, f.world);
  cmd->add_option("--world-seed", f.world_seed, "Seed of the world (the log's own draws follow --seed)")
      ->capture_default_str();
  cmd->add_option("--k", f.k, "Slate size")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--model-noise", f.model_noise,
                  "Standard deviation of the model's error on the true click logit (0: the truth)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--model-seed", f.model_seed, "Seed of the model's error")->capture_default_str();
}

struct PolicyWorld {
  SyntheticWorld world;
  std::unique_ptr<WorldEnvironment> env;
  RequestScorer model;
};

std::unique_ptr<PolicyWorld> make_world(const PolicyWorldFlags& f) {
  auto w = std::make_unique<PolicyWorld>();
  SyntheticOptions o = f.world;
  o.seed(f.world_seed);
  w->world = generate_world(o);
  w->env = std::make_unique<WorldEnvironment>(w->world, EnvironmentOptions().k(f.k));
  w->model = noisy_truth_scorer(*w->env, f.model_noise, f.model_seed);
  return w;
}

// "oracle" (the true top k) or an exploration spec over the model's scores.
Policy make_policy(const PolicyWorld& w, const std::string& spec) {
  if (spec == "oracle") return w.env->oracle();
  return scored_policy(w.model, parse_exploration(spec), w.env->k());
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

MTREC_CLI_COMMANDS([](CLI::App& app, CliContext& ctx) {
  auto* policy = group(app, "policy", "Exploration and off-policy evaluation in the synthetic world");
  const char* policy_help =
      "oracle, or greedy | epsilon_greedy | softmax | squarecb | uniform [:key=value,...] with keys epsilon, "
      "temperature, gamma (e.g. softmax:temperature=0.5,epsilon=0.1)";

  auto* sim = policy->add_subcommand("simulate", "Log impressions of an exploring policy in the world (CSV)");
  auto sf = std::make_shared<PolicyWorldFlags>();
  sf->policy = "softmax:temperature=1,epsilon=0.1";
  auto out = std::make_shared<std::string>();
  auto impressions = std::make_shared<int64_t>(100000);
  add_policy_world_options(sim, *sf);
  sim->add_option("--policy", sf->policy, policy_help)->capture_default_str();
  sim->add_option("--impressions", *impressions, "Requests to serve")->capture_default_str()->check(CLI::PositiveNumber);
  sim->add_option("--out", *out, "Impression log to write (CSV, atomically)")->required();
  sim->callback([&ctx, sf, out, impressions] {
    auto w = make_world(*sf);
    const Policy logger = make_policy(*w, sf->policy);
    const auto t0 = std::chrono::steady_clock::now();
    const ImpressionLog log = simulate(*w->env, logger, *impressions, ctx.seed);
    const double sim_s = seconds_since(t0);
    write_impressions_csv(log, *out);
    const double value = w->env->value(logger);
    fmt::print("policy {} served {} requests (k={}) in {:.2f} s: {:.0f} impressions/s\n", sf->policy, log.size(),
               log.k, sim_s, double(log.size()) / sim_s);
    fmt::print("clicks per request: logged {:.5f}, exact value V = {:.5f}\nwrote {}\n", log.mean_reward(), value,
               *out);
    ctx.write_json({{"policy", sf->policy},
                    {"impressions", log.size()},
                    {"k", log.k},
                    {"logged_value", log.mean_reward()},
                    {"true_value", value},
                    {"seconds", sim_s},
                    {"impressions_per_second", double(log.size()) / sim_s},
                    {"out", *out}});
  });

  auto* ev = policy->add_subcommand("evaluate", "Estimate a policy's value from an impression log (every estimator)");
  auto ef = std::make_shared<PolicyWorldFlags>();
  ef->policy = "greedy";
  auto log_path = std::make_shared<std::string>();
  auto ope = std::make_shared<OpeOptions>();
  add_policy_world_options(ev, *ef);
  ev->add_option("--log", *log_path, "Impression log (CSV written by `mtrec policy simulate`)")->required();
  ev->add_option("--policy", ef->policy, policy_help)->capture_default_str();
  ev->add_option("--bootstrap", ope->bootstrap(), "Bootstrap replicates of the intervals")->capture_default_str();
  ev->add_option("--confidence", ope->confidence(), "Interval coverage")->capture_default_str();
  ev->add_option("--switch-threshold", ope->switch_threshold(), "switch_dr: weights above it use DM only")
      ->capture_default_str();
  ev->add_option("--dros-lambda", ope->dros_lambda(), "dros: shrinkage lambda")->capture_default_str();
  ev->callback([&ctx, ef, log_path, ope] {
    auto w = make_world(*ef);
    const ImpressionLog raw = read_impressions_csv(*log_path);
    MTREC_CHECK(raw.k == w->env->k(), *log_path, ": the log's slates have ", raw.k, " positions, --k is ",
                w->env->k());
    const ImpressionLog log = remap_impressions(raw, w->env->user_ids(), w->env->item_ids(), w->env->scenario_ids());
    const Policy target = make_policy(*w, ef->policy);
    const auto t0 = std::chrono::steady_clock::now();
    OpeOptions o = *ope;
    o.seed(ctx.seed);
    const OpeResult r = evaluate_off_policy(log, target, sigmoid_reward_model(w->model), o);
    const double eval_s = seconds_since(t0);
    const double truth = w->env->value(target);
    fmt::print("policy {} on {} impressions (k={}) of {}: logged clicks per request {:.5f}\n", ef->policy,
               r.impressions, log.k, *log_path, r.logged_value);
    fmt::print("largest weight {:.1f}, effective sample size {:.0f}; exact value V = {:.5f}\n\n", r.max_weight,
               r.effective_sample_size, truth);
    fmt::print("{:<10} {:>10} {:>22} {:>10}\n", "estimator", "estimate",
               fmt::format("{:.0f}% interval", 100 * o.confidence()), "rel.error");
    nlohmann::json est;
    for (const auto& e : r.estimates) {
      const double rel = truth != 0 ? std::abs(e.value - truth) / truth : 0.0;
      fmt::print("{:<10} {:>10.5f}   [{:>8.5f}, {:>8.5f}] {:>9.2f}%\n", e.estimator, e.value, e.low, e.high, 100 * rel);
      est[e.estimator] = {{"value", e.value}, {"low", e.low}, {"high", e.high}, {"true_value", truth},
                          {"relative_error", rel}};
    }
    fmt::print("\nevaluated in {:.2f} s: {:.0f} impressions/s\n", eval_s, double(r.impressions) / eval_s);
    ctx.write_json({{"policy", ef->policy},
                    {"log", *log_path},
                    {"impressions", r.impressions},
                    {"logged_value", r.logged_value},
                    {"true_value", truth},
                    {"max_weight", r.max_weight},
                    {"effective_sample_size", r.effective_sample_size},
                    {"position_factor", r.position_factor},
                    {"estimates", est},
                    {"seconds", eval_s},
                    {"impressions_per_second", double(r.impressions) / eval_s}});
  });
});

}  // namespace mtrec::cli
