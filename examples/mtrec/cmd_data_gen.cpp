// `mtrec data synth`: writes the synthetic world in the generic CSV format.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "mtrec/core/check.h"
#include "mtrec/core/log.h"
#include "mtrec/data/csv_writer.h"
#include "synthetic_cli.h"

namespace mtrec::cli {

void add_world_options(CLI::App* cmd, SyntheticOptions& opt) {
  cmd->add_option("--users", opt.users(), "Number of users")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--items", opt.items(), "Number of items")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--interactions", opt.interactions(), "Approximate number of interactions (exposures)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--topics", opt.topics(), "Number of latent topics")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--scenarios", opt.scenarios(), "Number of scenarios (home_feed, search, ads, scenario_3, ...)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threads", opt.threads(), "Generator threads (0: all cores; the output does not depend on it)")
      ->capture_default_str();
  cmd->add_option("--text-quality", opt.text_quality(),
                  "Share of items whose title names their quality tier (0: the text tells the topic only)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
}

nlohmann::json summarize_world(const SyntheticWorld& w, double seconds) {
  const Dataset& ds = w.data;
  const auto& x = ds.interactions;
  auto stats = compute_stats(ds);
  nlohmann::json s;
  s["users"] = stats.users;
  s["items"] = stats.items;
  s["interactions"] = stats.interactions;
  s["topics"] = w.truth.topics;
  s["density"] = stats.density;
  s["median_per_user"] = stats.median_per_user;
  s["seconds"] = seconds;
  s["interactions_per_second"] = seconds > 0 ? static_cast<double>(x.size()) / seconds : 0.0;
  const auto impression = ds.behaviors.find("impression");
  const auto rating = ds.behaviors.find("rating");
  std::vector<double> n(static_cast<size_t>(ds.scenarios.size())), clicks(n.size()), truth(n.size());
  std::vector<int64_t> per_behavior(static_cast<size_t>(ds.behaviors.size()));
  double rating_sum = 0;
  for (size_t r = 0; r < x.size(); ++r) {
    const auto sc = static_cast<size_t>(x.scenario[r]);
    n[sc] += 1;
    clicks[sc] += x.behavior[r] != impression;
    truth[sc] += w.truth.click_probability(x.user[r], x.item[r], x.scenario[r]);
    per_behavior[static_cast<size_t>(x.behavior[r])]++;
    if (x.behavior[r] == rating) rating_sum += x.rating[r];
  }
  for (size_t sc = 0; sc < n.size(); ++sc)
    s["scenarios"][ds.scenarios.raw(static_cast<int32_t>(sc))] = {
        {"interactions", static_cast<int64_t>(n[sc])},
        {"click_rate", n[sc] > 0 ? clicks[sc] / n[sc] : 0.0},
        {"true_click_rate", n[sc] > 0 ? truth[sc] / n[sc] : 0.0},
        {"bias", w.truth.scenario_bias[sc]},
        {"temperature", w.truth.scenario_temperature[sc]}};
  for (size_t b = 0; b < per_behavior.size(); ++b)
    s["behaviours"][ds.behaviors.raw(static_cast<int32_t>(b))] = per_behavior[b];
  if (rating >= 0 && per_behavior[static_cast<size_t>(rating)] > 0)
    s["mean_star_rating"] = rating_sum / static_cast<double>(per_behavior[static_cast<size_t>(rating)]);
  // Late items are those released after the first release time (cold start).
  int64_t late = 0;
  if (!w.truth.item_release.empty()) {
    const int64_t first = *std::min_element(w.truth.item_release.begin(), w.truth.item_release.end());
    for (int64_t t : w.truth.item_release) late += t > first;
  }
  s["late_items"] = late;
  s["samples"] = nlohmann::json::array();
  for (int32_t i = 0; i < std::min(5, ds.num_items()); ++i)
    s["samples"].push_back(
        {{"item", ds.items.raw(i)},
         {"topic", w.truth.topic_names[static_cast<size_t>(w.truth.item_main_topic[static_cast<size_t>(i)])]},
         {"title", ds.item_text.get(i, "title")}});
  if (ds.num_users() > 0) s["sample_profile"] = ds.user_text.get(0, "profile");
  std::vector<std::string> problems;
  try {
    ds.validate();
  } catch (const Error& e) {
    problems.push_back(e.what());
  }
  for (auto& p : check_world(w)) problems.push_back(std::move(p));
  s["problems"] = problems;
  s["valid"] = problems.empty();
  return s;
}

void print_world_summary(const nlohmann::json& s) {
  fmt::print("synthetic world: {} users, {} items, {} topics, {} interactions (density {:.4f})\n",
             s["users"].get<int64_t>(), s["items"].get<int64_t>(), s["topics"].get<int>(),
             s["interactions"].get<int64_t>(), s["density"].get<double>());
  fmt::print("generated in {:.3f} s: {:.0f} interactions/s\n\n", s["seconds"].get<double>(),
             s["interactions_per_second"].get<double>());
  fmt::print("{:<12} {:>12} {:>11} {:>16}\n", "scenario", "interactions", "click rate", "true click rate");
  for (auto& [name, v] : s["scenarios"].items())
    fmt::print("{:<12} {:>12} {:>11.3f} {:>16.3f}\n", name, v["interactions"].get<int64_t>(),
               v["click_rate"].get<double>(), v["true_click_rate"].get<double>());
  fmt::print("\n{:<12} {:>12}\n", "behaviour", "rows");
  for (auto& [name, v] : s["behaviours"].items()) fmt::print("{:<12} {:>12}\n", name, v.get<int64_t>());
  if (s.contains("mean_star_rating")) fmt::print("mean star rating: {:.2f}\n", s["mean_star_rating"].get<double>());
  fmt::print("late (cold-start) items: {}\n\nsample items:\n", s["late_items"].get<int64_t>());
  for (auto& it : s["samples"])
    fmt::print("  {:<6} [{}] {}\n", it["item"].get<std::string>(), it["topic"].get<std::string>(),
               it["title"].get<std::string>());
  if (s.contains("sample_profile")) fmt::print("sample user profile: {}\n", s["sample_profile"].get<std::string>());
  if (s["valid"].get<bool>()) {
    fmt::print("\nvalidation: ok (ids in range, timestamps increasing per user, no item before its release)\n");
  } else {
    fmt::print("\nvalidation: {} problem(s)\n", s["problems"].size());
    for (auto& p : s["problems"]) fmt::print("  {}\n", p.get<std::string>());
  }
}

MTREC_CLI_COMMANDS([](CLI::App& app, CliContext& ctx) {
  auto* data = group(app, "data", "Datasets: generate, read, inspect");
  auto* synth = data->add_subcommand("synth", "Generate the synthetic world and write it as CSV (generic format)");
  auto opt = std::make_shared<SyntheticOptions>();
  auto out = std::make_shared<std::string>();
  synth
      ->add_option("--out", *out,
                   "Output folder (interactions.csv, items.csv, users.csv, scenarios.csv, behaviours.csv)")
      ->required();
  add_world_options(synth, *opt);
  synth->callback([&ctx, opt, out] {
    opt->seed(ctx.seed);
    const auto t0 = std::chrono::steady_clock::now();
    SyntheticWorld w = generate_world(*opt);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto t1 = std::chrono::steady_clock::now();
    write_dataset_csv(w.data, *out);
    const double write_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    log_info("generated {} interactions in {:.2f} s, wrote {} in {:.2f} s", w.data.interactions.size(), secs, *out,
             write_secs);
    nlohmann::json s = summarize_world(w, secs);
    s["out"] = *out;
    s["seed"] = ctx.seed;
    s["write_seconds"] = write_secs;
    print_world_summary(s);
    ctx.write_json(s);
    if (!s["valid"].get<bool>()) throw ExitCode{1};
  });
});

}  // namespace mtrec::cli
