#pragma once
// Task dispatch for `mtrec train --task NAME` and `mtrec eval --checkpoint CKPT`: a task is one
// registration, from any cmd_*.cpp:
//   MTREC_TRAIN_TASK(TrainTask{"knn", "user/item KNN collaborative filtering", train_fn, eval_fn});
// train_fn trains on the data named by TrainArgs, writes --out when given and returns the
// metrics; eval_fn re-evaluates a checkpoint whose `task` field names the task.
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <string>

#include "cli.h"
#include "mtrec/data/schema.h"
#include "mtrec/data/split.h"
#include "mtrec/train/checkpoint.h"

namespace mtrec::cli {

struct TrainArgs {
  std::string task, dataset = "ml-100k", data_dir, split = "u1", out, checkpoint;
  int epochs = 0;       // 0: the task's default
  int64_t dim = 0;      // 0: the task's default
  double lr = 0;        // 0: the task's default
  int negatives = 0;    // 0: the task's default
  int synthetic_users = 1000, synthetic_items = 500;
  int64_t synthetic_interactions = 50000;
  bool positives_only = false;  // set by implicit tasks: drop non-positive rows before splitting
};

/// A dataset and its split as named by --dataset/--data-dir/--split:
/// ml-100k with u1..u5 (official folds; valid empty) or loo (leave-one-out by time, seeded);
/// synthetic (generate_world, seeded by --seed) with loo or "random" (80/10/10). With
/// positives_only, impressions (synthetic) are dropped before the split.
struct LoadedData {
  Dataset data;
  Split split;
  std::string description;  // e.g. "ml-100k u1.base/u1.test"
};
LoadedData load_data(const TrainArgs& args, const CliContext& ctx);

struct TrainTask {
  std::string name, description;
  std::function<nlohmann::json(const TrainArgs&, const CliContext&)> train;
  std::function<nlohmann::json(const Checkpoint&, const TrainArgs&, const CliContext&)> eval;
};
std::map<std::string, TrainTask>& train_tasks();
struct RegisterTrainTask {
  explicit RegisterTrainTask(TrainTask t) {
    std::string name = t.name;
    train_tasks().emplace(std::move(name), std::move(t));
  }
};

}  // namespace mtrec::cli

#define MTREC_TRAIN_TASK(...) \
  static ::mtrec::cli::RegisterTrainTask MTREC_CLI_CONCAT(mtrec_train_task_, __LINE__)(__VA_ARGS__)
