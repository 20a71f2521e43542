// Quality of the unified model under protocol M of EVALUATION.md, paired over seeds, in one run:
//   synthetic world (temporal split 80/10/10, so late items are first seen in the test rows),
//   every row trained up to --epochs with each task keeping its best validation epoch:
//     - the joint model against each single-task model (the same model on one task);
//     - scenario-aware (STAR) against scenario-agnostic, CTR AUC per scenario;
//     - the served top-10 of each task map against the best single head's served top-10;
//     - the scenario classifier against the majority class;
//   cold items (--only cold): text + ID against ID only, ranked within the cold items, at text
//   quality 0 and --text-quality, beside the most-popular-cold baseline and the generator's
//   ceiling;
//   ML-100K (with --data-dir, one seed):
//     - R: 5-fold RMSE / MAE of the joint model, and fused with item-KNN (α on validation);
//     - S: next-item HR@10 / NDCG@10, leave-one-out, full ranking, joint against the same
//       model with only next_item;
//     - C: u1, rating >= 4 positives + 4 sampled negatives, AUC, joint against CTR only.
// Each paired line prints both means and the mean difference with its 95% t-interval.
// The joint step's speed is bench/bench_joint's.
// Usage: quality_joint [--data-dir DIR] [--only synthetic|cold|ml100k] [--seeds N] [--seed FIRST]
//                      [--epochs N] [--patience N] [--text-quality Q] [--folds N]
//                      [--device auto|cpu|cuda] [--threads N]
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "mtrec/cf/knn.h"
#include "mtrec/core/device.h"
#include "mtrec/core/log.h"
#include "mtrec/data/movielens.h"
#include "mtrec/data/synthetic.h"
#include "mtrec/eval/evaluator.h"
#include "mtrec/eval/metrics.h"
#include "mtrec/eval/protocols.h"
#include "mtrec/model/joint_data.h"
#include "mtrec/model/joint_eval.h"
#include "mtrec/serve/recommender.h"
#include "mtrec/tasks/fusion.h"
#include "mtrec/data/labels.h"
#include "mtrec/train/fit_joint.h"
#include "stats.h"

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

const std::vector<std::pair<std::string, std::string>> kMain = {{"rating", "rmse"},     {"ctr", "auc"},
                                                                {"ctr", "gauc"},        {"next_item", "NDCG@10"},
                                                                {"next_item", "HR@10"}, {"match", "NDCG@10"}};

/// Per-seed values by (system, metric), then means and paired differences over the seeds.
struct Table {
  std::map<std::pair<std::string, std::string>, std::vector<double>> v;
  void put(const std::string& system, const std::string& metric, double x) { v[{system, metric}].push_back(x); }
  const std::vector<double>& at(const std::string& system, const std::string& metric) const {
    static const std::vector<double> none;
    auto it = v.find({system, metric});
    return it == v.end() ? none : it->second;
  }
  /// "a − b" per seed, sign-adjusted so that positive is better (lower_better: b − a).
  void compare(const std::string& a, const std::string& b, const std::string& metric, bool lower_better = false) const {
    const auto &x = at(a, metric), &y = at(b, metric);
    if (x.empty() || x.size() != y.size()) return;
    std::vector<double> d;
    for (size_t k = 0; k < x.size(); ++k) d.push_back(lower_better ? y[k] - x[k] : x[k] - y[k]);
    fmt::print("  {:<48} {:<48} {:<24} {:>8.4f} {:>8.4f}  {}\n", a, b, metric, bench::mean(x), bench::mean(y),
               bench::mean_ci(d));
    std::fflush(stdout);
  }
};

void compare_header(const std::string& title, size_t seeds) {
  fmt::print("\n{} (paired over {} seeds; the difference is signed so that > 0 favours A):\n", title, seeds);
  fmt::print("  {:<48} {:<48} {:<24} {:>8} {:>8}  {}\n", "A", "B", "metric", "mean A", "mean B",
             "A better by [95% CI]");
}

SyntheticWorld protocol_m_world(uint64_t seed, double text_quality) {
  return generate_world(
      SyntheticOptions().users(1000).items(500).interactions(60000).seed(seed).text_quality(text_quality));
}

void put_served(Table& t, const std::string& system, const JointBundle& b, const Dataset& ds, const Split& split,
                const std::string& map) {
  const Interactions known = ds.interactions.subset(known_rows(split));
  Recommender rec(b, ds, known, RecommenderOptions().task_map(map));
  const ServedReport sr = evaluate_served(rec, ds, ds.interactions.subset(split.test), 10);
  t.put(system, "served HR@10", sr.overall.at("HR@10"));
  t.put(system, "served NDCG@10", sr.overall.at("NDCG@10"));
}

/// Protocol M: the joint model against each single-task model, scenario-aware against
/// scenario-agnostic, and the served top-10 by each task map, seeds seed0 .. seed0 + seeds - 1.
void synthetic(const JointTrainOptions& base, uint64_t seed0, int seeds) {
  fmt::print(
      "\nprotocol M, synthetic world (1000 users, 500 items, 60k exposures), split 80/10/10 by time; every row "
      "at most {} epochs, each task keeping its best validation epoch (patience {})\n",
      base.trainer().epochs(), base.patience());
  Table t;
  const char* maps[] = {"*=next_item", "*=match", "*=ctr",
                        "home_feed=ctr:1,next_item:0.5;search=ctr:1,match:0.5;*=ctr"};
  for (int k = 0; k < seeds; ++k) {
    const uint64_t seed = seed0 + uint64_t(k);
    const auto t0 = Clock::now();
    SyntheticWorld w = protocol_m_world(seed, 0);
    const Dataset& ds = w.data;
    Split split = protocol_split(ds.interactions, "temporal", seed);
    JointTrainOptions b = base;
    b.seed(seed);
    Run joint = run(ds, split, b);
    for (const auto& [task, metric] : kMain) t.put("joint", task + " " + metric, get(joint.test.overall, task, metric));
    t.put("joint", "scenario accuracy", get(joint.test.overall, "scenario", "accuracy"));
    t.put("majority class", "scenario accuracy", get(joint.test.overall, "scenario", "majority_accuracy"));
    for (const char* map : maps) put_served(t, std::string("joint served ") + map, joint.fit, ds, split, map);
    for (const char* task : {"rating", "ctr", "next_item", "match"}) {
      Run single = run(ds, split, JointTrainOptions(b).tasks({parse_head(task)}));
      for (const auto& [tk, metric] : kMain)
        if (tk == task) t.put("single-task", tk + " " + metric, get(single.test.overall, tk, metric));
      if (std::string(task) != "rating")
        put_served(t, std::string("single-task ") + task + " served", single.fit, ds, split, std::string("*=") + task);
    }
    Run agnostic = run(ds, split, JointTrainOptions(b).scenario_arch("none"));
    for (const auto& [scen, by_task] : joint.test.per_scenario) {
      t.put("joint (star)", scen + " ctr auc", get(by_task, "ctr", "auc"));
      t.put("scenario-agnostic", scen + " ctr auc", get(agnostic.test.per_scenario.at(scen), "ctr", "auc"));
    }
    fmt::print("  seed {}: joint ctr auc {:.4f}, next_item NDCG@10 {:.4f} ({:.0f} s)\n", seed,
               get(joint.test.overall, "ctr", "auc"), get(joint.test.overall, "next_item", "NDCG@10"), since(t0));
  }
  compare_header("joint against single-task, the same model trained on one task", size_t(seeds));
  for (const auto& [task, metric] : kMain) t.compare("joint", "single-task", task + " " + metric, metric == "rmse");
  t.compare("joint", "majority class", "scenario accuracy");
  compare_header("scenario-aware (STAR) against scenario-agnostic, CTR AUC per scenario", size_t(seeds));
  for (const auto& [key, v] : t.v)
    if (key.first == "joint (star)") t.compare("joint (star)", "scenario-agnostic", key.second);
  // The best single head's served top-10 (by mean HR@10) is the bar for every task map.
  std::string best;
  for (const char* task : {"ctr", "next_item", "match"}) {
    const std::string s = std::string("single-task ") + task + " served";
    if (best.empty() || bench::mean(t.at(s, "served HR@10")) > bench::mean(t.at(best, "served HR@10"))) best = s;
  }
  compare_header("served top-10 (Recommender, seen items excluded) against the best single head's", size_t(seeds));
  for (const char* map : maps)
    for (const char* m : {"served HR@10", "served NDCG@10"}) t.compare(std::string("joint served ") + map, best, m);
}

/// Cold items (first seen after the training cut), ranked within the cold items: text + ID
/// against ID only, at text_quality 0 (the text tells the topic) and `quality` (titles name
/// the quality tier of that share of items), beside the most-popular-cold baseline and the
/// generator's ceiling.
void cold(const JointTrainOptions& base, uint64_t seed0, int seeds, double quality) {
  fmt::print(
      "\ncold items of protocol M: CTR AUC on their test exposures; next-item and match: each user's first test "
      "positive on a cold item, ranked among the cold items only\n");
  Table t;
  for (int k = 0; k < seeds; ++k) {
    const uint64_t seed = seed0 + uint64_t(k);
    const auto t0 = Clock::now();
    JointTrainOptions b = base;
    b.seed(seed);
    Run id_only;  // text none: the same interactions at any text_quality, so one run
    bool have_id = false;
    for (double q : {0.0, quality}) {
      SyntheticWorld w = protocol_m_world(seed, q);
      const Dataset& ds = w.data;
      Split split = protocol_split(ds.interactions, "temporal", seed);
      const Interactions known = ds.interactions.subset(known_rows(split)), test = ds.interactions.subset(split.test);
      std::vector<char> cold_item(size_t(ds.num_items()), 1);
      for (size_t r : split.train) cold_item[size_t(ds.interactions.item[r])] = 0;
      const std::string tag = fmt::format(" (text quality {:.2g})", q);
      Run text_id = run(ds, split, b);
      if (!have_id) id_only = run(ds, split, JointTrainOptions(b).text("none")), have_id = true;
      for (const auto& [task, metric] : {std::pair<std::string, std::string>{"ctr", "auc"},
                                         {"next_item", "HR@10"},
                                         {"next_item", "NDCG@10"},
                                         {"match", "HR@10"}}) {
        t.put("text + ID" + tag, "cold " + task + " " + metric, get(text_id.test.cold, task, metric));
        t.put("ID only" + tag, "cold " + task + " " + metric, get(id_only.test.cold, task, metric));
      }
      // Baselines on the same targets: cold items by their positives in the test rows (what a
      // popularity list learns once they are out; optimistic, it counts the future), with and
      // without the user's own rows (which hold the target), and by the generator's click logit.
      // The known rows give no baseline: cold items have no positives there but in the
      // validation period, and those are too few to rank by.
      const Interactions targets = cold_targets(ds, test, cold_item);
      RankingEvaluator ev(implicit_positives(ds, known, 0), ds.num_users(), ds.num_items(),
                          RankingOptions().ks({10}).seed(seed));
      std::vector<float> count(size_t(ds.num_items()), 0);
      std::map<std::pair<int32_t, int32_t>, float> own;  // (user, item) -> the user's positives
      const Interactions pos = implicit_positives(ds, test, 0);
      for (size_t j = 0; j < pos.size(); ++j) count[size_t(pos.item[j])] += 1, own[{pos.user[j], pos.item[j]}] += 1;
      ScoreFn popular = [&](int32_t, const std::vector<int32_t>& items, std::vector<float>& out) {
        out.resize(items.size());
        for (size_t j = 0; j < items.size(); ++j) out[j] = count[size_t(items[j])];
      };
      ScoreFn popular_others = [&](int32_t u, const std::vector<int32_t>& items, std::vector<float>& out) {
        out.resize(items.size());
        for (size_t j = 0; j < items.size(); ++j) {
          auto it = own.find({u, items[j]});
          out[j] = count[size_t(items[j])] - (it == own.end() ? 0.f : it->second);
        }
      };
      ScoreFn oracle = [&](int32_t u, const std::vector<int32_t>& items, std::vector<float>& out) {
        out.resize(items.size());  // the click logit's order, the same in every scenario
        for (size_t j = 0; j < items.size(); ++j)
          out[j] = 4 * w.truth.affinity(u, items[j]) + w.truth.item_quality[size_t(items[j])];
      };
      for (const auto& [name, fn] : {std::pair<std::string, ScoreFn>{"most popular cold (test counts)", popular},
                                     {"most popular cold (others' test counts)", popular_others},
                                     {"oracle", oracle}}) {
        const RankingReport rr = ev.evaluate(targets, within_items(cold_item, fn));
        t.put(name + tag, "cold next_item HR@10", rr.at("HR@10"));
        t.put(name + tag, "cold next_item NDCG@10", rr.at("NDCG@10"));
      }
      std::vector<float> p, y;
      const int32_t imp = ds.behaviors.find("impression");
      for (size_t j = 0; j < test.size(); ++j)
        if (cold_item[size_t(test.item[j])])
          p.push_back(w.truth.click_probability(test.user[j], test.item[j], test.scenario[j])),
              y.push_back(test.behavior[j] != imp);
      t.put("oracle" + tag, "cold ctr auc", auc(p, y));
      t.put("cold targets" + tag, "users", double(targets.size()));
      t.put("cold exposures" + tag, "rows", double(p.size()));
    }
    fmt::print("  seed {} ({:.0f} s)\n", seed, since(t0));
  }
  for (double q : {0.0, quality}) {
    const std::string tag = fmt::format(" (text quality {:.2g})", q);
    fmt::print("\n  text quality {:.2g}: {:.0f} cold target users and {:.0f} cold exposures a seed on average\n", q,
               bench::mean(t.at("cold targets" + tag, "users")), bench::mean(t.at("cold exposures" + tag, "rows")));
    compare_header("text + ID against ID only on cold items" + tag, size_t(seeds));
    for (const char* m : {"cold ctr auc", "cold next_item HR@10", "cold next_item NDCG@10", "cold match HR@10"})
      t.compare("text + ID" + tag, "ID only" + tag, m);
    compare_header("against the baselines" + tag, size_t(seeds));
    for (const char* m : {"cold next_item HR@10", "cold next_item NDCG@10"}) {
      t.compare("text + ID" + tag, "most popular cold (test counts)" + tag, m);
      t.compare("text + ID" + tag, "most popular cold (others' test counts)" + tag, m);
      t.compare("oracle" + tag, "text + ID" + tag, m);
    }
    t.compare("oracle" + tag, "text + ID" + tag, "cold ctr auc");
  }
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
      UnifiedModel m = r.fit.model_for("rating");
      const c10::Device dev = m->item_emb->weight.device();
      torch::NoGradGuard g;
      for (size_t a = 0; a < x.size(); a += 2048) {
        std::vector<int32_t> u(x.user.begin() + long(a), x.user.begin() + long(std::min(x.size(), a + 2048)));
        std::vector<int64_t> u64(u.begin(), u.end()),
            i64(x.item.begin() + long(a), x.item.begin() + long(a + u.size()));
        at::Tensor ut = torch::tensor(u64).to(dev);
        at::Tensor uv = m->user_vectors(ut, h.pack(u, base.model().max_history()).to(dev));
        auto p = m->rank_outputs(ut, uv, torch::tensor(i64).to(dev),
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
  int epochs = 10, folds = 5, threads = 0, seeds = 5, patience = 3;
  double text_quality = 0.5;
  uint64_t seed = 1;
  app.add_option("--data-dir", data_dir)->capture_default_str();
  app.add_option("--only", only, "synthetic|cold|ml100k")->check(CLI::IsMember({"", "synthetic", "cold", "ml100k"}));
  app.add_option("--seeds", seeds, "synthetic and cold: seeds seed .. seed + seeds - 1, compared paired")
      ->capture_default_str();
  app.add_option("--text-quality", text_quality, "cold: the second world's SyntheticOptions::text_quality")
      ->capture_default_str();
  app.add_option("--patience", patience, "validations without improvement of any task")->capture_default_str();
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
                               .patience(patience);
  fmt::print(
      "quality_joint: seeds {}..{}, at most {} epochs per row, ID dim 32, text encoder 32 x 1 layer, device {}, {} "
      "LibTorch threads\n",
      seed, seed + uint64_t(seeds) - 1, epochs, describe_device(choose_device(device)), at::get_num_threads());
  fmt::print("  {:<4} {:<40} {:<26} {:>8} {:>8}  {}\n", "prot", "system", "metric", "value", "wall", "note");
  if (only.empty() || only == "synthetic") synthetic(base, seed, seeds);
  if (only.empty() || only == "cold") cold(base, seed, seeds, text_quality);
  if (only.empty() || only == "ml100k") {
    if (std::filesystem::exists(data_dir + "/u.data"))
      movielens(data_dir, base, folds, seed);
    else
      fmt::print("\nML-100K skipped: {} has no u.data (pass --data-dir)\n", data_dir);
  }
  return 0;
}
