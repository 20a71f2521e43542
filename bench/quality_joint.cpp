// Quality of the unified model under protocol M of EVALUATION.md, in one run:
//   synthetic world (temporal split 80/10/10, so late items are first seen in the test rows):
//     - the joint model against each single-task model (same architecture, same epochs) on that
//       task's metric;
//     - scenario-aware (STAR, PEPNet) against scenario-agnostic, per scenario;
//     - text + ID against ID only on cold-start items;
//     - ablations: λ (MLM off vs on), the weighting rule, the expert architecture;
//     - the scenario classifier against the majority class;
//   ML-100K (with --data-dir):
//     - R: 5-fold RMSE / MAE of the joint model, and fused with item-KNN (α on validation);
//     - S: next-item HR@10 / NDCG@10, leave-one-out, full ranking, joint against the same
//       model with only next_item;
//     - C: u1, rating >= 4 positives + 4 sampled negatives, AUC, joint against CTR only;
// The joint step's speed is bench/bench_joint's.
// Usage: quality_joint [--data-dir DIR] [--only synthetic|ml100k] [--epochs N] [--folds N]
//                      [--seed N] [--device auto|cpu|cuda] [--threads N]
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "mtrec/cf/knn.h"
#include "mtrec/core/device.h"
#include "mtrec/core/log.h"
#include "mtrec/data/movielens.h"
#include "mtrec/data/synthetic.h"
#include "mtrec/eval/metrics.h"
#include "mtrec/eval/protocols.h"
#include "mtrec/model/joint_data.h"
#include "mtrec/model/joint_eval.h"
#include "mtrec/serve/recommender.h"
#include "mtrec/tasks/fusion.h"
#include "mtrec/data/labels.h"
#include "mtrec/train/fit_joint.h"

using namespace mtrec;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void row(const std::string& protocol, const std::string& system, const std::string& metric, double value,
         const std::string& note, double wall) {
  fmt::print("  {:<4} {:<40} {:<26} {:>8.4f} {:>7.1f}s  {}\n", protocol, system, metric, value, wall, note);
  std::fflush(stdout);
}

double get(const std::map<std::string, Metrics>& m, const std::string& task, const std::string& metric) {
  auto it = m.find(task);
  if (it == m.end() || !it->second.count(metric)) return std::nan("");
  return it->second.at(metric);
}

struct Run {
  JointFit fit;
  JointReport test;
  double wall = 0;
};

Run run(const Dataset& ds, const Split& split, const JointTrainOptions& o) {
  const auto t0 = Clock::now();
  Run r{fit_joint(ds, split, o, {}), {}, 0};
  r.test = r.fit.evaluate(ds, ds.interactions.subset(known_rows(split)), ds.interactions.subset(split.test));
  r.wall = since(t0);
  return r;
}

const std::vector<std::pair<std::string, std::string>> kMain = {
    {"rating", "rmse"}, {"ctr", "auc"}, {"next_item", "NDCG@10"}, {"match", "NDCG@10"}};

void synthetic(const JointTrainOptions& base, uint64_t seed) {
  fmt::print(
      "\nprotocol M, synthetic world (1000 users, 500 items, 60k exposures, seed {}), split 80/10/10 by time; "
      "every row {} epochs\n",
      seed, base.trainer().epochs());
  SyntheticWorld w = generate_world(SyntheticOptions().users(1000).items(500).interactions(60000).seed(seed));
  const Dataset& ds = w.data;
  Split split = protocol_split(ds.interactions, "temporal", seed);
  // The generator's true click probability on the test exposures: the ceiling of CTR AUC.
  {
    std::vector<float> p, y;
    std::map<int32_t, std::pair<std::vector<float>, std::vector<float>>> by;
    const int32_t imp = ds.behaviors.find("impression");
    for (size_t r : split.test) {
      const auto& x = ds.interactions;
      const float pr = w.truth.click_probability(x.user[r], x.item[r], x.scenario[r]), lab = x.behavior[r] != imp;
      p.push_back(pr), y.push_back(lab);
      by[x.scenario[r]].first.push_back(pr), by[x.scenario[r]].second.push_back(lab);
    }
    row("M", "oracle (true click probability)", "ctr auc", auc(p, y), "the ceiling", 0);
    for (const auto& [s, py] : by)
      row("M", "oracle (true click probability)", ds.scenarios.raw(s) + " ctr auc", auc(py.first, py.second), "", 0);
  }
  Run joint = run(ds, split, base);
  for (const auto& [task, metric] : kMain) {
    row("M", "joint (mmoe + star, static)", task + " " + metric, get(joint.test.overall, task, metric), "", joint.wall);
    JointTrainOptions so = base;
    so.tasks({parse_head(task)});
    Run single = run(ds, split, so);
    row("M", "single-task " + task, task + " " + metric, get(single.test.overall, task, metric), "", single.wall);
  }
  row("M", "joint", "scenario accuracy", get(joint.test.overall, "scenario", "accuracy"),
      fmt::format("majority class {:.4f}", get(joint.test.overall, "scenario", "majority_accuracy")), joint.wall);
  // What serving answers: the Recommender's top-10 (seen items excluded) by each task map.
  {
    const Interactions known = ds.interactions.subset(known_rows(split));
    for (const char* map :
         {"*=ctr", "*=next_item", "*=match", "home_feed=ctr:1,next_item:0.5;search=ctr:1,match:0.5;*=ctr"}) {
      const auto t0 = Clock::now();
      Recommender rec(joint.fit, ds, known, RecommenderOptions().task_map(map));
      const ServedReport sr = evaluate_served(rec, ds, ds.interactions.subset(split.test), 10);
      row("M", std::string("served top-10, task map ") + map, "HR@10", sr.overall.at("HR@10"),
          fmt::format("NDCG@10 {:.4f}, {} users", sr.overall.at("NDCG@10"), sr.overall.at("users")), since(t0));
    }
  }

  // Scenario conditioning, per scenario.
  for (const char* arch : {"none", "star", "pepnet"}) {
    JointTrainOptions so = base;
    so.scenario_arch(arch);
    Run r = std::string(arch) == nn::scenario_arch_name(base.model().scenario_arch()) ? joint : run(ds, split, so);
    for (const auto& [scen, by_task] : r.test.per_scenario)
      row("M", std::string("scenario layer ") + arch, scen + " ctr auc", get(by_task, "ctr", "auc"), "", r.wall);
  }
  // Cold start: text + ID against ID only.
  {
    JointTrainOptions so = base;
    so.text("none");
    Run id_only = run(ds, split, so);
    for (const auto& [task, metric] : {std::pair<std::string, std::string>{"ctr", "auc"}, {"next_item", "HR@10"}}) {
      row("M", "text + ID, cold items", task + " " + metric, get(joint.test.cold, task, metric), "", joint.wall);
      row("M", "ID only, cold items", task + " " + metric, get(id_only.test.cold, task, metric), "", id_only.wall);
    }
  }
  // λ, weighting, experts.
  auto ablate = [&](const std::string& label, JointTrainOptions so) {
    Run r = run(ds, split, so);
    for (const auto& [task, metric] : kMain)
      row("M", label, task + " " + metric, get(r.test.overall, task, metric), "", r.wall);
  };
  {
    JointTrainOptions so = base;
    std::vector<Head> t;
    for (const Head x : base.tasks())
      if (x != Head::Mlm) t.push_back(x);
    so.tasks(t);
    ablate("λ = 0 (no MLM)", so);
  }
  for (const char* weighting : {"uncertainty", "gradnorm"})
    ablate(std::string("weighting ") + weighting, JointTrainOptions(base).weighting(weighting));
  for (const char* arch : {"shared-bottom", "ple"})
    ablate(std::string("experts ") + arch, JointTrainOptions(base).arch(arch));
}

void movielens(const std::string& dir, const JointTrainOptions& base, int folds, uint64_t seed) {
  fmt::print("\nML-100K ({}), joint model: rating, ctr (rating >= 4), next_item, match, mlm on titles and genres\n",
             dir);
  // R: the official folds.
  double sum_rmse = 0, sum_mae = 0, sum_fused = 0;
  for (int f = 1; f <= folds; ++f) {
    const auto t0 = Clock::now();
    auto fold = read_movielens_100k_fold(dir, std::to_string(f));
    const Dataset& ds = fold.data;
    Split split = fold_split(fold.split, kFoldValidFraction, seed);
    Run r = run(ds, split, base);
    const double rm = get(r.test.overall, "rating", "rmse");
    sum_rmse += rm, sum_mae += get(r.test.overall, "rating", "mae");
    // Fusion with item-KNN on ratings, α on the validation rows.
    KnnModel knn(KnnOptions().kind(KnnKind::Item).similarity(KnnSimilarity::PearsonBaseline).k(40));
    knn.fit(ds.interactions.subset(split.train), ds.num_users(), ds.num_items());
    // Histories as evaluate_joint's: train rows for validation, train + valid for test.
    auto predict = [&](const Interactions& x, const Interactions& known, std::vector<float>& model,
                       std::vector<float>& cf) {
      model.clear(), cf = knn.predict(x);
      UserHistories h(ds, known, ds.num_users(), seed);
      const c10::Device dev = r.fit.model->item_emb->weight.device();
      torch::NoGradGuard g;
      for (size_t a = 0; a < x.size(); a += 2048) {
        std::vector<int32_t> u(x.user.begin() + long(a), x.user.begin() + long(std::min(x.size(), a + 2048)));
        std::vector<int64_t> u64(u.begin(), u.end()),
            i64(x.item.begin() + long(a), x.item.begin() + long(a + u.size()));
        at::Tensor ut = torch::tensor(u64).to(dev);
        at::Tensor uv = r.fit.model->user_vectors(ut, h.pack(u, base.model().max_history()).to(dev));
        auto p = r.fit.model
                     ->rank_outputs(ut, uv, torch::tensor(i64).to(dev),
                                    torch::zeros({int64_t(u.size())}, torch::kInt64).to(dev))
                     .first;
        p = p.clamp(1, 5).to(torch::kFloat).cpu().contiguous();
        model.insert(model.end(), p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
      }
    };
    Interactions valid = ds.interactions.subset(split.valid), test = ds.interactions.subset(split.test);
    std::vector<float> vm, vc, tm, tc;
    predict(valid, ds.interactions.subset(split.train), vm, vc);
    predict(test, ds.interactions.subset(known_rows(split)), tm, tc);
    double best_a = 0, best = 1e9;
    for (double al = 0; al <= 1.0001; al += 0.1) {
      std::vector<float> b(vm.size());
      for (size_t j = 0; j < b.size(); ++j) b[j] = float(al * vc[j] + (1 - al) * vm[j]);
      const double e = rmse(b, valid.rating);
      if (e < best) best = e, best_a = al;
    }
    std::vector<float> fused(tm.size());
    for (size_t j = 0; j < fused.size(); ++j) fused[j] = float(best_a * tc[j] + (1 - best_a) * tm[j]);
    const double fr = rmse(fused, test.rating);
    sum_fused += fr;
    row("R", fmt::format("joint, fold u{}", f), "rmse / fused rmse", rm,
        fmt::format("fused with item-KNN (α {:.1f}) {:.4f}", best_a, fr), since(t0));
  }
  row("R", fmt::format("joint, mean of {} folds", folds), "rmse", sum_rmse / folds,
      fmt::format("mae {:.4f}; fused rmse {:.4f}; Bayesian MF .8991", sum_mae / folds, sum_fused / folds), 0);

  // S and C.
  Dataset ds = read_movielens_100k(dir);
  Split loo = protocol_split(ds.interactions, "loo", seed);
  Run joint_s = run(ds, loo, base);
  Run single_s = run(ds, loo, JointTrainOptions(base).tasks({Head::NextItem}));
  for (const char* m : {"HR@10", "NDCG@10"}) {
    row("S", "joint", std::string("next_item ") + m, get(joint_s.test.overall, "next_item", m), "full ranking",
        joint_s.wall);
    row("S", "single-task next_item", std::string("next_item ") + m, get(single_s.test.overall, "next_item", m),
        "full ranking", single_s.wall);
  }
  auto fold = read_movielens_100k_fold(dir, "1");
  Split u1 = fold_split(fold.split, kFoldValidFraction, seed);
  Run joint_c = run(fold.data, u1, base);
  Run single_c = run(fold.data, u1, JointTrainOptions(base).tasks({Head::Ctr}));
  row("C", "joint", "ctr auc", get(joint_c.test.overall, "ctr", "auc"),
      fmt::format("gauc {:.4f}", get(joint_c.test.overall, "ctr", "gauc")), joint_c.wall);
  row("C", "single-task ctr", "ctr auc", get(single_c.test.overall, "ctr", "auc"),
      fmt::format("gauc {:.4f}", get(single_c.test.overall, "ctr", "gauc")), single_c.wall);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Quality of the unified model (protocol M) and ML-100K R/S/C");
  std::string data_dir = "../shared/data/ml-100k", only, device = "auto";
  int epochs = 3, folds = 5, threads = 0;
  uint64_t seed = 42;
  app.add_option("--data-dir", data_dir)->capture_default_str();
  app.add_option("--only", only, "synthetic|ml100k")->check(CLI::IsMember({"", "synthetic", "ml100k"}));
  app.add_option("--epochs", epochs)->capture_default_str();
  app.add_option("--folds", folds)->capture_default_str();
  app.add_option("--seed", seed)->capture_default_str();
  app.add_option("--device", device)->capture_default_str();
  app.add_option("--threads", threads, "LibTorch threads (0: the library default)");
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) at::set_num_threads(threads);
  set_log_level(parse_log_level("warn"));
  // The demo's backbone size (ID dim 32, text encoder 32 wide, 1 layer, experts 64-32): every
  // row of the table trains this same size for the same epochs.
  JointTrainOptions base = JointTrainOptions()
                               .dim(32)
                               .text_dim(32)
                               .text_layers(1)
                               .text_max_len(24)
                               .expert_hidden({64, 32})
                               .epochs(epochs)
                               .seed(seed)
                               .device(device)
                               .patience(0);
  fmt::print(
      "quality_joint: seed {}, {} epochs per row, ID dim 32, text encoder 32 x 1 layer, device {}, {} LibTorch "
      "threads\n",
      seed, epochs, describe_device(choose_device(device)), at::get_num_threads());
  fmt::print("  {:<4} {:<40} {:<26} {:>8} {:>8}  {}\n", "prot", "system", "metric", "value", "wall", "note");
  if (only.empty() || only == "synthetic") synthetic(base, seed);
  if (only.empty() || only == "ml100k") {
    if (std::filesystem::exists(data_dir + "/u.data"))
      movielens(data_dir, base, folds, seed);
    else
      fmt::print("\nML-100K skipped: {} has no u.data (pass --data-dir)\n", data_dir);
  }
  return 0;
}
