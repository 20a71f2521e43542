#pragma once
// Task dispatch for `mtrec train --task NAME` and `mtrec eval --checkpoint CKPT`: a task is one
// registration, from any cmd_*.cpp:
//   MTREC_TRAIN_TASK(TrainTask{"knn", "user/item KNN collaborative filtering", train_fn, eval_fn});
// train_fn trains on the data named by TrainArgs, writes --out when given and returns the
// metrics; eval_fn re-evaluates a checkpoint whose `task` field names the task.
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "cli.h"
#include "data_flags.h"
#include "mtrec/data/schema.h"
#include "mtrec/eval/protocols.h"
#include "mtrec/model/io.h"
#include "mtrec/nn/checkpoint.h"
#include "mtrec/train/fit.h"

namespace mtrec {
struct CtrMetrics;
}

namespace mtrec::cli {

struct TrainArgs {
  std::string task, dataset = "ml-100k", data_dir, split = "u1", out, checkpoint;
  int epochs = 0;     // 0: the task's default
  int64_t dim = 0;    // 0: the task's default
  double lr = 0;      // 0: the task's default
  int negatives = 0;  // 0: the task's default
  int batch = 0;      // 0: the task's default (next-item: users, joint: examples per batch)
  int patience = -1;  // validations without improvement before stopping; -1: the task's default
  int synthetic_users = 1000, synthetic_items = 500;
  int64_t synthetic_interactions = 50000;
  double synthetic_text_quality = 0;           // SyntheticOptions::text_quality
  bool positives_only = false;                 // set by implicit tasks: drop non-positive rows before splitting
  double valid_fraction = kFoldValidFraction;  // of the training rows, as validation when the split has none
  std::string run_dir;                         // engine artefacts: checkpoints, metrics.jsonl, report.html, config
  int64_t checkpoint_every = 0;                // optimiser steps between mid-epoch checkpoints
  std::string resume;                          // continue the run of this checkpoint (a run_dir's last.ckpt)
  int nproc = 1;                               // local data-parallel ranks to start (1: this process trains alone)
  double dist_timeout = 0;  // seconds a rank waits for the others in a collective (0: $MTREC_DIST_TIMEOUT or 60)
  DataFileFlags files;      // --dataset csv|dir: --path, --behaviors, catalogues, --duplicates, mapping
};

/// A dataset and its split as named by --dataset/--data-dir/--split (eval/protocols.h):
/// ml-100k with u1..u5 (official folds; --valid-fraction of base moves to valid, fold_split) or
/// loo; synthetic (generate_world, seeded by --seed), csv (the user's files, DataFileFlags ->
/// mtrec::load_dataset) and dir (a `data synth` folder) with loo, random or temporal
/// (protocol_split). With positives_only, impressions are dropped before the split.
struct LoadedData {
  Dataset data;
  Split split;
  std::string description;                             // e.g. "ml-100k u1.base/u1.test"
  mutable std::shared_ptr<const ServingData> serving;  // serving_data's, computed once
};
LoadedData load_data(const TrainArgs& args, const CliContext& ctx);
/// The whole dataset named by --dataset/--data-dir, unsplit (all of u.data for ml-100k; the
/// synthetic world as load_data generates it, impressions included): for commands that use
/// the text catalogue or every interaction (`mtrec pretrain`, `mtrec embed`).
Dataset load_dataset(const TrainArgs& args, const CliContext& ctx);

struct TrainTask {
  std::string name, description;
  std::function<nlohmann::json(const TrainArgs&, const CliContext&)> train;
  std::function<nlohmann::json(const Checkpoint&, const TrainArgs&, const CliContext&)> eval;
  /// Optional: adds the task's own flags to `mtrec train` (values kept in the task's file).
  std::function<void(CLI::App*)> add_options = nullptr;
};
std::map<std::string, TrainTask>& train_tasks();

// Shared by the task files.
/// task, dataset, split, data description, seed and device of a run.
nlohmann::json run_info(const TrainArgs& a, const CliContext& ctx, const LoadedData& d);
/// Seconds since `t0` (steady clock).
double seconds_since(std::chrono::steady_clock::time_point t0);
/// Rows of `x` (dense ids of `ds`) re-expressed in the checkpoint's id space (remap_ids): rows
/// whose user or item the checkpoint does not know are dropped and counted in `dropped`; a
/// scenario it does not know is an error naming the scenario.
Interactions to_checkpoint_ids(const Interactions& x, const Dataset& ds, const Checkpoint& ck, int64_t& dropped);
/// The engine's run options from --run-dir/--checkpoint-every/--resume, with the effective
/// configuration (also printed and written to RUN_DIR/config.toml).
RunOptions run_options(const TrainArgs& a, const CliContext& ctx, const Dataset& data);
/// The same for a model trained on `d`, whose checkpoints (last.ckpt, best.ckpt) also carry
/// what serving needs (serving_data), so that every checkpoint of the run can be served.
RunOptions run_options(const TrainArgs& a, const CliContext& ctx, const LoadedData& d);
/// What serving needs of a model trained on `d`: the histories of the rows it was fitted on
/// (train + validation) and the item catalogue (model/io.h).
const ServingData& serving_data(const LoadedData& d, const CliContext& ctx);
/// Writes `ck` (a model export) to --out with serving_data(d) added.
void save_export(const std::string& path, Checkpoint ck, const LoadedData& d, const CliContext& ctx);
/// A RankingReport as JSON (metrics, users, protocol).
nlohmann::json ranking_json(const RankingReport& r);
/// CTR metrics as JSON (auc, gauc, logloss, count, per_scenario by scenario name).
nlohmann::json ctr_json(const CtrMetrics& m, const Dataset& ds);
struct RegisterTrainTask {
  explicit RegisterTrainTask(TrainTask t) {
    std::string name = t.name;
    train_tasks().emplace(std::move(name), std::move(t));
  }
};

}  // namespace mtrec::cli

#define MTREC_TRAIN_TASK(...) \
  static ::mtrec::cli::RegisterTrainTask MTREC_CLI_CONCAT(mtrec_train_task_, __LINE__)(__VA_ARGS__)
