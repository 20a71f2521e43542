// `mtrec train --task joint` (the default task): the unified model on one split, every task
// reported on the test rows, overall, per scenario and on cold-start items; and `mtrec eval`
// of a joint checkpoint.
//   mtrec train --dataset synthetic --arch mmoe --scenario-arch star --weighting uncertainty --out joint.ckpt
#include <fmt/format.h>

#include <chrono>
#include <set>
#include <sstream>

#include "joint_cli.h"
#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/head.h"
#include "mtrec/core/log.h"
#include "mtrec/eval/protocols.h"
#include "mtrec/serve/recommender.h"
#include "mtrec/train/distributed.h"
#include "train_registry.h"

namespace mtrec::cli {

void add_joint_options(CLI::App* cmd, JointTrainOptions& o) {
  static std::string tasks;
  tasks.clear();
  for (const Head h : o.tasks()) tasks += (tasks.empty() ? "" : ",") + std::string(head_name(h));
  cmd->add_option_function<std::string>(
         "--tasks",
         [&o](const std::string& v) {
           std::vector<Head> t;
           std::stringstream ss(v);
           for (std::string s; std::getline(ss, s, ',');)
             if (!s.empty()) t.push_back(parse_head(s));  // an unknown name fails here, naming the heads
           o.tasks(t);
         },
         "joint: comma-separated tasks (rating,ctr,next_item,match,scenario,mlm; those the data lacks are left out)")
      ->default_str(tasks);
  // Enum options by name; the model's options hold them once (JointTrainOptions::model_).
  cmd->add_option_function<std::string>(
         "--arch", [&o](const std::string& v) { o.arch(v); }, "joint: shared experts (shared-bottom|mmoe|ple)")
      ->check(CLI::IsMember({"shared-bottom", "mmoe", "ple"}))
      ->default_str(nn::expert_arch_name(o.model().arch()));
  cmd->add_option("--levels", o.model().levels(), "joint: PLE extraction levels")->capture_default_str();
  cmd->add_option("--experts", o.model().experts(), "joint: experts (MMoE) / shared experts per level (PLE)")
      ->capture_default_str();
  cmd->add_option_function<std::string>(
         "--scenario-arch", [&o](const std::string& v) { o.scenario_arch(v); },
         "joint: scenario conditioning (none|star|pepnet)")
      ->check(CLI::IsMember({"none", "star", "pepnet"}))
      ->default_str(nn::scenario_arch_name(o.model().scenario_arch()));
  cmd->add_option("--weighting", o.weighting(), "joint: loss weighting (static|uncertainty|gradnorm)")
      ->check(CLI::IsMember({"static", "uncertainty", "gradnorm"}))
      ->capture_default_str();
  cmd->add_option_function<std::string>(
         "--text", [&o](const std::string& v) { o.text(v); },
         "joint: text encoder in the joint loss (finetune|frozen|none)")
      ->check(CLI::IsMember({"finetune", "frozen", "none"}))
      ->default_str(text_mode_name(o.model().text()));
  cmd->add_option("--text-refresh-every", o.model().text_refresh_every(),
                  "joint: training steps between text-cache refreshes")
      ->capture_default_str();
  cmd->add_option(
         "--profile-refresh-every", o.model().profile_refresh_every(),
         "joint: training steps between profile-text cache refreshes (0: the batch's profiles encoded each step)")
      ->capture_default_str();
  cmd->add_option("--text-finetune-items", o.model().text_finetune_items(),
                  "joint: a batch's distinct items encoded with gradient, at most (0: all)")
      ->capture_default_str();
  cmd->add_option("--scenario-rows", o.model().scenario_rows(),
                  "joint: rows per batch the scenario classifier trains on, at most (0: all)")
      ->capture_default_str();
  cmd->add_option("--sparse-ids", o.model().sparse_ids(),
                  "joint: row-sparse gradients and lazy Adam for the ID tables looked up by row")
      ->capture_default_str();
  cmd->add_option("--text-lr-scale", o.model().text_lr_scale(),
                  "joint: the text encoder's lr as a multiple of the model's")
      ->capture_default_str();
  cmd->add_option("--mlm-lambda", o.mlm_lambda(), "joint: λ of the MLM loss")->capture_default_str();
  cmd->add_option("--pretrain-epochs", o.pretrain_epochs(), "joint: MLM epochs on the catalogue before the joint run")
      ->capture_default_str();
  cmd->add_option("--text-dim", o.text_dim(), "joint: text encoder width")->capture_default_str();
  cmd->add_option("--text-layers", o.text_layers(), "joint: text encoder layers")->capture_default_str();
  cmd->add_option("--max-history", o.model().max_history(), "joint: recent items the sequence encoder reads")
      ->capture_default_str();
  cmd->add_option("--next-item-negatives", o.model().next_item_negatives(),
                  "joint: 0 = full softmax over the catalogue, K = sampled softmax over K negatives")
      ->capture_default_str();
  cmd->add_option("--factor-terms", o.model().factor_terms(),
                  "joint: the heads' collaborative-filtering terms beside the towers (rating + <p_u,q_i>, "
                  "CTR + <u,i> + b_i)")
      ->capture_default_str();
  cmd->add_option("--user-id-norm", o.model().user_id_norm(),
                  "joint: a LayerNorm on the user ID embedding, so it has the sequence state's scale")
      ->capture_default_str();
  cmd->add_option("--rating-l2", o.model().rating_l2(),
                  "joint: lambda of the rating head's per-example L2 on its biased-MF rows")
      ->capture_default_str();
  cmd->add_option("--id-dropout", o.model().id_dropout(), "joint: share of examples trained without ID embeddings")
      ->capture_default_str();
  cmd->add_option("--select-per-task", o.select_per_task(),
                  "joint: each task keeps the parameters of its best validation (else all share the monitored one's)")
      ->capture_default_str();
}

nlohmann::json joint_report_json(const JointReport& r) { return nlohmann::json::parse(r.to_json()); }

namespace {
/// Which validation each task kept (per-task selection), epochs 1-based.
nlohmann::json selected_json(const JointBundle& b) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [task, s] : b.selected) j[task] = {{"metric", s.metric}, {"value", s.value}, {"epoch", s.epoch + 1}};
  return j;
}
}  // namespace

void print_joint_report(const JointReport& r, const std::string& title) {
  std::vector<std::string> scen;
  for (const auto& [s, m] : r.per_scenario) scen.push_back(s);
  fmt::print("{}\n  {:<22} {:>9}", title, "task / metric", "overall");
  for (const auto& s : scen) fmt::print(" {:>10}", s.substr(0, 10));
  if (!r.cold.empty()) fmt::print(" {:>10}", "cold items");
  fmt::print("\n");
  auto cell = [](const std::map<std::string, Metrics>& by_task, const std::string& t, const std::string& m) {
    auto it = by_task.find(t);
    if (it == by_task.end() || !it->second.count(m)) return fmt::format("{:>10}", "-");
    return fmt::format("{:>10.4f}", it->second.at(m));
  };
  for (const auto& [task, metrics] : r.overall)
    for (const auto& [name, v] : metrics) {
      if (name == "count" || name == "users") continue;
      fmt::print("  {:<22} {:>9.4f}", task + " " + name, v);
      for (const auto& s : scen) fmt::print(" {}", cell(r.per_scenario.at(s), task, name));
      if (!r.cold.empty()) fmt::print(" {}", cell(r.cold, task, name));
      fmt::print("\n");
    }
}

namespace {

JointTrainOptions joint_args;
std::string served_task_map;  // --task-map: how the served top-10 is scored ("" : the model's default head)

/// HR/NDCG@10 of the top-10 the Recommender serves for the test rows (what `mtrec serve` answers).
nlohmann::json served_metrics(const JointBundle& b, const LoadedData& d, const Interactions& known,
                              const CliContext& ctx) {
  Recommender rec(b, d.data, known, RecommenderOptions().task_map(served_task_map).device(ctx.device));
  const ServedReport r = evaluate_served(rec, d.data, d.data.interactions.subset(d.split.test), 10);
  if (r.overall.empty()) return nlohmann::json::object();
  fmt::print("served top-10 (task map {}, seen items excluded): HR@10 {:.4f}, NDCG@10 {:.4f} ({} users)\n",
             rec.info().task_map, r.overall.at("HR@10"), r.overall.at("NDCG@10"), r.overall.at("users"));
  return {{"task_map", rec.info().task_map}, {"overall", r.overall}, {"per_scenario", r.per_scenario}};
}

/// Test-stage history: everything before the test rows (train + valid).
Interactions known_interactions(const LoadedData& d) { return d.data.interactions.subset(known_rows(d.split)); }

nlohmann::json train_joint(const TrainArgs& a, const CliContext& ctx) {
  auto d = load_data(a, ctx);
  const auto t0 = std::chrono::steady_clock::now();
  JointTrainOptions o = joint_args;
  o.seed(ctx.seed).device(ctx.device);
  if (a.epochs) o.epochs(a.epochs);
  if (a.dim) o.dim(a.dim);
  if (a.lr) o.trainer().lr(a.lr);
  if (a.negatives) o.ctr_negatives(a.negatives);
  if (a.batch) o.trainer().batch_size(a.batch);
  if (a.patience >= 0) o.patience(a.patience);
  // The joint model's checkpoints carry its own serving data (JointBundle::to_checkpoint).
  JointFit fit = fit_joint(d.data, d.split, o, run_options(a, ctx, d.data));
  JointEvalOptions eo = fit.eval_options();
  if (ctx.comm) eo.sharded(ctx.comm->rank(), ctx.comm->world_size(), sum_over_ranks(ctx.comm));  // each rank its users
  JointReport r = fit.evaluate(d.data, known_interactions(d), d.data.interactions.subset(d.split.test), eo);
  if (ctx.comm && ctx.comm->rank() > 0) return nlohmann::json::object();  // rank 0 reports
  print_joint_report(r, fmt::format("joint model, test rows ({}):", d.description));
  auto j = run_info(a, ctx, d);
  j["report"] = joint_report_json(r);
  j["served"] = served_metrics(fit, d, known_interactions(d), ctx);
  j.update({{"wall_s", seconds_since(t0)},
            {"train_s", fit.seconds},
            {"pretrain_s", fit.pretrain_seconds},
            {"epochs_run", fit.summary.state.epoch},
            {"selected", selected_json(fit)},
            {"static_weights", fit.weights},
            {"weights_in_force", fit.summary.state.task_weight},
            {"tasks", fit.model->options.tasks()},
            {"options", nlohmann::json::parse(o.to_json())},
            {"ranks", ctx.comm ? ctx.comm->world_size() : 1}});
  if (!a.out.empty()) save_checkpoint(a.out, fit.to_checkpoint(d.data));
  return j;
}

nlohmann::json eval_joint(const Checkpoint& ck, const TrainArgs& a, const CliContext& ctx) {
  JointBundle b = joint_from_checkpoint(ck, ctx.device);
  auto d = load_data(a, ctx);
  MTREC_CHECK(d.data.users == ck.users && d.data.items == ck.items && d.data.scenarios == ck.scenarios, "checkpoint '",
              ck.path, "' was trained on other ids (", ck.users.size(), " users, ", ck.items.size(),
              " items) than --dataset ", a.dataset, " gives (", d.data.num_users(), ", ", d.data.num_items(),
              "); evaluate a joint checkpoint on the data set it was trained on");
  b.tokenize_contexts(d.data);
  JointReport r = b.evaluate(d.data, known_interactions(d), d.data.interactions.subset(d.split.test));
  print_joint_report(r, fmt::format("joint checkpoint {}, test rows ({}):", ck.path, d.description));
  auto j = run_info(a, ctx, d);
  j["report"] = joint_report_json(r);
  j["served"] = served_metrics(b, d, known_interactions(d), ctx);
  return j;
}

MTREC_TRAIN_TASK(TrainTask{"joint",
                           "the unified model: text backbone, shared experts, scenario conditioning, every task in one "
                           "loss (protocol M; the default)",
                           train_joint, eval_joint, [](CLI::App* cmd) {
                             add_joint_options(cmd, joint_args);
                             cmd->add_option("--task-map", served_task_map,
                                             "joint: heads scoring the served top-10 (scen=head[:w],...;*=head; "
                                             "default: the model's default head)");
                           }});

}  // namespace
}  // namespace mtrec::cli
