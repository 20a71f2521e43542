// `mtrec demo`: the main job of the README quick start, end to end on the synthetic world
// (default) or on MovieLens 100K (`--dataset ml-100k --data-dir DIR`).
//  1. Generates and validates the world (1000 users x 500 items, three scenarios, every row a
//     context text), or reads ML-100K.
//  2. Splits every row once by time (80/10/10): the items released late are first seen in the
//     test rows (cold start).
//  3. Trains the unified model (text backbone fine-tuned, MMoE experts, STAR scenario layer,
//     rating + CTR + next-item + match + scenario classifier + λ·MLM in one loss), and, for the
//     comparison, the same model with one task at a time, with the same budget (epochs).
//  4. Prints every task's test metrics, overall, per scenario and on cold items, beside the
//     single-task models; the scenario classifier against the majority class.
//  5. Serves the model through the Recommender (what `mtrec serve` runs): HR/NDCG@10 of the
//     served top-10 on the test rows, and for a few users the profile, the last items and the
//     top-5 per scenario (task map: --task-map) with titles, the history item that explains
//     each, and whether the item's main topic is the user's strongest topic.
//  6. Writes the run's HTML report (RUN_DIR/joint/report.html) and the checkpoint.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "cli.h"
#include "joint_cli.h"
#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/log.h"
#include "mtrec/data/movielens.h"
#include "mtrec/eval/protocols.h"
#include "mtrec/model/joint_data.h"
#include "mtrec/model/task_map.h"
#include "mtrec/serve/recommender.h"
#include "synthetic_cli.h"
#include "train_registry.h"

namespace mtrec::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct DemoArgs {
  std::string dataset = "synthetic", data_dir;
  SyntheticOptions world = SyntheticOptions().users(1000).items(500).interactions(50000);
  JointTrainOptions joint =
      JointTrainOptions().epochs(2).text_dim(32).text_layers(1).text_max_len(24).dim(32).expert_hidden({64, 32});
  bool compare = true;
  std::string task_map;  // "" : kWorldTaskMap on the synthetic world, the model's default head otherwise
  std::string run_dir = "demo-run";
  int samples = 2;
};

/// The synthetic world's scenarios and the heads that serve them.
constexpr const char* kWorldTaskMap = "home_feed=ctr:1,next_item:0.5;search=ctr:1,match:0.5;*=ctr";

/// The user's strongest topic in the generator's truth.
int32_t strongest_topic(const SyntheticTruth& t, int32_t u) {
  const float* row = t.user_topic.data() + size_t(u) * size_t(t.topics);
  return static_cast<int32_t>(std::max_element(row, row + t.topics) - row);
}

/// The main metric of each task, for the joint-vs-single table.
const std::vector<std::pair<std::string, std::string>>& main_metrics() {
  static const std::vector<std::pair<std::string, std::string>> m = {
      {"rating", "rmse"}, {"ctr", "auc"}, {"next_item", "NDCG@10"}, {"match", "NDCG@10"}, {"scenario", "accuracy"}};
  return m;
}

double metric_of(const JointReport& r, const std::string& task, const std::string& metric) {
  auto it = r.overall.find(task);
  if (it == r.overall.end() || !it->second.count(metric)) return std::nan("");
  return it->second.at(metric);
}

void run_demo(const DemoArgs& a, const CliContext& ctx) {
  const auto t_all = Clock::now();
  auto t0 = Clock::now();
  const bool synthetic = a.dataset == "synthetic";
  SyntheticWorld w;
  nlohmann::json world;
  if (synthetic) {
    w = generate_world(SyntheticOptions(a.world).seed(ctx.seed));
    world = summarize_world(w, seconds_since(t0));
  } else {
    MTREC_CHECK(!a.data_dir.empty(), "demo --dataset ml-100k needs --data-dir (the folder holding u.data)");
    w.data = read_movielens_100k(a.data_dir);
    world = {{"dataset", "ml-100k"}, {"data_dir", a.data_dir}, {"seconds", seconds_since(t0)}};
  }
  const Dataset& ds = w.data;
  const SyntheticTruth* truth = synthetic ? &w.truth : nullptr;
  if (synthetic) {
    fmt::print(
        "synthetic world: {} users, {} items, {} topics, {} scenarios, {} exposures, {} context texts, "
        "generated in {:.2f} s; validation: {}\n",
        ds.num_users(), ds.num_items(), truth->topics, ds.scenarios.size(), ds.interactions.size(),
        ds.context_text.size(), world["seconds"].get<double>(), world["valid"].get<bool>() ? "ok" : "FAILED");
    if (!world["valid"].get<bool>()) {
      for (auto& p : world["problems"]) fmt::print("  {}\n", p.get<std::string>());
      ctx.write_json({{"world", world}, {"seed", ctx.seed}});
      throw ExitCode{1};
    }
  } else {
    fmt::print("MovieLens 100K ({}): {} users, {} items, {} ratings\n", a.data_dir, ds.num_users(), ds.num_items(),
               ds.interactions.size());
  }

  // One split for every task (protocol M): 80/10/10 by time.
  Split split = protocol_split(ds.interactions, "temporal", ctx.seed);
  Interactions known = ds.interactions.subset(known_rows(split));
  Interactions test = ds.interactions.subset(split.test);
  fmt::print("split by time: {} train / {} validation / {} test rows\n\n", split.train.size(), split.valid.size(),
             split.test.size());

  JointTrainOptions o = a.joint;
  o.seed(ctx.seed).device(ctx.device);
  RunOptions run = RunOptions().out_dir(a.run_dir).progress(true).id_maps(ds);
  t0 = Clock::now();
  JointFit fit = fit_joint(ds, split, o, run);
  const double joint_s = seconds_since(t0);
  JointReport rep = fit.evaluate(ds, known, test);
  print_joint_report(rep, fmt::format("joint model ({} tasks, {} epochs, {:.1f} s), test rows:",
                                      fit.model->options.tasks().size(), fit.summary.state.epoch, joint_s));
  nlohmann::json out = {{"seed", ctx.seed}, {"world", world}, {"joint", joint_report_json(rep)}, {"joint_s", joint_s}};

  // The same model with one task at a time, same epochs.
  if (a.compare) {
    fmt::print("\njoint against single-task models (same architecture and epochs):\n  {:<20} {:>9} {:>9}\n",
               "task / metric", "joint", "single");
    for (const auto& [task, metric] : main_metrics()) {
      if (!fit.model->options.has_task(parse_head(task)) || task == "scenario") continue;
      JointTrainOptions so = o;
      so.tasks({parse_head(task)});
      RunOptions quiet;
      JointFit single = fit_joint(ds, split, so, quiet);
      JointReport sr = single.evaluate(ds, known, test);
      const double j = metric_of(rep, task, metric), s = metric_of(sr, task, metric);
      fmt::print("  {:<20} {:>9.4f} {:>9.4f}  ({:.1f} s)\n", task + " " + metric, j, s, single.seconds);
      out["single"][task] = joint_report_json(sr);
    }
  }
  if (rep.overall.count("scenario"))
    fmt::print("\nscenario classifier on the test contexts: accuracy {:.4f} (majority class {:.4f})\n",
               rep.overall["scenario"]["accuracy"], rep.overall["scenario"]["majority_accuracy"]);

  // Recommendations per scenario for a few test users, served by the Recommender as
  // `mtrec serve` would serve this checkpoint.
  const std::string task_map = !a.task_map.empty() ? a.task_map : synthetic ? kWorldTaskMap : "";
  Recommender rec(fit, ds, known, RecommenderOptions().task_map(task_map).device(ctx.device));
  const ServedReport served = evaluate_served(rec, ds, test, 10);
  fmt::print(
      "\nserved top-10 (task map, seen items excluded) on the test rows: HR@10 {:.4f}, NDCG@10 {:.4f} ({} users)\n",
      served.overall.at("HR@10"), served.overall.at("NDCG@10"), served.overall.at("users"));
  out["served"] = {{"overall", served.overall}, {"per_scenario", served.per_scenario}};
  UserHistories hist(ds, known, ds.num_users(), fit.seed);
  auto tag = [&](int32_t i) {
    return truth ? truth->topic_names[size_t(truth->item_main_topic[size_t(i)])] : ds.item_text.get(i, "genres");
  };
  nlohmann::json recs = nlohmann::json::array();
  fmt::print("\nrecommendations (task map: {}):\n", rec.info().task_map);
  for (int k = 0; k < a.samples && !test.empty(); ++k) {
    const int32_t u = test.user[(test.size() * size_t(k)) / size_t(std::max(1, a.samples))];
    const auto& h = hist.items(u);
    nlohmann::json r = {{"user", ds.users.raw(u)}, {"profile", ds.user_text.get(u, "profile")}};
    fmt::print("\nuser {}{}: \"{}\"\n  last items:\n", ds.users.raw(u),
               truth ? " (strongest topic: " + truth->topic_names[size_t(strongest_topic(*truth, u))] + ")" : "",
               r["profile"].get<std::string>());
    for (size_t j = h.size() > 3 ? h.size() - 3 : 0; j < h.size(); ++j)
      fmt::print("    {:<5} [{}] {}\n", ds.items.raw(h[j]), tag(h[j]), ds.item_text.get(h[j], "title"));
    for (const std::string& sname : rec.info().scenarios) {
      RecommendRequest q;
      q.user = ds.users.raw(u);
      q.k = 5;
      q.explain = 1;
      if (ds.scenarios.size() > 0) q.scenario = sname;
      const RecommendResponse resp = rec.recommend(q);
      fmt::print("  {}:\n", sname);
      for (const auto& x : resp.items) {
        const bool match = truth && truth->item_main_topic[size_t(x.index)] == strongest_topic(*truth, u);
        const std::string why = x.because.empty() ? "" : fmt::format("  (like {})", x.because[0].title);
        fmt::print("    {:<5} {:>6.2f} {}[{}] {}{}\n", x.item, x.score, truth ? (match ? "yes " : "no  ") : "",
                   tag(x.index), x.title, why);
        r["top5"][sname].push_back({{"item", x.item},
                                    {"title", x.title},
                                    {"score", x.score},
                                    {"tag", tag(x.index)},
                                    {"because", x.because.empty() ? "" : x.because[0].item}});
      }
    }
    recs.push_back(r);
  }
  out["recommendations"] = recs;
  const std::string ckpt = a.run_dir + "/joint.ckpt";
  save_checkpoint(ckpt, fit.to_checkpoint(ds));
  const double wall = seconds_since(t_all);
  fmt::print("\nreport: {}/joint/report.html, checkpoint: {}\nwall time {:.1f} s (joint model {:.1f} s) on {}\n",
             a.run_dir, ckpt, wall, joint_s, describe_device(choose_device(ctx.device)));
  out["wall_s"] = wall;
  ctx.write_json(out);
}

}  // namespace

MTREC_CLI_COMMANDS([](CLI::App& app, CliContext& ctx) {
  auto* demo = app.add_subcommand("demo",
                                  "Generate the synthetic world (or read ML-100K), train the unified model and "
                                  "the single-task models on it, evaluate them and print recommendations");
  auto a = std::make_shared<DemoArgs>();
  demo->add_option("--dataset", a->dataset, "synthetic|ml-100k")
      ->check(CLI::IsMember({"synthetic", "ml-100k"}))
      ->capture_default_str();
  demo->add_option("--data-dir", a->data_dir, "ml-100k: the folder holding u.data");
  add_world_options(demo, a->world);
  add_joint_options(demo, a->joint);
  demo->add_option("--epochs", a->joint.trainer().epochs(), "Joint (and single-task) epochs")->capture_default_str();
  demo->add_flag("!--no-compare", a->compare, "Skip the single-task models");
  demo->add_option("--task-map", a->task_map,
                   std::string("Heads per scenario: scen=head[:w],...;*=head (default: ") + kWorldTaskMap +
                       " on the synthetic world, the model's default head on ML-100K)");
  demo->add_option("--run-dir", a->run_dir, "Folder for the report, metrics and checkpoints")->capture_default_str();
  demo->add_option("--samples", a->samples, "Users shown with their recommendations")->capture_default_str();
  demo->callback([&ctx, a] { run_demo(*a, ctx); });
});
}  // namespace mtrec::cli
