// The training engine: Trainer, observers, optimisers, schedule, resume.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>

#include "mtrec/core/check.h"
#include "mtrec/core/io.h"
#include "mtrec/data/batcher.h"
#include "mtrec/data/synthetic.h"
#include "mtrec/nn/checkpoint.h"
#include "mtrec/data/labels.h"
#include "mtrec/tasks/rating.h"
#include "mtrec/train/observers.h"
#include "mtrec/train/optim.h"
#include "mtrec/train/trainer.h"
#include "test_torch.h"
#include "test_util.h"

namespace mtrec {
namespace {

using test::expect_identical;
using test::params_of;

// y = 3x - 2 + small noise, x in [-1, 1]: a least-squares problem with a known optimum.
struct LineSource : BatchSource {
  at::Tensor x, y;
  explicit LineSource(int64_t n) {
    auto g = torch::make_generator<at::CPUGeneratorImpl>(7);
    x = torch::rand({n, 1}, g) * 2 - 1;
    y = 3 * x - 2 + 0.01 * torch::randn({n, 1}, g);
  }
  int64_t num_examples() const override { return x.size(0); }
  Batch make_batch(const std::vector<int64_t>& rows, const c10::Device& device) const override {
    auto idx = torch::tensor(rows, torch::kLong);
    Batch b;
    b.size = static_cast<int64_t>(rows.size());
    b.fields["x"] = x.index_select(0, idx).to(device);
    b.fields["y"] = y.index_select(0, idx).to(device);
    b.fields["row"] = idx.to(device);
    return b;
  }
};

struct LineModel : Model {
  torch::nn::Sequential net;
  explicit LineModel(double dropout = 0) {
    torch::manual_seed(1);
    net = torch::nn::Sequential(torch::nn::Linear(1, 8), torch::nn::Dropout(dropout), torch::nn::Linear(8, 1));
    if (dropout == 0) net = torch::nn::Sequential(torch::nn::Linear(1, 1));
  }
  torch::nn::Module& module() override { return *net; }
  Outputs forward(const Batch& b) override { return {{"y", net->forward(b.at("x"))}}; }
};

struct MseTask : Objective {
  const LineSource* valid_source = nullptr;
  std::string name() const override { return "line"; }
  at::Tensor loss(const Outputs& out, const Batch& b) override {
    return masked_mean((out.at("y") - b.at("y")).pow(2).squeeze(1), b.mask("line"));
  }
  Metrics validate(Model& m) override {
    if (!valid_source) return {};
    auto& lm = dynamic_cast<LineModel&>(m);
    auto err = lm.net->forward(valid_source->x) - valid_source->y;
    return {{"mse", err.pow(2).mean().item<double>()}};
  }
};

// The usage example at the top of train/trainer.h, as written there (a header example that
// does not compile or run is worse than none).
TEST(Trainer, TheHeaderExampleRunsAsWritten) {
  test::OneThread one;
  test::TempDir dir;
  SyntheticWorld w = generate_world(SyntheticOptions().users(80).items(40).interactions(12000).seed(3).threads(1));
  const Interactions all = explicit_ratings(w.data, w.data.interactions);  // the world's star ratings
  ASSERT_GT(all.size(), 500u);
  std::vector<size_t> tr, va;
  for (size_t r = 0; r < all.size(); ++r) (r % 5 == 0 ? va : tr).push_back(r);
  const Interactions train = all.subset(tr), valid = all.subset(va);
  const int64_t users = w.data.num_users(), items = w.data.num_items();
  const std::string runs_mf = dir.path("mf");
  torch::manual_seed(1);

  mtrec::RatingModel model(mtrec::BiasedMF(mtrec::BiasedMFOptions(users, items).dim(32).global_mean(3.5)));
  mtrec::InteractionSource source(train);                   // data/batcher.h
  mtrec::RatingObjective rating(/*l2=*/0.05, valid, 1, 5);  // tasks/rating.h
  mtrec::Trainer trainer(model, source, {{&rating, 1.0}},
                         mtrec::TrainerOptions().epochs(20).lr(0.01).monitor("rating/rmse", /*maximize=*/false));
  trainer.add_observer(std::make_shared<mtrec::EarlyStopping>(/*patience=*/3));  // train/observers.h
  trainer.add_observer(std::make_shared<mtrec::Checkpointer>(runs_mf));          // last.ckpt, best.ckpt
  mtrec::TrainSummary s = trainer.train();

  // It learns: the validation RMSE beats predicting the training mean for every row.
  double mean = 0, sse = 0;
  for (float r : train.rating) mean += r / double(train.size());
  for (float r : valid.rating) sse += (r - mean) * (r - mean);
  const double baseline = std::sqrt(sse / double(valid.size()));
  const double best = rating.validate(model).at("rmse");
  EXPECT_LT(best, baseline - 0.02) << "trained " << best << " vs mean " << baseline;
  EXPECT_GE(s.state.epoch, 1);
  EXPECT_TRUE(std::filesystem::exists(runs_mf + "/last.ckpt"));
  EXPECT_TRUE(std::filesystem::exists(runs_mf + "/best.ckpt"));
  // ... and "or first trainer.resume(load_checkpoint(...))": a finished run resumes and stops.
  mtrec::Trainer again(model, source, {{&rating, 1.0}},
                       mtrec::TrainerOptions().epochs(20).lr(0.01).monitor("rating/rmse", false));
  again.resume(mtrec::load_checkpoint(runs_mf + "/last.ckpt"));
  EXPECT_EQ(again.state().epoch, s.state.epoch);
}

TEST(Trainer, FindsTheKnownOptimumOfALeastSquaresProblem) {
  LineSource src(512);
  LineModel model;
  MseTask task;
  Trainer t(model, src, {{&task, 1.0}},
            TrainerOptions().epochs(60).batch_size(32).optimizer("sgd").lr(0.1).device("cpu").prefetch(2));
  t.train();
  auto lin = model.net->ptr(0)->as<torch::nn::Linear>();
  EXPECT_NEAR(lin->weight.item<double>(), 3.0, 0.02);
  EXPECT_NEAR(lin->bias.item<double>(), -2.0, 0.02);
  EXPECT_EQ(t.state().step, 60 * 16);
  EXPECT_EQ(t.state().examples, 60 * 512);
}

struct Recorder : Observer {
  std::vector<std::string> events;
  void on_train_begin(Trainer&) override { events.push_back("begin"); }
  Signal after_batch(Trainer& t) override {
    events.push_back("batch" + std::to_string(t.state().batch));
    return Signal::Continue;
  }
  Signal on_validation(Trainer& t) override {
    events.push_back(t.state().improved ? "valid+" : "valid");
    return Signal::Continue;
  }
  Signal on_stall(Trainer& t) override {
    events.push_back("stall" + std::to_string(t.state().stalls));
    return Signal::Continue;
  }
  Signal after_epoch(Trainer& t) override {
    events.push_back("epoch" + std::to_string(t.state().epoch));
    return Signal::Continue;
  }
  void on_train_end(Trainer&) override { events.push_back("end"); }
};

// Validation scripted by epoch: lets early stopping and stalls be tested exactly.
struct ScriptedTask : MseTask {
  std::vector<double> script;
  size_t calls = 0;
  std::vector<std::vector<at::Tensor>> params_at_validation;
  Metrics validate(Model& m) override {
    params_at_validation.push_back(params_of(m));
    return {{"score", script.at(calls++)}};
  }
};

TEST(Trainer, ObserversSeeEventsInOrder) {
  LineSource src(8);
  LineModel model;
  ScriptedTask task;
  task.script = {1.0, 2.0};
  auto rec = std::make_shared<Recorder>();
  Trainer t(model, src, {{&task, 1.0}}, TrainerOptions().epochs(2).batch_size(4).device("cpu"));
  t.add_observer(rec);
  t.train();
  std::vector<std::string> want = {"begin",  "batch1", "batch2", "valid+", "epoch1", "batch1",
                                   "batch2", "valid",  "stall1", "epoch2", "end"};
  EXPECT_EQ(rec->events, want);
}

TEST(Trainer, EarlyStoppingStopsAfterPatienceAndRestoresTheBestEpoch) {
  LineSource src(64);
  LineModel model;
  ScriptedTask task;
  task.script = {0.5, 0.3, 0.4, 0.35, 0.31, 0.2};  // best at epoch 2; epochs 3 and 4 stall
  Trainer t(
      model, src, {{&task, 1.0}},
      TrainerOptions().epochs(6).batch_size(16).optimizer("sgd").lr(0.05).monitor("line/score", false).device("cpu"));
  t.add_observer(std::make_shared<EarlyStopping>(2));
  auto s = t.train();
  EXPECT_EQ(task.calls, 4u);
  EXPECT_TRUE(s.state.stopped_early);
  EXPECT_EQ(s.state.epoch, 4);
  EXPECT_EQ(s.state.best_epoch, 1);
  EXPECT_DOUBLE_EQ(s.state.best, 0.3);
  expect_identical(params_of(model), task.params_at_validation[1]);
  EXPECT_EQ(s.validations.size(), 4u);
}

struct NamedScriptedTask : ScriptedTask {
  std::string task_name;
  std::string name() const override { return task_name; }
};

std::vector<at::Tensor> values_of(const BestPerTask::NamedTensors& state) {
  std::vector<at::Tensor> v;
  for (const auto& [name, x] : state) v.push_back(x);
  return v;
}

TEST(Trainer, BestPerTaskKeepsEachTasksBestValidationAndStopsWhenNoTaskImproves) {
  LineSource src(64);
  LineModel model;
  NamedScriptedTask a, b;
  a.task_name = "a", b.task_name = "b";
  a.script = {0.5, 0.3, 0.4, 0.35, 0.6, 0.1};    // smaller is better: best at epoch 2
  b.script = {0.1, 0.2, 0.25, 0.24, 0.23, 0.9};  // larger is better: best at epoch 3
  Trainer t(
      model, src, {{&a, 1.0}, {&b, 1.0}},
      TrainerOptions().epochs(6).batch_size(16).optimizer("sgd").lr(0.05).monitor("a/score", false).device("cpu"));
  auto sel =
      std::make_shared<BestPerTask>(std::vector<std::pair<std::string, bool>>{{"a/score", false}, {"b/score", true}},
                                    /*patience=*/2);
  t.add_observer(sel);
  auto s = t.train();
  // Epochs 4 and 5 improve neither task: stopped there, before the 6th validation.
  EXPECT_EQ(a.calls, 5u);
  EXPECT_TRUE(s.state.stopped_early);
  const auto& best = sel->best();
  ASSERT_EQ(best.size(), 2u);
  EXPECT_EQ(best.at("a/score").epoch, 1);
  EXPECT_DOUBLE_EQ(best.at("a/score").value, 0.3);
  EXPECT_EQ(best.at("b/score").epoch, 2);
  EXPECT_DOUBLE_EQ(best.at("b/score").value, 0.25);
  expect_identical(values_of(*best.at("a/score").state), a.params_at_validation[1]);
  expect_identical(values_of(*best.at("b/score").state), a.params_at_validation[2]);
  // The model ends with the first metric's state.
  expect_identical(params_of(model), a.params_at_validation[1]);

  // Saved and loaded (resume): the same bests; a state two metrics share is one copy.
  Checkpoint ck;
  sel->save_state(ck);
  BestPerTask back({{"a/score", false}, {"b/score", true}}, 2);
  back.load_state(ck);
  ASSERT_EQ(back.best().size(), 2u);
  for (const auto& [name, x] : best) {
    EXPECT_EQ(back.best().at(name).epoch, x.epoch) << name;
    EXPECT_DOUBLE_EQ(back.best().at(name).value, x.value) << name;
    expect_identical(values_of(*back.best().at(name).state), values_of(*x.state));
  }
}

TEST(Trainer, BestPerTaskSharesOneCopyBetweenTasksImprovedTogether) {
  LineSource src(32);
  LineModel model;
  NamedScriptedTask a, b;
  a.task_name = "a", b.task_name = "b";
  a.script = {0.9, 0.8, 0.7};
  b.script = {0.1, 0.2, 0.3};
  Trainer t(model, src, {{&a, 1.0}, {&b, 1.0}},
            TrainerOptions().epochs(3).batch_size(16).optimizer("sgd").lr(0.05).device("cpu"));
  auto sel =
      std::make_shared<BestPerTask>(std::vector<std::pair<std::string, bool>>{{"a/score", false}, {"b/score", true}});
  t.add_observer(sel);
  t.train();
  EXPECT_EQ(sel->best().at("a/score").epoch, 2);
  EXPECT_EQ(sel->best().at("a/score").state, sel->best().at("b/score").state);
  Checkpoint ck;
  sel->save_state(ck);
  BestPerTask back({{"a/score", false}, {"b/score", true}});
  back.load_state(ck);
  EXPECT_EQ(back.best().at("a/score").state, back.best().at("b/score").state);
  EXPECT_THROW(BestPerTask({{"no-slash", true}}), Error);
  // A checkpoint written without per-task selection cannot resume with it.
  BestPerTask fresh({{"a/score", false}});
  EXPECT_THROW(fresh.load_state(Checkpoint{}), Error);
}

// A task whose loss is NaN from a given step on, to exercise the guard.
struct PoisonTask : MseTask {
  int64_t poison_from = 0, poison_to = 1 << 30;
  int64_t seen = 0;
  std::string name() const override { return "poison"; }
  at::Tensor loss(const Outputs& out, const Batch& b) override {
    auto l = MseTask::loss(out, b);
    ++seen;
    return seen > poison_from && seen <= poison_to ? l * std::nan("") : l;
  }
};

TEST(Trainer, NonFiniteStepsAreSkippedAndCountedThenStopWithAClearMessage) {
  LineSource src(64);
  {
    LineModel model;
    PoisonTask task;
    task.poison_from = 3;
    task.poison_to = 5;  // batches 4 and 5 are NaN: skipped, training goes on
    Trainer t(model, src, {{&task, 1.0}},
              TrainerOptions().epochs(2).batch_size(8).optimizer("sgd").lr(0.05).device("cpu"));
    auto s = t.train();
    EXPECT_EQ(s.state.skipped_steps, 2);
    EXPECT_EQ(s.state.step, 16 - 2);
    for (auto& p : model.module().parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
  }
  LineModel model;
  PoisonTask task;
  task.poison_from = 6;
  Trainer t(model, src, {{&task, 1.0}},
            TrainerOptions().epochs(2).batch_size(8).optimizer("sgd").lr(0.05).max_bad_steps(3).device("cpu"));
  try {
    t.train();
    FAIL() << "training went on through NaN losses";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("3 non-finite steps in a row"), std::string::npos) << m;
    EXPECT_NE(m.find("task 'poison'"), std::string::npos) << m;
    EXPECT_NE(m.find("at step 6"), std::string::npos) << m;
    EXPECT_NE(m.find("last finite loss"), std::string::npos) << m;
  }
}

TEST(Trainer, GradientAccumulationEqualsOneLargerBatch) {
  LineSource src(64);
  LineModel a, b;
  MseTask task;
  // Batches of 8 accumulated in pairs are the batches of 16 (the order does not depend on the
  // batch size), and each is a mean, so the steps agree up to rounding.
  Trainer ta(a, src, {{&task, 1.0}},
             TrainerOptions().epochs(3).batch_size(8).accumulate(2).optimizer("sgd").lr(0.1).device("cpu"));
  Trainer tb(b, src, {{&task, 1.0}}, TrainerOptions().epochs(3).batch_size(16).optimizer("sgd").lr(0.1).device("cpu"));
  ta.train();
  tb.train();
  EXPECT_EQ(ta.state().step, tb.state().step);
  auto pa = params_of(a), pb = params_of(b);
  for (size_t k = 0; k < pa.size(); ++k) EXPECT_TRUE(torch::allclose(pa[k], pb[k], 1e-5, 1e-6));
}

TEST(Trainer, ClippingBoundsTheUpdate) {
  LineSource src(16);
  LineModel model;
  MseTask task;
  auto before = params_of(model);
  Trainer t(model, src, {{&task, 1.0}},
            TrainerOptions().epochs(1).batch_size(16).optimizer("sgd").lr(1.0).clip_norm(0.01).validate_every(0).device(
                "cpu"));
  t.train();
  auto after = params_of(model);
  double sq = 0;
  for (size_t k = 0; k < after.size(); ++k) sq += (after[k] - before[k]).pow(2).sum().item<double>();
  EXPECT_NEAR(std::sqrt(sq), 0.01, 1e-4);  // one SGD step of lr 1 on a gradient clipped to norm .01
}

TEST(Schedule, WarmupThenCosineAndLinearByHand) {
  EXPECT_DOUBLE_EQ(scheduled_lr("cosine", 1.0, 0, 110, 10, 0, 1, 0), 0.1);
  EXPECT_DOUBLE_EQ(scheduled_lr("cosine", 1.0, 9, 110, 10, 0, 1, 0), 1.0);
  EXPECT_NEAR(scheduled_lr("cosine", 1.0, 60, 110, 10, 0, 1, 0), 0.5, 1e-12);
  EXPECT_NEAR(scheduled_lr("cosine", 1.0, 110, 110, 10, 0.1, 1, 0), 0.1, 1e-12);
  EXPECT_NEAR(scheduled_lr("linear", 2.0, 35, 110, 10, 0, 1, 0), 1.5, 1e-12);
  EXPECT_NEAR(scheduled_lr("exponential", 2.0, 999, 110, 0, 0, 0.5, 3), 0.25, 1e-12);
  EXPECT_DOUBLE_EQ(scheduled_lr("constant", 0.3, 50, 110, 0, 0, 1, 0), 0.3);
  EXPECT_THROW(scheduled_lr("cosin", 1.0, 0, 10, 0, 0, 1, 0), Error);
}

// ---- sparse row optimisers against dense / hand-computed updates (float64)

at::Tensor sparse_grad_step(const std::string& kind, at::Tensor& table, const std::vector<int64_t>& ids,
                            const at::Tensor& upstream, SparseRowOptimizer& opt) {
  auto idx = torch::tensor(ids, torch::kLong);
  auto rows = torch::embedding(table, idx, -1, false, /*sparse=*/true);
  (rows * upstream).sum().backward();
  opt.step();
  opt.zero_grad();
  return table.detach().clone();
}

TEST(SparseRowOptimizer, SgdEqualsDenseSgdWithRepeatedRows) {
  auto opts = torch::TensorOptions().dtype(torch::kDouble);
  auto init = torch::randn({6, 3}, torch::make_generator<at::CPUGeneratorImpl>(3)).to(torch::kDouble);
  auto sparse_t = init.clone().requires_grad_(true), dense_t = init.clone().requires_grad_(true);
  SparseRowOptimizer rows({sparse_t}, SparseRowOptions().kind("sgd").lr(0.1));
  torch::optim::SGD dense({dense_t}, torch::optim::SGDOptions(0.1));
  std::vector<std::vector<int64_t>> batches = {{0, 2, 2, 5}, {1, 1, 1, 4}, {5, 0, 3, 3}};
  for (const auto& ids : batches) {
    auto up = torch::arange(static_cast<int64_t>(ids.size() * 3), opts).view({-1, 3}) * 0.1 - 0.5;
    sparse_grad_step("sgd", sparse_t, ids, up, rows);
    auto idx = torch::tensor(ids, torch::kLong);
    (torch::embedding(dense_t, idx) * up).sum().backward();
    dense.step();
    dense.zero_grad();
  }
  EXPECT_TRUE(torch::allclose(sparse_t, dense_t, 0, 1e-14));
  EXPECT_FALSE(torch::equal(sparse_t, init));
}

TEST(SparseRowOptimizer, RowwiseAdagradAndLazyAdamMatchTheirFormulas) {
  auto init = torch::randn({4, 2}, torch::make_generator<at::CPUGeneratorImpl>(5)).to(torch::kDouble);
  const std::vector<int64_t> ids = {1, 3, 1};
  auto up = torch::tensor({0.5, -1.0, 2.0, 0.25, -0.5, 1.5}, torch::kDouble).view({3, 2});
  // The summed gradient per touched row, as the slow oracle sees it.
  auto g1 = up[0] + up[2], g3 = up[1];
  {
    auto t = init.clone().requires_grad_(true);
    SparseRowOptimizer opt({t}, SparseRowOptions().kind("adagrad").lr(0.5).eps(1e-10));
    sparse_grad_step("adagrad", t, ids, up, opt);
    for (auto [row, g] : {std::pair<int64_t, at::Tensor>{1, g1}, {3, g3}}) {
      double acc = g.pow(2).mean().item<double>();
      auto want = init[row] - 0.5 * g / (std::sqrt(acc) + 1e-10);
      EXPECT_TRUE(torch::allclose(t[row], want, 0, 1e-12)) << "row " << row;
    }
    EXPECT_TRUE(torch::equal(t[0], init[0]));  // untouched rows stay
    EXPECT_TRUE(torch::equal(t[2], init[2]));
  }
  {
    auto t = init.clone().requires_grad_(true);
    SparseRowOptimizer opt({t}, SparseRowOptions().kind("adam").lr(0.1).eps(1e-8));
    sparse_grad_step("adam", t, ids, up, opt);
    // First Adam step: m̂ = g, v̂ = g², so the update is lr·g/(|g|+eps).
    for (auto [row, g] : {std::pair<int64_t, at::Tensor>{1, g1}, {3, g3}}) {
      auto want = init[row] - 0.1 * g / (g.abs() + 1e-8);
      EXPECT_TRUE(torch::allclose(t[row], want, 0, 1e-12)) << "row " << row;
    }
    EXPECT_TRUE(torch::equal(t[2], init[2]));
    auto st = opt.state();
    SparseRowOptimizer back({init.clone().requires_grad_(true)}, SparseRowOptions().kind("adam"));
    back.load_state(st);
    EXPECT_TRUE(torch::equal(back.state()[1].second, st[1].second));
  }
}

// ---- resume: an interrupted run continues bit-identically

using Crash = test::CrashAtStep;

TEST(Trainer, ResumeFromAMidEpochCheckpointIsBitIdentical) {
  test::TempDir dir;
  LineSource src(100), valid(40);
  // Dropout and Adam make the run depend on the RNG and the optimiser state.
  const auto options = TrainerOptions()
                           .epochs(4)
                           .batch_size(16)
                           .optimizer("adamw")
                           .lr(0.01)
                           .schedule("cosine")
                           .warmup_steps(5)
                           .monitor("line/mse", false)
                           .device("cpu");
  std::vector<at::Tensor> want;
  std::vector<std::map<std::string, Metrics>> want_valid;
  {
    LineModel model(0.2);
    MseTask task;
    task.valid_source = &valid;
    Trainer t(model, src, {{&task, 1.0}}, options);
    t.add_observer(std::make_shared<EarlyStopping>(10));
    auto s = t.train();
    want = params_of(model);
    want_valid = s.validations;
  }
  {
    LineModel model(0.2);
    MseTask task;
    task.valid_source = &valid;
    Trainer t(model, src, {{&task, 1.0}}, options);
    t.add_observer(std::make_shared<EarlyStopping>(10));
    t.add_observer(std::make_shared<Checkpointer>(dir.path("run"), 3));
    t.add_observer(std::make_shared<Crash>(17));  // epoch 3 of 4 (7 steps an epoch), after a checkpoint at 15
    EXPECT_THROW(t.train(), std::runtime_error);
  }
  Checkpoint ck = load_checkpoint(dir.path("run/last.ckpt"));
  LineModel model(0.2);
  MseTask task;
  task.valid_source = &valid;
  Trainer t(model, src, {{&task, 1.0}}, options);
  t.add_observer(std::make_shared<EarlyStopping>(10));
  t.resume(ck);
  EXPECT_EQ(t.state().step, 15);
  EXPECT_EQ(t.state().epoch, 2);
  EXPECT_EQ(t.state().batch, 1);
  auto s = t.train();
  expect_identical(params_of(model), want);
  EXPECT_EQ(s.validations, want_valid);

  // Another configuration cannot continue that run.
  LineModel other(0.2);
  Trainer bad(other, src, {{&task, 1.0}}, TrainerOptions(options).batch_size(8));
  try {
    bad.resume(ck);
    FAIL() << "resumed with another batch size";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'batch_size' was 16"), std::string::npos) << e.what();
  }
}

TEST(Observers, LoggerReportAndCheckpointsAreWritten) {
  test::TempDir dir;
  LineSource src(32), valid(16);
  LineModel model;
  MseTask task;
  task.valid_source = &valid;
  Trainer t(model, src, {{&task, 1.0}},
            TrainerOptions().epochs(3).batch_size(8).optimizer("sgd").lr(0.1).device("cpu"));
  t.set_config(R"({"who":"test"})");
  t.add_observer(std::make_shared<JsonlLogger>(dir.path("run/metrics.jsonl")));
  t.add_observer(std::make_shared<Checkpointer>(dir.path("run")));
  t.add_observer(std::make_shared<HtmlReport>(dir.path("run/report.html")));
  t.train();
  std::ifstream in(dir.path("run/metrics.jsonl"));
  std::string line;
  int epochs = 0, ends = 0;
  while (std::getline(in, line)) {
    epochs += line.find("\"event\":\"epoch\"") != std::string::npos;
    ends += line.find("\"event\":\"end\"") != std::string::npos;
    EXPECT_NE(line.find("\"step\""), std::string::npos) << line;
  }
  EXPECT_EQ(epochs, 3);
  EXPECT_EQ(ends, 1);
  std::string html = read_file(dir.path("run/report.html"));
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("line / mse"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);                        // self-contained, opens offline
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no external resources
  Checkpoint last = load_checkpoint(dir.path("run/last.ckpt"));
  EXPECT_NE(last.config_json.find("\"who\":\"test\""), std::string::npos);
  EXPECT_NE(last.trainer_json.find("\"epoch\":3"), std::string::npos);
  EXPECT_NO_THROW(load_checkpoint(dir.path("run/best.ckpt")));
  EXPECT_NE(read_file(dir.path("run/config.json")).find("\"batch_size\": 8"), std::string::npos);
}

// ---- batcher

TEST(Batcher, EveryExampleOncePerEpochSeededOrderAndExactResume) {
  LineSource src(103);
  Batcher a(src, BatcherOptions().batch_size(10).prefetch(3), c10::kCPU);
  Batcher b(src, BatcherOptions().batch_size(10).prefetch(0), c10::kCPU);
  a.start_epoch(0, 11);
  b.start_epoch(0, 11);
  EXPECT_EQ(a.batches_per_epoch(), 11);
  std::vector<int64_t> seen;
  Batch x, y;
  while (a.next(x)) {
    ASSERT_TRUE(b.next(y));
    EXPECT_TRUE(torch::equal(x.at("row"), y.at("row")));
    for (int64_t k = 0; k < x.size; ++k) seen.push_back(x.at("row")[k].item<int64_t>());
  }
  EXPECT_FALSE(b.next(y));
  std::vector<int64_t> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t k = 0; k < 103; ++k) ASSERT_EQ(sorted[k], k);
  EXPECT_NE(seen[0] * 1000 + seen[1], 1);  // shuffled
  // Another epoch seed, another order; the same seed from batch 4 gives the same tail.
  a.start_epoch(1, 12);
  ASSERT_TRUE(a.next(x));
  EXPECT_FALSE(torch::equal(x.at("row"), torch::tensor(std::vector<int64_t>(seen.begin(), seen.begin() + 10))));
  b.start_epoch(0, 11, 4);
  ASSERT_TRUE(b.next(y));
  EXPECT_EQ(b.rows_of(4), std::vector<int64_t>(seen.begin() + 40, seen.begin() + 50));
  EXPECT_TRUE(torch::equal(y.at("row"), torch::tensor(std::vector<int64_t>(seen.begin() + 40, seen.begin() + 50))));
}

struct FailingSource : LineSource {
  FailingSource() : LineSource(20) {}
  Batch make_batch(const std::vector<int64_t>& rows, const c10::Device& d) const override {
    MTREC_CHECK(rows.size() < 5, "bad row group of ", rows.size());
    return LineSource::make_batch(rows, d);
  }
};

TEST(Batcher, AnErrorOnTheWorkerReachesTheCaller) {
  FailingSource src;
  Batcher b(src, BatcherOptions().batch_size(8).prefetch(2), c10::kCPU);
  b.start_epoch(0, 1);
  Batch x;
  try {
    b.next(x);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad row group of 8"), std::string::npos);
  }
}

TEST(MaskedMean, OnlyMaskedExamplesCountAndAnEmptyMaskIsZero) {
  auto v = torch::tensor({1.0, 2.0, 3.0, 10.0});
  EXPECT_DOUBLE_EQ(masked_mean(v, torch::tensor({true, false, true, false})).item<double>(), 2.0);
  EXPECT_DOUBLE_EQ(masked_mean(v, at::Tensor()).item<double>(), 4.0);
  auto w = torch::tensor({1.0, 2.0}).requires_grad_(true);
  auto z = masked_mean(w, torch::tensor({false, false}));
  EXPECT_DOUBLE_EQ(z.item<double>(), 0.0);
  z.backward();
  EXPECT_TRUE(torch::equal(w.grad(), torch::zeros_like(w)));
}

}  // namespace
}  // namespace mtrec
