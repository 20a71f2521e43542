// `mtrec demo`: the main job of the README quick start, end to end on the synthetic world
// (default) or on MovieLens 100K (`--dataset ml-100k --data-dir DIR`).
//  1. Generates and validates the world (1000 users x 500 items by default; one summary line),
//     or reads ML-100K (ratings >= 4 are the positives, "clicks" below).
//  2. Splits the clicks (positives; impressions dropped) leave-one-out by time.
//  3. Trains the CTR head on the training clicks; AUC / GAUC / logloss per scenario on the
//     held-out clicks with 4 uniform unseen negatives each (protocol C).
//  4. Top-K: item-KNN (cosine over clicks) fused with the CTR head's home-feed score, α chosen
//     on the validation items (never the test items); HR@10 / NDCG@10 over the full catalogue
//     for most-popular, KNN, CTR and the fusion on the same split.
//  5. For 3 users: profile text, last items, top-5 recommendations with their score and whether
//     the item's main topic is the user's strongest topic (SyntheticWorld::truth; on ML-100K
//     the items' genres instead).
#include <algorithm>
#include <chrono>
#include <numeric>

#include "cli.h"
#include "mtrec/cf/knn.h"
#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/log.h"
#include "mtrec/data/movielens.h"
#include "mtrec/data/sampler.h"
#include "mtrec/data/split.h"
#include "mtrec/eval/evaluator.h"
#include "mtrec/tasks/ctr.h"
#include "mtrec/train/fit.h"
#include "mtrec/tasks/fusion.h"
#include "mtrec/tasks/labels.h"
#include "synthetic_cli.h"
#include "train_registry.h"

namespace mtrec::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct DemoArgs {
  std::string dataset = "synthetic", data_dir;
  float min_rating = 4;  // ml-100k: the positives
  SyntheticOptions world = SyntheticOptions().users(1000).items(500).interactions(60000);
  int ctr_epochs = 6;
  int knn_k = 50;
  int samples = 3;
};

/// The user's strongest topic in the generator's truth.
int32_t strongest_topic(const SyntheticTruth& t, int32_t u) {
  const float* row = t.user_topic.data() + size_t(u) * size_t(t.topics);
  return static_cast<int32_t>(std::max_element(row, row + t.topics) - row);
}

/// Items not in `seen` (sorted), i.e. the candidates of a full ranking.
std::vector<int32_t> unseen_items(const std::vector<int32_t>& seen, int32_t items) {
  std::vector<int32_t> c;
  for (int32_t i = 0; i < items; ++i)
    if (!std::binary_search(seen.begin(), seen.end(), i)) c.push_back(i);
  return c;
}

/// The `k` best candidates by score (ties: lower item id first) and their scores.
std::vector<std::pair<int32_t, float>> top_k(const ScoreFn& fn, int32_t u, const std::vector<int32_t>& cand, size_t k) {
  std::vector<float> s;
  fn(u, cand, s);
  std::vector<size_t> idx(cand.size());
  std::iota(idx.begin(), idx.end(), size_t{0});
  k = std::min(k, idx.size());
  std::partial_sort(idx.begin(), idx.begin() + long(k), idx.end(), [&](size_t a, size_t b) {
    return s[a] != s[b] ? s[a] > s[b] : cand[a] < cand[b];
  });
  std::vector<std::pair<int32_t, float>> out;
  for (size_t j = 0; j < k; ++j) out.push_back({cand[idx[j]], s[idx[j]]});
  return out;
}

void run_demo(const DemoArgs& a, const CliContext& ctx) {
  const auto t_all = Clock::now();
  // 1. World, or MovieLens.
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
  const int32_t U = ds.num_users(), I = ds.num_items(), S = std::max<int32_t>(1, ds.scenarios.size());
  if (synthetic) {
    fmt::print("synthetic world: {} users, {} items, {} topics, {} scenarios, {} exposures (density {:.3f}), "
               "generated in {:.2f} s; validation: {}\n",
               U, I, truth->topics, S, ds.interactions.size(), world["density"].get<double>(),
               world["seconds"].get<double>(), world["valid"].get<bool>() ? "ok" : "FAILED");
    if (!world["valid"].get<bool>()) {
      for (auto& p : world["problems"]) fmt::print("  {}\n", p.get<std::string>());
      ctx.write_json({{"world", world}, {"seed", ctx.seed}});
      throw ExitCode{1};
    }
  } else {
    fmt::print("MovieLens 100K ({}): {} users, {} items, {} ratings, read in {:.2f} s; ratings >= {:g} are the "
               "positives (\"clicks\")\n",
               a.data_dir, U, I, ds.interactions.size(), world["seconds"].get<double>(), a.min_rating);
  }

  // 2. Clicks, leave-one-out by time.
  Interactions pos = implicit_positives(ds, ds.interactions, synthetic ? 0.0f : a.min_rating);
  Split split = leave_one_out_split(pos, ctx.seed);
  Interactions train = pos.subset(split.train), valid = pos.subset(split.valid), test = pos.subset(split.test);
  Interactions seen = pos.subset(concat(split.train, split.valid));
  fmt::print("clicks: {} ({} train / {} validation / {} test, leave-one-out by time)\n\n", pos.size(), train.size(),
             valid.size(), test.size());

  // 3. CTR head.
  t0 = Clock::now();
  auto ctr = fit_ctr(train, valid, U, I, S, CtrTrainOptions().seed(ctx.seed).device(ctx.device).epochs(a.ctr_epochs));
  const double ctr_fit_s = seconds_since(t0);
  NegativeSampler all_pos(pos, U, I, NegativeSampler::Kind::Uniform, derive_seed(ctx.seed, "demo-ctr-test"));
  CtrMetrics cm = ctr.evaluate(sample_ctr_examples(test, all_pos, 4));
  nlohmann::json ctr_j = ctr_json(cm, ds);
  ctr_j.update({{"epochs_run", ctr.epochs_run}, {"fit_s", ctr_fit_s}, {"negatives_per_positive", 4}});
  fmt::print("CTR head ({} epochs, {:.1f} s), held-out clicks + 4 unseen negatives each:\n", ctr.epochs_run, ctr_fit_s);
  fmt::print("  {:<10} {:>7} {:>7} {:>8} {:>7}\n", "scenario", "AUC", "GAUC", "logloss", "rows");
  fmt::print("  {:<10} {:>7.4f} {:>7.4f} {:>8.4f} {:>7}\n", "all", cm.auc, cm.gauc, cm.logloss, cm.count);
  if (ds.scenarios.size() > 1)
    for (const auto& [s, m] : cm.per_scenario)
      fmt::print("  {:<10} {:>7.4f} {:>7.4f} {:>8.4f} {:>7}\n", ds.scenarios.raw(s), m.auc, m.gauc, m.logloss, m.count);

  // 4. Top-K. The CTR head's home-feed click probability of every (user, item), computed once
  // so the scorer is a lookup (thread-safe for the evaluator).
  std::vector<float> ctr_scores(size_t(U) * size_t(I));
  {
    std::vector<int32_t> uu, ii, ss;
    for (int32_t u0 = 0; u0 < U; u0 += 64) {
      uu.clear(), ii.clear();
      for (int32_t u = u0; u < std::min(U, u0 + 64); ++u)
        for (int32_t i = 0; i < I; ++i) uu.push_back(u), ii.push_back(i);
      ss.assign(uu.size(), 0);
      auto p = ctr.predict(uu, ii, ss);
      std::copy(p.begin(), p.end(), ctr_scores.begin() + long(size_t(u0) * size_t(I)));
    }
  }
  ScoreFn ctr_fn = [&](int32_t u, const std::vector<int32_t>& c, std::vector<float>& out) {
    out.resize(c.size());
    for (size_t j = 0; j < c.size(); ++j) out[j] = ctr_scores[size_t(u) * size_t(I) + size_t(c[j])];
  };
  const KnnOptions ko =
      KnnOptions().kind(KnnKind::Item).similarity(KnnSimilarity::Cosine).shrinkage(0).baseline(false).k(a.knn_k);
  auto knn_fn = [](const KnnModel& m) -> ScoreFn {
    return [&m](int32_t u, const std::vector<int32_t>& c, std::vector<float>& out) { m.score(u, c, out); };
  };
  // α on validation: KNN on train only, validation items as targets, train items excluded.
  t0 = Clock::now();
  KnnModel knn_train(ko);
  knn_train.fit(train, U, I);
  RankingEvaluator ev_valid(train, U, I, RankingOptions().ks({10}).seed(ctx.seed));
  AlphaChoice alpha = choose_alpha([&](double al) {
    return ev_valid.evaluate(valid, fuse_score_fns(knn_fn(knn_train), ctr_fn, al)).at("NDCG@10");
  });
  // Test: KNN refit on train + validation (the user's latest items matter for next clicks).
  KnnModel knn(ko);
  knn.fit(seen, U, I);
  const double knn_s = seconds_since(t0);
  std::vector<float> pop(size_t(I), 0);
  for (size_t j = 0; j < seen.size(); ++j) pop[size_t(seen.item[j])] += 1;
  ScoreFn pop_fn = [&](int32_t, const std::vector<int32_t>& c, std::vector<float>& out) {
    out.resize(c.size());
    for (size_t j = 0; j < c.size(); ++j) out[j] = pop[size_t(c[j])];
  };
  ScoreFn fused = fuse_score_fns(knn_fn(knn), ctr_fn, alpha.alpha);
  RankingEvaluator ev(seen, U, I, RankingOptions().ks({5, 10, 20}).seed(ctx.seed));
  nlohmann::json topk = {{"protocol", "leave-one-out by time on clicks, full ranking over unseen items"},
                         {"alpha", alpha.alpha},
                         {"alpha_valid_ndcg@10", alpha.metric},
                         {"knn_k", a.knn_k}};
  for (const auto& [a_al, m] : alpha.curve) topk["alpha_curve"].push_back({a_al, m});
  fmt::print("\ntop-K, leave-one-out (latest click held out), full ranking over {} items; α = {:.1f} "
             "(validation NDCG@10 {:.4f}):\n",
             I, alpha.alpha, alpha.metric);
  fmt::print("  {:<22} {:>7} {:>8}\n", "model", "HR@10", "NDCG@10");
  const std::pair<const char*, const ScoreFn*> models[] = {
      {"most_popular", &pop_fn}, {"item_knn", nullptr}, {"ctr_head", &ctr_fn}, {"fused", &fused}};
  ScoreFn knn_score = knn_fn(knn);
  for (const auto& [name, fn] : models) {
    auto r = ev.evaluate(test, fn ? *fn : knn_score);
    topk[name] = {{"hr@10", r.at("HR@10")}, {"ndcg@10", r.at("NDCG@10")}, {"hr@5", r.at("HR@5")},
                  {"hr@20", r.at("HR@20")}, {"users", r.users}};
    fmt::print("  {:<22} {:>7.4f} {:>8.4f}\n", name, r.at("HR@10"), r.at("NDCG@10"));
  }

  // 5. Topic match of the top-5 over every test user (synthetic), then three users in detail.
  std::vector<std::vector<int32_t>> hist(static_cast<size_t>(U)), seen_sorted(static_cast<size_t>(U));
  for (size_t j = 0; j < seen.size(); ++j) hist[size_t(seen.user[j])].push_back(seen.item[j]);  // time order
  for (int32_t u = 0; u < U; ++u) {
    seen_sorted[size_t(u)] = hist[size_t(u)];
    std::sort(seen_sorted[size_t(u)].begin(), seen_sorted[size_t(u)].end());
  }
  double match_fused = 0, match_pop = 0;
  int64_t n_match = 0;
  for (size_t j = 0; truth && j < test.size(); ++j) {
    const int32_t u = test.user[j], st = strongest_topic(*truth, u);
    auto cand = unseen_items(seen_sorted[size_t(u)], I);
    for (auto [i, s] : top_k(fused, u, cand, 5)) match_fused += truth->item_main_topic[size_t(i)] == st;
    for (auto [i, s] : top_k(pop_fn, u, cand, 5)) match_pop += truth->item_main_topic[size_t(i)] == st;
    n_match += 5;
  }
  if (truth) {
    if (n_match) match_fused /= double(n_match), match_pop /= double(n_match);
    topk["topic_match@5"] = {{"fused", match_fused}, {"most_popular", match_pop}};
    fmt::print("  share of top-5 items on the user's strongest topic: fused {:.3f}, most popular {:.3f}\n",
               match_fused, match_pop);
  }

  auto title = [&](int32_t i) { return ds.item_text.get(i, "title"); };
  // What is shown in brackets: the item's main topic (synthetic) or its genres (MovieLens).
  auto tag = [&](int32_t i) {
    return truth ? truth->topic_names[size_t(truth->item_main_topic[size_t(i)])] : ds.item_text.get(i, "genres");
  };
  nlohmann::json recs = nlohmann::json::array();
  for (int k = 0; k < a.samples && test.size() > 0; ++k) {
    const size_t row = (test.size() * size_t(k)) / size_t(std::max(1, a.samples));
    const int32_t u = test.user[row], st = truth ? strongest_topic(*truth, u) : -1;
    const auto& h = hist[size_t(u)];
    nlohmann::json r = {{"user", ds.users.raw(u)}, {"profile", ds.user_text.get(u, "profile")},
                        {"held_out", title(test.item[row])}};
    if (truth) {
      r["strongest_topic"] = truth->topic_names[size_t(st)];
      fmt::print("\nuser {} (strongest topic: {}): \"{}\"\n  last items:\n", ds.users.raw(u),
                 truth->topic_names[size_t(st)], r["profile"].get<std::string>());
    } else {
      fmt::print("\nuser {}: \"{}\"\n  last items:\n", ds.users.raw(u), r["profile"].get<std::string>());
    }
    for (size_t j = h.size() > 3 ? h.size() - 3 : 0; j < h.size(); ++j) {
      fmt::print("    {:<5} [{}] {}\n", ds.items.raw(h[j]), tag(h[j]), title(h[j]));
      r["last_items"].push_back(title(h[j]));
    }
    fmt::print(truth ? "  top-5 (fused score, main topic = strongest?):\n" : "  top-5 (fused score):\n");
    bool hit = false;
    for (auto [i, s] : top_k(fused, u, unseen_items(seen_sorted[size_t(u)], I), 5)) {
      hit |= i == test.item[row];
      nlohmann::json rec = {{"item", ds.items.raw(i)}, {"title", title(i)}, {"score", s}};
      if (truth) {
        const bool match = truth->item_main_topic[size_t(i)] == st;
        rec["topic_match"] = match;
        fmt::print("    {:<5} {:>6.3f} {:<3} [{}] {}\n", ds.items.raw(i), s, match ? "yes" : "no", tag(i), title(i));
      } else {
        rec["genres"] = tag(i);
        fmt::print("    {:<5} {:>6.3f} [{}] {}\n", ds.items.raw(i), s, tag(i), title(i));
      }
      r["top5"].push_back(rec);
    }
    fmt::print("  held-out next click: {} [{}] ({})\n", title(test.item[row]), tag(test.item[row]),
               hit ? "in the top-5" : "not in the top-5");
    r["held_out_in_top5"] = hit;
    recs.push_back(r);
  }

  const double wall = seconds_since(t_all);
  fmt::print("\nwall time {:.1f} s (data {:.1f} s, CTR {:.1f} s, KNN + α + evaluation {:.1f} s) on {}\n", wall,
             world["seconds"].get<double>(), ctr_fit_s, knn_s, describe_device(choose_device(ctx.device)));
  ctx.write_json({{"seed", ctx.seed},
                  {"device", describe_device(choose_device(ctx.device))},
                  {"wall_s", wall},
                  {"world", world},
                  {"ctr", ctr_j},
                  {"topk", topk},
                  {"recommendations", recs}});
}

}  // namespace

MTREC_CLI_COMMANDS([](CLI::App& app, CliContext& ctx) {
  auto* demo = app.add_subcommand("demo", "Generate the synthetic world (or read ML-100K), train the CTR head and "
                                          "item-KNN on it, evaluate them and print sample recommendations");
  auto a = std::make_shared<DemoArgs>();
  demo->add_option("--dataset", a->dataset, "synthetic|ml-100k")
      ->check(CLI::IsMember({"synthetic", "ml-100k"}))
      ->capture_default_str();
  demo->add_option("--data-dir", a->data_dir, "ml-100k: the folder holding u.data");
  demo->add_option("--min-rating", a->min_rating, "ml-100k: ratings at or above this are the positives")
      ->capture_default_str();
  add_world_options(demo, a->world);
  demo->add_option("--ctr-epochs", a->ctr_epochs, "CTR head epochs (early stopping on validation AUC)")
      ->capture_default_str();
  demo->add_option("--knn-k", a->knn_k, "Item-KNN neighbours")->capture_default_str();
  demo->add_option("--samples", a->samples, "Users shown with their recommendations")->capture_default_str();
  demo->callback([&ctx, a] { run_demo(*a, ctx); });
});
}  // namespace mtrec::cli
