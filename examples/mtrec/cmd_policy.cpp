// `mtrec policy simulate|evaluate|learn`: exploration, off-policy evaluation and policy learning
// in the synthetic world (policy/). Both commands build the same world from the world options and --world-seed; the
// policy scores items with "the model", the world's true click logit plus N(0, model-noise²)
// noise fixed per (user, item, scenario) (0: the truth itself), whose sigmoid is also the reward
// model of the direct method and the doubly robust estimators.
#include <fmt/format.h>

#include <chrono>

#include "mtrec/core/chart.h"
#include "mtrec/core/check.h"
#include "mtrec/core/io.h"
#include "mtrec/core/log.h"
#include "mtrec/data/impressions.h"
#include "mtrec/model/io.h"
#include "mtrec/policy/environment.h"
#include "mtrec/policy/learn.h"
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

// The regret curves of online learning as an HTML page (one SVG chart), written atomically.
void write_regret_report(const std::string& path, const std::string& title, const OnlineResult& r,
                         double uniform_per_round) {
  std::map<std::string, std::vector<double>> series;
  series["learner"] = r.cumulative_regret;
  for (int64_t x : r.rounds) series["uniform slates"].push_back(uniform_per_round * double(x));
  std::string html = "<!doctype html><html><head><meta charset='utf-8'><title>" + html_escape(title) +
                     "</title><style>body{font-family:sans-serif;margin:2em}svg{border:1px solid #ddd}"
                     "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style></head><body><h1>" +
                     html_escape(title) + "</h1>";
  html += "<p>Cumulative regret: the oracle's expected clicks minus those of the shown slates, at " +
          std::to_string(r.rounds.size()) + " evenly spaced rounds.</p>";
  html += svg_line_chart("cumulative regret", series, "point");
  html += "<table><tr><th>round</th><th>cumulative regret</th><th>clicks</th></tr>";
  for (size_t j = 0; j < r.rounds.size(); ++j)
    html += fmt::format("<tr><td>{}</td><td>{:.1f}</td><td>{:.0f}</td></tr>", r.rounds[j], r.cumulative_regret[j],
                        r.cumulative_clicks[j]);
  html += "</table></body></html>\n";
  write_file_atomic(path, html);
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
  sim->add_option("--impressions", *impressions, "Requests to serve")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sim->add_option("--out", *out, "Impression log to write (CSV, atomically)")->required();
  sim->callback([&ctx, sf, out, impressions] {
    auto w = make_world(*sf);
    const Policy logger = make_policy(*w, sf->policy);
    const auto t0 = std::chrono::steady_clock::now();
    const ImpressionLog log = simulate(*w->env, logger, *impressions, ctx.seed);
    const double sim_s = seconds_since(t0);
    write_impressions_csv(log, *out);
    const double value = w->env->value(logger);
    fmt::print("policy {} served {} requests (k={}) in {:.2f} s: {:.0f} impressions/s\n", sf->policy, log.size(), log.k,
               sim_s, double(log.size()) / sim_s);
    fmt::print("clicks per request: logged {:.5f}, exact value V = {:.5f}\nwrote {}\n", log.mean_reward(), value, *out);
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
  ev->add_option("--switch-threshold", ope->switch_threshold(),
                 "switch_dr: weights above it use DM only (0: chosen by estimated MSE)")
      ->capture_default_str();
  ev->add_option("--dros-lambda", ope->dros_lambda(), "dros: shrinkage lambda (0: chosen by estimated MSE)")
      ->capture_default_str();
  ev->callback([&ctx, ef, log_path, ope] {
    auto w = make_world(*ef);
    const ImpressionLog raw = read_impressions_csv(*log_path);
    MTREC_CHECK(raw.k == w->env->k(), *log_path, ": the log's slates have ", raw.k, " positions, --k is ", w->env->k());
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
    fmt::print(
        "largest weight {:.1f}, effective sample size {:.0f}; switch_dr threshold {:.4g}, dros lambda {:.4g}; "
        "exact value V = {:.5f}\n\n",
        r.max_weight, r.effective_sample_size, r.switch_threshold, r.dros_lambda, truth);
    fmt::print("{:<10} {:>10} {:>22} {:>10}\n", "estimator", "estimate",
               fmt::format("{:.0f}% interval", 100 * o.confidence()), "rel.error");
    nlohmann::json est;
    for (const auto& e : r.estimates) {
      const double rel = truth != 0 ? std::abs(e.value - truth) / truth : 0.0;
      fmt::print("{:<10} {:>10.5f}   [{:>8.5f}, {:>8.5f}] {:>9.2f}%\n", e.estimator, e.value, e.low, e.high, 100 * rel);
      est[e.estimator] = {
          {"value", e.value}, {"low", e.low}, {"high", e.high}, {"true_value", truth}, {"relative_error", rel}};
    }
    fmt::print("\nevaluated in {:.2f} s: {:.0f} impressions/s\n", eval_s, double(r.impressions) / eval_s);
    ctx.write_json({{"policy", ef->policy},
                    {"log", *log_path},
                    {"impressions", r.impressions},
                    {"logged_value", r.logged_value},
                    {"true_value", truth},
                    {"max_weight", r.max_weight},
                    {"effective_sample_size", r.effective_sample_size},
                    {"switch_threshold", r.switch_threshold},
                    {"dros_lambda", r.dros_lambda},
                    {"position_factor", r.position_factor},
                    {"estimates", est},
                    {"seconds", eval_s},
                    {"impressions_per_second", double(r.impressions) / eval_s}});
  });

  auto* learn = policy->add_subcommand(
      "learn",
      "Learn a policy: offline from an impression log (a checkpoint the Recommender serves), or online "
      "against the world (regret curve)");
  auto lf = std::make_shared<PolicyWorldFlags>();
  auto mode = std::make_shared<std::string>("offline");
  auto learn_log = std::make_shared<std::string>();
  auto learn_out = std::make_shared<std::string>();
  auto report = std::make_shared<std::string>();
  auto off = std::make_shared<OfflineOptions>();
  auto on = std::make_shared<OnlineOptions>();
  add_policy_world_options(learn, *lf);
  learn->add_option("--mode", *mode, "offline | online")
      ->capture_default_str()
      ->check(CLI::IsMember({"offline", "online"}));
  learn->add_option("--log", *learn_log, "offline: the impression log to learn from");
  learn->add_option("--out", *learn_out, "offline: the learned policy's checkpoint (mtrec recommend / serve read it)");
  learn->add_option("--objective", off->objective(), "offline: reinforce | supervised (the CTR ranker baseline)")
      ->capture_default_str();
  learn->add_option("--behavior", off->behavior(), "offline: learned (a behaviour head) | logged (the propensities)")
      ->capture_default_str();
  learn->add_option("--weight-cap", off->weight_cap(), "offline: cap of pi / beta")->capture_default_str();
  learn->add_option("--top-k-correction", off->top_k_correction(), "offline: the top-K factor lambda_K")
      ->capture_default_str();
  learn->add_option("--epochs", off->epochs(), "offline: passes over the log")->capture_default_str();
  learn->add_option("--exploration", on->exploration(), "online: the exploration over the head's click probabilities")
      ->capture_default_str();
  learn->add_option("--rounds", on->rounds(), "online: requests served")->capture_default_str();
  learn->add_option("--batch", on->batch(), "online: rounds between updates")->capture_default_str();
  learn->add_option("--report", *report, "online: an HTML page with the regret curve");
  learn->callback([&ctx, lf, mode, learn_log, learn_out, report, off, on] {
    auto w = make_world(*lf);
    const WorldEnvironment& env = *w->env;
    const double v_oracle = env.value(env.oracle());
    if (*mode == "online") {
      OnlineOptions o = *on;
      o.seed(ctx.seed);
      const OnlineResult r = learn_online(env, o);
      const double v_uniform = env.value(scored_policy(w->model, parse_exploration("uniform"), env.k()));
      fmt::print(
          "online {} for {} rounds (k={}) in {:.1f} s: cumulative regret {:.1f} (uniform slates: {:.1f}); the "
          "learned head's greedy value {:.5f}, oracle {:.5f}\n",
          o.exploration(), o.rounds(), env.k(), r.seconds, r.cumulative_regret.back(),
          (v_oracle - v_uniform) * double(o.rounds()), r.final_greedy_value, v_oracle);
      for (size_t j = 0; j < r.rounds.size(); ++j)
        fmt::print("  round {:>10}  cumulative regret {:>12.1f}\n", r.rounds[j], r.cumulative_regret[j]);
      if (!report->empty()) {
        write_regret_report(*report, "online " + o.exploration(), r, v_oracle - v_uniform);
        log_info("wrote {}", *report);
      }
      ctx.write_json({{"mode", "online"},
                      {"exploration", o.exploration()},
                      {"rounds", r.rounds},
                      {"cumulative_regret", r.cumulative_regret},
                      {"uniform_regret", (v_oracle - v_uniform) * double(o.rounds())},
                      {"final_greedy_value", r.final_greedy_value},
                      {"oracle_value", v_oracle},
                      {"seconds", r.seconds}});
      return;
    }
    MTREC_CHECK(!learn_log->empty() && !learn_out->empty(), "policy learn --mode offline needs --log and --out");
    const ImpressionLog raw = read_impressions_csv(*learn_log);
    MTREC_CHECK(raw.k == env.k(), *learn_log, ": the log's slates have ", raw.k, " positions, --k is ", env.k());
    const ImpressionLog log = remap_impressions(raw, env.user_ids(), env.item_ids(), env.scenario_ids());
    OfflineOptions o = *off;
    o.seed(ctx.seed);
    const auto t0 = std::chrono::steady_clock::now();
    const auto learned = learn_offline(log, env.users(), env.items(), env.scenarios(), o);
    const double secs = seconds_since(t0);
    Checkpoint ck = learned->to_checkpoint(env.user_ids(), env.item_ids(), env.scenario_ids());
    add_serving_data(ck, make_serving_data(w->world.data, w->world.data.interactions, ctx.seed));
    save_checkpoint(*learn_out, ck);
    std::vector<double> per;
    const double v = env.value(learned->policy(env.k()), &per);
    fmt::print("offline {} (behaviour {}) on {} impressions in {:.1f} s: exact value {:.5f} (oracle {:.5f})\n",
               o.objective(), o.behavior(), log.size(), secs, v, v_oracle);
    nlohmann::json per_scenario;
    for (int32_t s = 0; s < env.scenarios(); ++s) {
      fmt::print("  {:<12} {:.5f}\n", env.scenario_ids().raw(s), per[size_t(s)]);
      per_scenario[env.scenario_ids().raw(s)] = per[size_t(s)];
    }
    fmt::print("wrote {}\n", *learn_out);
    ctx.write_json({{"mode", "offline"},
                    {"objective", o.objective()},
                    {"behavior", o.behavior()},
                    {"impressions", log.size()},
                    {"true_value", v},
                    {"true_value_per_scenario", per_scenario},
                    {"oracle_value", v_oracle},
                    {"seconds", secs},
                    {"out", *learn_out}});
  });
});

}  // namespace mtrec::cli
