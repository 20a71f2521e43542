// `mtrec train --task rating|dmf|ctr ...` and `mtrec eval --checkpoint CKPT ...`.
//   mtrec train --task rating --dataset ml-100k --data-dir DIR --split u1 --out mf.ckpt --json out.json
//   mtrec eval --checkpoint mf.ckpt --dataset ml-100k --data-dir DIR --split u2 --json out.json
// Tasks register through MTREC_TRAIN_TASK (train_registry.h); this file holds the dispatch,
// the data loading and the rating, dmf and ctr tasks.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/head.h"
#include "mtrec/core/io.h"
#include "mtrec/core/log.h"
#include "mtrec/data/dataset_loader.h"
#include "mtrec/data/id_remap.h"
#include "mtrec/data/movielens.h"
#include "mtrec/data/synthetic.h"
#include "mtrec/eval/evaluator.h"
#include "mtrec/eval/protocols.h"
#include "mtrec/tasks/ctr.h"
#include "mtrec/tasks/dmf.h"
#include "mtrec/data/labels.h"
#include "mtrec/tasks/rating.h"
#include "mtrec/train/distributed.h"
#include "mtrec/train/fit_dmf.h"
#include "train_registry.h"

namespace mtrec::cli {

std::map<std::string, TrainTask>& train_tasks() {
  static std::map<std::string, TrainTask> tasks;
  return tasks;
}

Dataset load_dataset(const TrainArgs& a, const CliContext& ctx) {
  if (a.dataset == "csv" || a.dataset == "dir") {
    DatasetLoadReport report;
    Dataset ds = mtrec::load_dataset(a.files.spec(a.dataset), &report);
    log_info("data: {}", report.summary());
    return ds;
  }
  if (a.dataset == "ml-100k") {
    MTREC_CHECK(!a.data_dir.empty(), "--dataset ml-100k needs --data-dir DIR (the folder holding u.data)");
    return read_movielens_100k(a.data_dir);
  }
  MTREC_CHECK(a.dataset == "synthetic", "unknown --dataset '", a.dataset, "' (expected ml-100k|synthetic|csv|dir)");
  return generate_world(SyntheticOptions()
                            .users(a.synthetic_users)
                            .items(a.synthetic_items)
                            .interactions(a.synthetic_interactions)
                            .text_quality(a.synthetic_text_quality)
                            .seed(ctx.seed))
      .data;
}

LoadedData load_data(const TrainArgs& a, const CliContext& ctx) {
  LoadedData d;
  if (a.dataset == "ml-100k") {
    MTREC_CHECK(!a.data_dir.empty(), "--dataset ml-100k needs --data-dir DIR (the folder holding u.data)");
    if (a.split == "loo") {
      d.data = load_dataset(a, ctx);
      d.split = protocol_split(d.data.interactions, a.split, ctx.seed);
      d.description = "ml-100k leave-one-out by time (seed " + std::to_string(ctx.seed) + ")";
    } else {
      MTREC_CHECK(a.split.size() == 2 && a.split[0] == 'u', "--split must be u1..u5, ua, ub or loo, got '", a.split,
                  "'");
      auto fold = read_movielens_100k_fold(a.data_dir, a.split.substr(1));
      d.data = std::move(fold.data);
      d.split = fold_split(fold.split, a.valid_fraction, ctx.seed);
      d.description = "ml-100k " + a.split + ".base/" + a.split + ".test";
    }
  } else {
    MTREC_CHECK(a.dataset == "synthetic" || a.dataset == "csv" || a.dataset == "dir", "unknown --dataset '", a.dataset,
                "' (expected ml-100k|synthetic|csv|dir)");
    MTREC_CHECK(a.split == "loo" || a.split == "random" || a.split == "temporal", "--dataset ", a.dataset,
                " takes --split loo, random or temporal, got '", a.split, "'");
    d.data = load_dataset(a, ctx);
    if (a.positives_only) d.data.interactions = implicit_positives(d.data, d.data.interactions);
    if (a.split != "random")
      MTREC_CHECK(d.data.interactions.has_timestamp, "--split ", a.split, " orders rows by time, but '", d.data.name,
                  "' has no timestamps (map a column with --timestamp-col, or use --split random)");
    d.split = protocol_split(d.data.interactions, a.split, ctx.seed);
    if (a.dataset == "synthetic") {
      d.description = "synthetic world (seed " + std::to_string(ctx.seed) + ", " + a.split + " split)";
    } else {
      std::string paths;
      for (const auto& p : a.files.paths) paths += (paths.empty() ? "" : " + ") + p;
      d.description = fmt::format("{} ({}, {} split{})", d.data.name, paths, a.split,
                                  a.split == "random" ? ", seed " + std::to_string(ctx.seed) : "");
    }
  }
  log_info("data: {} ({} users, {} items, {} train / {} valid / {} test rows)", d.description, d.data.num_users(),
           d.data.num_items(), d.split.train.size(), d.split.valid.size(), d.split.test.size());
  return d;
}

RunOptions run_options(const TrainArgs& a, const CliContext& ctx, const Dataset& data) {
  log_info("effective configuration:\n{}", ctx.effective_config);
  if (!a.run_dir.empty()) {
    std::filesystem::create_directories(a.run_dir);
    write_file_atomic(a.run_dir + "/config.toml", ctx.effective_config);
  }
  return RunOptions()
      .out_dir(a.run_dir)
      .checkpoint_every(a.checkpoint_every)
      .resume(a.resume)
      .progress(true)
      .config_json(nlohmann::json{{"cli", ctx.effective_config}}.dump())
      .id_maps(data)
      .communicator(ctx.comm);
}

const ServingData& serving_data(const LoadedData& d, const CliContext& ctx) {
  if (!d.serving)  // once per run: the run's checkpoints and the export share it
    d.serving = std::make_shared<const ServingData>(
        make_serving_data(d.data, d.data.interactions.subset(known_rows(d.split)), ctx.seed));
  return *d.serving;
}

RunOptions run_options(const TrainArgs& a, const CliContext& ctx, const LoadedData& d) {
  return run_options(a, ctx, d.data).checkpoint_tensors(serving_tensors(serving_data(d, ctx)));
}

void save_export(const std::string& path, Checkpoint ck, const LoadedData& d, const CliContext& ctx) {
  add_serving_data(ck, serving_data(d, ctx));
  save_checkpoint(path, ck);
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

nlohmann::json run_info(const TrainArgs& a, const CliContext& ctx, const LoadedData& d) {
  return {{"task", a.task},        {"dataset", a.dataset}, {"split", a.split},
          {"data", d.description}, {"seed", ctx.seed},     {"device", describe_device(choose_device(ctx.device))}};
}

Interactions to_checkpoint_ids(const Interactions& x, const Dataset& ds, const Checkpoint& ck, int64_t& dropped) {
  // Unknown users and items are dropped (and counted); an unknown scenario is an error naming it.
  try {
    return remap_ids(x, ds, ck.users, ck.items, ck.scenarios, dropped);
  } catch (const Error& e) {
    throw Error("checkpoint '" + ck.path + "': " + e.what());
  }
}

nlohmann::json ranking_json(const RankingReport& r) {
  nlohmann::json j = r.metrics;
  j["users"] = r.users;
  j["protocol"] = r.protocol;
  return j;
}

nlohmann::json ctr_json(const CtrMetrics& m, const Dataset& ds) {
  nlohmann::json j = {{"auc", m.auc}, {"gauc", m.gauc}, {"logloss", m.logloss}, {"count", m.count}};
  for (const auto& [s, sm] : m.per_scenario)
    j["per_scenario"][s < ds.scenarios.size() ? ds.scenarios.raw(s) : std::to_string(s)] = {
        {"auc", sm.auc}, {"gauc", sm.gauc}, {"logloss", sm.logloss}, {"count", sm.count}};
  return j;
}

namespace {

// ---- rating -------------------------------------------------------------------------------
std::string rating_solver = "mcmc";  // --solver
nlohmann::json train_rating(const TrainArgs& a, const CliContext& ctx) {
  auto d = load_data(a, ctx);
  auto t0 = Clock::now();
  RatingTrainOptions o;
  o.solver(rating_solver).seed(ctx.seed).device(ctx.device);
  if (ctx.threads > 0) o.threads(ctx.threads);
  if (a.epochs) o.epochs(a.epochs).sweeps(a.epochs);
  if (a.dim) o.dim(a.dim);
  if (a.lr) o.lr(a.lr);
  auto& x = d.data.interactions;
  auto task =
      fit_rating(explicit_ratings(d.data, x.subset(d.split.train)), explicit_ratings(d.data, x.subset(d.split.valid)),
                 d.data.num_users(), d.data.num_items(), o, run_options(a, ctx, d));
  auto m = task.evaluate(explicit_ratings(d.data, x.subset(d.split.test)));
  auto j = run_info(a, ctx, d);
  j.update({{"rmse", m.rmse},
            {"mae", m.mae},
            {"test_count", m.count},
            {"epochs_run", task.epochs_run},
            {"dim", task.model->options.dim()},
            {"solver", task.solver},
            {"wall_s", seconds_since(t0)},
            {"model_checksum", fmt::format("{:016x}", state_checksum(*task.model))}});
  if (task.solver == "mcmc")
    j["train_rmse"] = task.train_rmse;  // of the posterior-mean parameters
  else
    j["best_valid_rmse"] = task.best_valid_rmse;
  if (!a.out.empty()) save_export(a.out, task.to_checkpoint(d.data.users, d.data.items), d, ctx);
  log_info("rating: test RMSE {:.4f}, MAE {:.4f} ({} ratings)", m.rmse, m.mae, m.count);
  return j;
}

nlohmann::json eval_rating(const Checkpoint& ck, const TrainArgs& a, const CliContext& ctx) {
  auto task = RatingFit::from_checkpoint(ck, ctx.device);
  auto d = load_data(a, ctx);
  int64_t dropped = 0;
  auto m = task.evaluate(
      to_checkpoint_ids(explicit_ratings(d.data, d.data.interactions.subset(d.split.test)), d.data, ck, dropped));
  auto j = run_info(a, ctx, d);
  j.update({{"rmse", m.rmse}, {"mae", m.mae}, {"test_count", m.count}, {"unknown_ids_dropped", dropped}});
  log_info("rating: RMSE {:.4f}, MAE {:.4f} ({} ratings, {} with unknown ids dropped)", m.rmse, m.mae, m.count,
           dropped);
  return j;
}

// ---- dmf (protocol D) ---------------------------------------------------------------------

nlohmann::json train_dmf(const TrainArgs& args, const CliContext& ctx) {
  TrainArgs a = args;
  a.positives_only = true;
  auto d = load_data(a, ctx);
  auto t0 = Clock::now();
  DmfTrainOptions o;
  o.seed(ctx.seed).device(ctx.device);
  if (a.epochs) o.epochs(a.epochs);
  if (a.dim) o.layers({4 * a.dim, a.dim});
  if (a.lr) o.lr(a.lr);
  if (a.negatives) o.negatives(a.negatives);
  auto& x = d.data.interactions;
  // The split's validation rows choose the epoch (early stopping on their sampled HR@10).
  auto task = fit_dmf(x.subset(d.split.train), x.subset(d.split.valid), d.data.num_users(), d.data.num_items(), o,
                      run_options(a, ctx, d));
  // The test item is scored from everything before it (train + validation rows).
  const Interactions known = x.subset(known_rows(d.split));
  task.set_inputs(known);
  RankingEvaluator ev(known, d.data.num_users(), d.data.num_items(), ranking_protocol(kRankingNegatives, ctx.seed));
  auto r = ev.evaluate(x.subset(d.split.test), task.score_fn());
  auto j = run_info(a, ctx, d);
  j.update({{"ranking", ranking_json(r)},
            {"hr@10", r.at("HR@10")},
            {"ndcg@10", r.at("NDCG@10")},
            {"epochs_run", task.epochs_run},
            {"best_epoch", task.best_epoch},
            {"best_valid_hr@10", task.best_valid_hr},
            {"wall_s", seconds_since(t0)}});
  if (!a.out.empty()) save_export(a.out, task.to_checkpoint(d.data.users, d.data.items), d, ctx);
  log_info("dmf: HR@10 {:.4f}, NDCG@10 {:.4f} ({} users, 100 sampled negatives)", r.at("HR@10"), r.at("NDCG@10"),
           r.users);
  return j;
}

nlohmann::json eval_dmf(const Checkpoint& ck, const TrainArgs& args, const CliContext& ctx) {
  auto task = DmfFit::from_checkpoint(ck, ctx.device);
  TrainArgs a = args;
  a.positives_only = true;
  auto d = load_data(a, ctx);
  int64_t dropped = 0;
  auto& x = d.data.interactions;
  auto seen = to_checkpoint_ids(x.subset(known_rows(d.split)), d.data, ck, dropped);
  auto test = to_checkpoint_ids(x.subset(d.split.test), d.data, ck, dropped);
  RankingEvaluator ev(seen, ck.users.size(), ck.items.size(), ranking_protocol(kRankingNegatives, ctx.seed));
  auto r = ev.evaluate(test, task.score_fn());
  auto j = run_info(a, ctx, d);
  j.update({{"ranking", ranking_json(r)},
            {"hr@10", r.at("HR@10")},
            {"ndcg@10", r.at("NDCG@10")},
            {"unknown_ids_dropped", dropped}});
  log_info("dmf: HR@10 {:.4f}, NDCG@10 {:.4f}", r.at("HR@10"), r.at("NDCG@10"));
  return j;
}

// ---- ctr (protocol C) ---------------------------------------------------------------------
nlohmann::json train_ctr(const TrainArgs& a, const CliContext& ctx) {
  auto d = load_data(a, ctx);
  auto t0 = Clock::now();
  CtrTrainOptions o;
  o.seed(ctx.seed).device(ctx.device);
  if (a.epochs) o.epochs(a.epochs);
  if (a.dim) o.dim(a.dim);
  if (a.lr) o.lr(a.lr);
  if (a.negatives) o.negatives(a.negatives);
  auto& x = d.data.interactions;
  const int32_t scen = std::max<int32_t>(1, d.data.scenarios.size());
  // One negative pool rule (ctr_negative_sampler): items the user has no row for, any rating,
  // impressions aside. Training negatives avoid every training row, test negatives every row
  // (eval/protocols.h). The split's validation rows choose the epoch (early stopping on their AUC).
  auto train_rows = x.subset(known_rows(d.split));
  auto task = fit_ctr(ctr_positives(d.data, x.subset(d.split.train)), ctr_positives(d.data, x.subset(d.split.valid)),
                      d.data.num_users(), d.data.num_items(), scen, o, implicit_positives(d.data, train_rows),
                      run_options(a, ctx, d));
  auto test = ctr_test_examples(implicit_positives(d.data, x), ctr_positives(d.data, x.subset(d.split.test)),
                                d.data.num_users(), d.data.num_items(), o.negatives(), ctx.seed);
  auto m = task.evaluate(test);
  auto j = run_info(a, ctx, d);
  j.update(ctr_json(m, d.data));
  j.update({{"negatives_per_positive", o.negatives()},
            {"epochs_run", task.epochs_run},
            {"wall_s", seconds_since(t0)},
            {"positives", "rating >= 4 (explicit data) or clicks (synthetic)"}});
  if (!a.out.empty()) save_export(a.out, task.to_checkpoint(d.data.users, d.data.items, d.data.scenarios), d, ctx);
  log_info("ctr: AUC {:.4f}, GAUC {:.4f}, logloss {:.4f} ({} examples, 1:{} negatives)", m.auc, m.gauc, m.logloss,
           m.count, o.negatives());
  return j;
}

nlohmann::json eval_ctr(const Checkpoint& ck, const TrainArgs& a, const CliContext& ctx) {
  auto task = CtrFit::from_checkpoint(ck, ctx.device);
  auto d = load_data(a, ctx);
  int64_t dropped = 0;
  auto all = to_checkpoint_ids(implicit_positives(d.data, d.data.interactions), d.data, ck, dropped);
  dropped = 0;
  auto test_pos =
      to_checkpoint_ids(ctr_positives(d.data, d.data.interactions.subset(d.split.test)), d.data, ck, dropped);
  const int ratio = a.negatives ? a.negatives : CtrTrainOptions().negatives();
  auto m = task.evaluate(ctr_test_examples(all, test_pos, ck.users.size(), ck.items.size(), ratio, ctx.seed));
  auto j = run_info(a, ctx, d);
  j.update(ctr_json(m, d.data));
  j.update({{"negatives_per_positive", ratio}, {"unknown_ids_dropped", dropped}});
  log_info("ctr: AUC {:.4f}, GAUC {:.4f}, logloss {:.4f}", m.auc, m.gauc, m.logloss);
  return j;
}

MTREC_TRAIN_TASK(TrainTask{
    "rating", "biased matrix factorisation, RMSE/MAE (protocol R)", train_rating, eval_rating, [](CLI::App* cmd) {
      cmd->add_option("--solver", rating_solver, "rating: mcmc (Bayesian, Gibbs sweeps = --epochs) | sgd | adam")
          ->check(CLI::IsMember({"mcmc", "sgd", "adam"}))
          ->capture_default_str();
    }});
MTREC_TRAIN_TASK(TrainTask{"dmf", "deep matrix factorisation, HR/NDCG@10 among 100 negatives (protocol D)", train_dmf,
                           eval_dmf});
MTREC_TRAIN_TASK(TrainTask{"ctr", "click-through MLP + dot, AUC/GAUC/logloss (protocol C)", train_ctr, eval_ctr});

/// argv with this very executable as the program (a rank runs what the launcher runs).
std::vector<std::string> with_self_exe(std::vector<std::string> argv) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec && !argv.empty()) argv[0] = self.string();
  return argv;
}

/// Under torchrun's variables (or --nproc's), joins the other ranks; ranks other than 0 log
/// warnings only (unless --log-level debug) and write no --out or --json.
void join_ranks(CliContext& ctx, TrainArgs& a) {
  DistributedOptions d = DistributedOptions::from_env();
  if (a.dist_timeout > 0) d.timeout_s(a.dist_timeout);
  if (d.world_size() <= 1) return;
  // One GPU per local rank (NCCL refuses two ranks on one device).
  if ((ctx.device == "auto" || ctx.device == "cuda") && choose_device(ctx.device).is_cuda())
    ctx.device = fmt::format("cuda:{}", d.local_rank() % std::max(1, cuda_device_count()));
  if (ctx.threads == 0)  // the machine's cores shared among its ranks
    set_cpu_threads(std::max(1, int(std::thread::hardware_concurrency()) / std::max(1, d.local_world_size())));
  if (d.rank() > 0) {
    set_log_tag(fmt::format("[rank {}] ", d.rank()));
    if (log_level() != LogLevel::Debug) set_log_level(LogLevel::Warn);
    a.out.clear();
    ctx.json_path.clear();
  }
  ctx.comm = std::make_shared<Communicator>(d, choose_device(ctx.device));
}

std::string names_of_tasks() {
  std::string names;
  for (const auto& [name, t] : train_tasks()) names += (names.empty() ? "" : "|") + name;
  return names;
}

std::string default_split(const std::string& task, const std::string& dataset) {
  if (task == "rating" || task == "ctr" || task == "knn") return dataset == "ml-100k" ? "u1" : "random";
  if (task == "joint") return dataset == "ml-100k" ? "u1" : "temporal";
  return "loo";
}

void add_data_options(CLI::App* cmd, TrainArgs& a) {
  cmd->add_option("--dataset", a.dataset, "ml-100k|synthetic|csv (your files: --path ...)|dir (a `data synth` folder)")
      ->capture_default_str();
  cmd->add_option("--data-dir", a.data_dir, "Folder holding the MovieLens files");
  cmd->add_option("--split", a.split,
                  "u1..u5|ua|ub|loo (ml-100k), loo|random|temporal (synthetic, csv, dir); default per task");
  cmd->add_option("--synthetic-users", a.synthetic_users)->capture_default_str();
  cmd->add_option("--synthetic-items", a.synthetic_items)->capture_default_str();
  cmd->add_option("--synthetic-interactions", a.synthetic_interactions)->capture_default_str();
  cmd->add_option("--synthetic-text-quality", a.synthetic_text_quality,
                  "Share of synthetic items whose title names their quality tier (0: topic only)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--negatives", a.negatives, "Sampled negatives per positive (dmf, ctr)");
  a.files.add(cmd, /*with_duplicates=*/true);
}

MTREC_CLI_COMMANDS([](CLI::App& app, CliContext& ctx) {
  static TrainArgs args;
  const std::string names = names_of_tasks();
  auto* train =
      app.add_subcommand("train", "Train the joint model (default) or one task head and report its test metrics");
  args.task = "joint";
  train->add_option("--task", args.task, names)->capture_default_str();
  add_data_options(train, args);
  args.split.clear();
  train->add_option("--epochs", args.epochs, "Epochs (default per task)");
  train->add_option("--dim", args.dim, "Embedding / latent dimension (default per task)");
  train->add_option("--lr", args.lr, "Learning rate (default per task)");
  train->add_option("--batch", args.batch, "Batch size (default per task: next-item 64 users, joint 512 examples)");
  train->add_option(
      "--patience", args.patience,
      "Validations without improvement before stopping (default per task: next-item 0, joint 3; 0: never)");
  train->add_option("--out", args.out, "Write the trained model to this checkpoint");
  train
      ->add_option("--valid-fraction", args.valid_fraction,
                   "Share of the training rows held out for validation when the split has none (u1..u5)")
      ->capture_default_str();
  train->add_option("--run-dir", args.run_dir,
                    "Folder for the training engine's checkpoints (last/best), metrics.jsonl, report.html, config");
  train
      ->add_option("--checkpoint-every", args.checkpoint_every,
                   "Also checkpoint every N optimiser steps within an epoch (with --run-dir)")
      ->capture_default_str();
  train->add_option("--resume", args.resume,
                    "Continue the run of this checkpoint (RUN_DIR/<stage>/last.ckpt), on any number of ranks");
  train
      ->add_option("--nproc", args.nproc,
                   "Train data-parallel on N local processes (c10d/Gloo over loopback; --batch is the global "
                   "batch). Under torchrun (RANK, WORLD_SIZE, ... set) this is ignored: torchrun starts the ranks")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  train
      ->add_option("--dist-timeout", args.dist_timeout,
                   "Seconds a rank waits for the others in each collective before it stops and names the missing "
                   "rank (default: $MTREC_DIST_TIMEOUT, else 60)")
      ->check(CLI::NonNegativeNumber);
  for (const auto& [name, t] : train_tasks())
    if (t.add_options) t.add_options(train);
  train->callback([&ctx] {
    args.task = canonical_task_name(args.task);  // --task next-item names next_item
    auto it = train_tasks().find(args.task);
    MTREC_CHECK(it != train_tasks().end(), "unknown --task '", args.task, "'");
    if (args.split.empty()) args.split = default_split(args.task, args.dataset);
    if (args.nproc > 1 && std::getenv("WORLD_SIZE") == nullptr)  // the ranks see WORLD_SIZE: no recursion
      throw ExitCode{launch_local_workers(
          args.nproc, with_self_exe(ctx.argv), 0,
          (args.dist_timeout > 0 ? args.dist_timeout : DistributedOptions::from_env().timeout_s()) + 30)};
    join_ranks(ctx, args);
    ctx.write_json(it->second.train(args, ctx));
  });

  auto* eval = app.add_subcommand("eval", "Re-evaluate a saved checkpoint on a dataset split");
  eval->add_option("--checkpoint", args.checkpoint, "Checkpoint written by `mtrec train --out`")->required();
  add_data_options(eval, args);
  eval->callback([&ctx] {
    Checkpoint ck = load_checkpoint(args.checkpoint);
    auto it = train_tasks().find(canonical_task_name(ck.task));
    MTREC_CHECK(it != train_tasks().end() && it->second.eval, "'", args.checkpoint, "' is ", describe_checkpoint(ck),
                "; `mtrec eval` evaluates models of task ", names_of_tasks(),
                " (`mtrec train --out`, or a run's "
                "RUN_DIR/<stage>/best.ckpt or last.ckpt)");
    args.task = canonical_task_name(ck.task);
    if (args.split.empty()) args.split = default_split(args.task, args.dataset);
    ctx.write_json(it->second.eval(ck, args, ctx));
  });
});

}  // namespace
}  // namespace mtrec::cli
