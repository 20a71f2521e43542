// Training-engine speed: biased MF by SGD through the Trainer (sparse row updates of the four
// tables) on a synthetic 1M-rating matrix, small tables against 10x larger ones, and the dense
// update path (whole-table gradients, what the heads did before the engine) for contrast.
//   build/bench/bench_engine [--ratings 1000000] [--users 50000] [--items 10000] [--batch 1024]
//                            [--dim 64] [--epochs 3] [--threads 1]
// Reported: ratings/s of the steady-state epochs (the first epoch is warm-up), median of them.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

#include "mtrec/core/device.h"
#include "mtrec/core/log.h"
#include "mtrec/data/batcher.h"
#include "mtrec/tasks/rating.h"
#include "mtrec/train/trainer.h"

using namespace mtrec;

namespace {

Interactions synthetic_ratings(int64_t n, int32_t users, int32_t items, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> u(0, users - 1), i(0, items - 1);
  std::uniform_int_distribution<int> r(1, 5);
  Interactions x;
  x.has_rating = true;
  x.reserve(n);
  for (int64_t k = 0; k < n; ++k) x.push_back(u(rng), i(rng), static_cast<float>(r(rng)));
  return x;
}

// The layout before one-table-per-side: four tables (factors and biases apart), kept here to
// measure the choice in the same run.
struct FourTableMF : torch::nn::Module, Model {
  torch::nn::Embedding P{nullptr}, Q{nullptr}, bu{nullptr}, bi{nullptr};
  FourTableMF(int64_t users, int64_t items, int64_t dim) {
    auto t = [](int64_t n, int64_t d) { return torch::nn::Embedding(torch::nn::EmbeddingOptions(n, d).sparse(true)); };
    P = register_module("P", t(users, dim));
    Q = register_module("Q", t(items, dim));
    bu = register_module("bu", t(users, 1));
    bi = register_module("bi", t(items, 1));
  }
  torch::nn::Module& module() override { return *this; }
  std::vector<std::string> sparse_parameters() const override {
    return {"P.weight", "Q.weight", "bu.weight", "bi.weight"};
  }
  Outputs forward(const Batch& b) override {
    auto p = P(b.at("user")), q = Q(b.at("item"));
    auto u = bu(b.at("user")).squeeze(-1), i = bi(b.at("item")).squeeze(-1);
    return {{"rating", 3.0 + u + i + (p * q).sum(-1)},
            {"rating_l2", p.pow(2).sum(-1) + q.pow(2).sum(-1) + u.pow(2) + i.pow(2)}};
  }
};

// Records the wall time of every epoch.
struct EpochTimer : Observer {
  std::vector<double> seconds;
  std::chrono::steady_clock::time_point t0;
  void on_train_begin(Trainer&) override { t0 = std::chrono::steady_clock::now(); }
  Signal after_epoch(Trainer&) override {
    auto t = std::chrono::steady_clock::now();
    seconds.push_back(std::chrono::duration<double>(t - t0).count());
    t0 = t;
    return Signal::Continue;
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct Row {
  std::string name;
  double ratings_per_s, ms_per_step;
};

Row run(const std::string& name, const Interactions& x, int32_t users, int32_t items, int64_t dim, int64_t batch,
        int epochs, bool sparse, bool four_tables = false) {
  RatingModel mf(BiasedMF(BiasedMFOptions(users, items).dim(dim).global_mean(3.0).sparse(sparse)));
  FourTableMF four(four_tables ? users : 1, four_tables ? items : 1, dim);
  Model& model = four_tables ? static_cast<Model&>(four) : mf;
  InteractionSource source(x);
  RatingObjective task(0.05, {}, 1, 5);
  Trainer t(model, source, {{&task, 1.0}},
            TrainerOptions()
                .epochs(epochs)
                .batch_size(batch)
                .optimizer("sgd")
                .sparse_optimizer("sgd")
                .lr(1.0)
                .validate_every(0)
                .device("cpu"));
  auto timer = std::make_shared<EpochTimer>();
  t.add_observer(timer);
  t.train();
  std::vector<double> steady(timer->seconds.begin() + (timer->seconds.size() > 1 ? 1 : 0), timer->seconds.end());
  const double s = median(steady);
  const double steps = static_cast<double>((x.size() + batch - 1) / batch);
  return {name, static_cast<double>(x.size()) / s, 1000.0 * s / steps};
}

// Where a step's time goes: the same step as the trainer's, timed by phase over `steps` batches.
void phases(const Interactions& x, int32_t users, int32_t items, int64_t dim, int64_t batch, int steps) {
  RatingModel model(BiasedMF(BiasedMFOptions(users, items).dim(dim).global_mean(3.0).sparse(true)));
  InteractionSource source(x);
  RatingObjective task(0.05, {}, 1, 5);
  std::vector<at::Tensor> tables;
  for (auto& p : model.module().parameters()) tables.push_back(p);
  SparseRowOptimizer opt(tables, SparseRowOptions().kind("sgd").lr(1.0));
  using C = std::chrono::steady_clock;
  double t_batch = 0, t_fwd = 0, t_bwd = 0, t_opt = 0;
  auto sec = [](C::time_point a, C::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  for (int s = 0; s < steps; ++s) {
    std::vector<int64_t> rows(batch);
    for (int64_t k = 0; k < batch; ++k) rows[k] = (s * batch + k * 7919) % static_cast<int64_t>(x.size());
    auto t0 = C::now();
    Batch b = source.make_batch(rows, c10::kCPU);
    auto t1 = C::now();
    auto loss = task.loss(model.forward(b), b);
    loss.item<double>();
    auto t2 = C::now();
    loss.backward();
    auto t3 = C::now();
    opt.step();
    opt.zero_grad();
    auto t4 = C::now();
    if (s < steps / 5) continue;  // warm-up
    t_batch += sec(t0, t1), t_fwd += sec(t1, t2), t_bwd += sec(t2, t3), t_opt += sec(t3, t4);
  }
  const double n = steps - steps / 5;
  fmt::print(
      "\n  phases of one step (mean of {} steps, ms): batch assembly {:.3f} (on the prefetch thread in "
      "training), forward+loss {:.3f}, backward {:.3f}, sparse SGD {:.3f}\n",
      static_cast<int>(n), 1e3 * t_batch / n, 1e3 * t_fwd / n, 1e3 * t_bwd / n, 1e3 * t_opt / n);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_engine: biased-MF SGD throughput through the training engine"};
  int64_t ratings = 1000000, batch = 1024, dim = 64;
  int32_t users = 50000, items = 10000;
  int epochs = 3, threads = 1, dense_epochs = 1;
  app.add_option("--ratings", ratings)->capture_default_str();
  app.add_option("--users", users)->capture_default_str();
  app.add_option("--items", items)->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str();
  app.add_option("--dim", dim)->capture_default_str();
  app.add_option("--epochs", epochs, "Epochs per configuration (the first is warm-up)")->capture_default_str();
  app.add_option("--dense-epochs", dense_epochs, "Epochs of the dense-update contrast (0: skip)")
      ->capture_default_str();
  app.add_option("--threads", threads, "LibTorch intra-op threads")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  set_log_level(LogLevel::Warn);
  set_cpu_threads(threads);
  fmt::print("bench_engine: {} ratings, batch {}, dim {}, {} intra-op threads, CPU; seed 42\n", ratings, batch, dim,
             at::get_num_threads());
  auto small = synthetic_ratings(ratings, users, items, 42);
  phases(small, users, items, dim, batch, 300);
  auto large = synthetic_ratings(ratings, users * 10, items * 10, 42);
  std::vector<Row> rows;
  rows.push_back(run(fmt::format("sparse rows, {}k x {}k tables", users / 1000, items / 1000), small, users, items, dim,
                     batch, epochs, true));
  rows.push_back(run(fmt::format("sparse rows, {}k x {}k tables (10x)", users / 100, items / 100), large, users * 10,
                     items * 10, dim, batch, epochs, true));
  rows.push_back(run(fmt::format("four tables (previous layout), {}k x {}k", users / 1000, items / 1000), small, users,
                     items, dim, batch, epochs, true, true));
  if (dense_epochs > 0)
    rows.push_back(run(fmt::format("dense tables, {}k x {}k (old path)", users / 1000, items / 1000), small, users,
                       items, dim, batch, dense_epochs + 1, false));
  fmt::print("\n  {:<44} {:>14} {:>10}\n", "configuration", "ratings/s", "ms/step");
  for (const auto& r : rows) fmt::print("  {:<44} {:>14.0f} {:>10.3f}\n", r.name, r.ratings_per_s, r.ms_per_step);
  fmt::print("\n  10x tables / small tables step time: {:.3f}\n", rows[1].ms_per_step / rows[0].ms_per_step);
  fmt::print("  four tables / one table per side step time: {:.3f}\n", rows[2].ms_per_step / rows[0].ms_per_step);
  if (rows.size() > 3) fmt::print("  dense / sparse step time: {:.1f}\n", rows[3].ms_per_step / rows[0].ms_per_step);
  return 0;
}
