#include "mtrec/tasks/next_item.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <limits>
#include <random>

#include "mtrec/core/check.h"
#include "mtrec/data/movielens.h"
#include "mtrec/data/split.h"
#include "mtrec/train/fit_next_item.h"
#include "test_torch.h"
#include "test_util.h"

namespace {

using mtrec::NextItemData;
using mtrec::NextItemModel;
using mtrec::NextItemOptions;

NextItemModel tiny_model(int64_t items, double dropout = 0.0, int64_t text_dim = 0) {
  torch::manual_seed(7);
  return NextItemModel(
      NextItemOptions(items).d_model(8).layers(2).heads(2).max_len(6).dropout(dropout).text_dim(text_dim));
}

// Central differences in float64 on a handful of entries of every parameter.
void expect_gradients_match(NextItemModel& model, const std::function<torch::Tensor()>& loss_fn) {
  model->to(torch::kDouble);
  model->eval();
  model->zero_grad();
  loss_fn().backward();
  const double eps = 1e-6;
  int checked = 0;
  for (auto& p : model->named_parameters()) {
    torch::Tensor flat = p.value().view({-1});
    torch::Tensor grad = p.value().grad().view({-1});
    for (int64_t k = 0; k < flat.numel(); k += std::max<int64_t>(1, flat.numel() / 5)) {
      torch::NoGradGuard ng;
      const double orig = flat[k].item<double>();
      flat[k] = orig + eps;
      const double up = loss_fn().item<double>();
      flat[k] = orig - eps;
      const double down = loss_fn().item<double>();
      flat[k] = orig;
      const double numeric = (up - down) / (2 * eps);
      const double analytic = grad[k].item<double>();
      if (p.key() == "item_emb.weight" && k < model->options.d_model()) {
        EXPECT_EQ(analytic, 0.0) << "padding row must get no gradient";
        continue;
      }
      EXPECT_NEAR(analytic, numeric, 1e-6 + 1e-5 * std::abs(numeric)) << p.key() << "[" << k << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 50);
}

// tokens: two right-aligned rows with padding; targets 0 where there is none.
torch::Tensor toy_tokens() { return torch::tensor({0, 0, 3, 1, 4, 1, 5, 2, 6, 5, 3, 5}, torch::kLong).view({2, 6}); }
torch::Tensor toy_targets() { return torch::tensor({0, 0, 1, 4, 1, 5, 2, 6, 5, 3, 5, 7}, torch::kLong).view({2, 6}); }

TEST(NextItem, FullSoftmaxGradientMatchesCentralDifferences) {
  auto model = tiny_model(7);
  expect_gradients_match(model, [&] { return model->full_softmax_loss(toy_tokens(), toy_targets()); });
}

TEST(NextItem, SampledSoftmaxGradientMatchesCentralDifferences) {
  auto model = tiny_model(7);
  torch::Tensor neg = torch::tensor({0, 2, 2, 5, 6}, torch::kLong);
  torch::Tensor q = torch::tensor({0.1, 0.2, 0.05, 0.15, 0.2, 0.2, 0.1}, torch::kDouble);
  expect_gradients_match(model, [&] { return model->sampled_softmax_loss(toy_tokens(), toy_targets(), neg, q); });
}

TEST(NextItem, TextEmbeddingGradientMatchesCentralDifferences) {
  auto model = tiny_model(7, 0.0, 3);
  torch::manual_seed(3);
  model->set_item_text(torch::randn({7, 3}));
  expect_gradients_match(model, [&] { return model->full_softmax_loss(toy_tokens(), toy_targets()); });
  EXPECT_THROW(model->set_item_text(torch::randn({6, 3})), mtrec::Error);
}

TEST(NextItem, SampledSoftmaxOverWholeCatalogueEqualsFullSoftmax) {
  // Every item drawn once with uniform q: the logQ term is log(K/n) = 0 and the positive's own
  // copy among the negatives is masked, so the sampled loss is exactly the full softmax.
  auto model = tiny_model(7);
  model->eval();
  torch::Tensor all = torch::arange(7, torch::kLong);
  torch::Tensor q = torch::full({7}, 1.0 / 7);
  const double full = model->full_softmax_loss(toy_tokens(), toy_targets()).item<double>();
  const double sampled = model->sampled_softmax_loss(toy_tokens(), toy_targets(), all, q).item<double>();
  EXPECT_NEAR(full, sampled, 1e-5);
  EXPECT_GT(full, 0.0);
}

TEST(NextItem, EarlierPositionsIgnoreLaterItems) {
  auto model = tiny_model(7);
  model->eval();
  torch::NoGradGuard ng;
  torch::Tensor a = torch::tensor({{2, 5, 1, 7, 3, 4}}, torch::kLong);
  torch::Tensor b = a.clone();
  b[0][4] = 6;
  torch::Tensor ha = model->forward(a), hb = model->forward(b);
  EXPECT_TRUE(torch::allclose(ha.slice(1, 0, 4), hb.slice(1, 0, 4), 1e-6, 1e-6));
  EXPECT_GT((ha.slice(1, 4) - hb.slice(1, 4)).abs().max().item<double>(), 1e-4);
}

TEST(NextItem, LeftPaddingDoesNotChangeOutputs) {
  auto model = tiny_model(7);
  model->eval();
  torch::NoGradGuard ng;
  torch::Tensor shortseq = torch::tensor({{3, 1, 4}}, torch::kLong);
  torch::Tensor padded = torch::tensor({{0, 0, 0, 3, 1, 4}}, torch::kLong);
  torch::Tensor hs = model->forward(shortseq), hp = model->forward(padded);
  EXPECT_TRUE(torch::allclose(hs, hp.slice(1, 3), 1e-5, 1e-6));
  EXPECT_EQ(hp.slice(1, 0, 3).abs().max().item<float>(), 0.0f);
  EXPECT_TRUE(torch::allclose(model->score_next(shortseq), model->score_next(padded), 1e-5, 1e-5));
  // A batch mixing lengths gives each row the same result as alone.
  torch::Tensor both = torch::tensor({{0, 0, 0, 3, 1, 4}, {2, 5, 1, 7, 3, 4}}, torch::kLong);
  EXPECT_TRUE(torch::allclose(model->score_next(both)[0], model->score_next(shortseq)[0], 1e-5, 1e-5));
}

TEST(NextItem, PackHistoriesRightAlignsAndTruncates) {
  std::vector<int32_t> a = {0, 1, 2, 3, 4}, b = {6};
  torch::Tensor t = mtrec::pack_histories({&a, &b}, 3);
  torch::Tensor want = torch::tensor({{3, 4, 5}, {0, 0, 7}}, torch::kLong);
  EXPECT_TRUE(torch::equal(t, want));
}

TEST(NextItem, LeaveOneOutSequencesByTime) {
  mtrec::Interactions x;
  x.has_timestamp = true;
  // user 0: items by time 4,2,9,7 ; user 1: two interactions only.
  x.push_back(0, 9, 1, 30);
  x.push_back(0, 4, 1, 10);
  x.push_back(0, 7, 1, 40);
  x.push_back(1, 1, 1, 5);
  x.push_back(0, 2, 1, 20);
  x.push_back(1, 3, 1, 6);
  NextItemData d = mtrec::make_next_item_data(x, 2, 10, 1);
  EXPECT_EQ(d.train[0], (std::vector<int32_t>{4, 2}));
  EXPECT_EQ(d.valid[0], 9);
  EXPECT_EQ(d.test[0], 7);
  EXPECT_EQ(d.train[1], (std::vector<int32_t>{1, 3}));
  EXPECT_EQ(d.valid[1], -1);
  EXPECT_EQ(d.test[1], -1);
  EXPECT_EQ(d.test_history(0), (std::vector<int32_t>{4, 2, 9}));
  EXPECT_EQ(d.seen(true).size(), 5u);
  EXPECT_EQ(d.targets(true).size(), 1u);
}

TEST(NextItem, MovieLensSequencesAgreeWithLeaveOneOutSplit) {
  MTREC_REQUIRE_ML100K(dir);
  mtrec::Dataset ds = mtrec::read_movielens_100k(dir);
  NextItemData d = mtrec::make_next_item_data(ds.interactions, ds.num_users(), ds.num_items(), 42);
  mtrec::Split s = mtrec::leave_one_out_split(ds.interactions, 42);
  ASSERT_EQ(s.test.size(), 943u);
  for (size_t r : s.test) EXPECT_EQ(d.test[ds.interactions.user[r]], ds.interactions.item[r]);
  for (size_t r : s.valid) EXPECT_EQ(d.valid[ds.interactions.user[r]], ds.interactions.item[r]);
  size_t train = 0;
  for (const auto& t : d.train) train += t.size();
  EXPECT_EQ(train, s.train.size());
}

// Users walk i -> i+1 (mod n) with probability 0.8, else jump to a random item.
NextItemData transition_world(int32_t users, int32_t items, int len, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> any(0, items - 1);
  std::bernoulli_distribution follow(0.8);
  NextItemData d;
  d.num_items = items;
  d.train.resize(users);
  d.valid.resize(users);
  d.test.resize(users);
  for (int32_t u = 0; u < users; ++u) {
    std::vector<int32_t> s{any(rng)};
    while (static_cast<int>(s.size()) < len) s.push_back(follow(rng) ? (s.back() + 1) % items : any(rng));
    d.test[u] = s.back();
    s.pop_back();
    d.valid[u] = s.back();
    s.pop_back();
    d.train[u] = s;
  }
  return d;
}

TEST(NextItem, LearnsTransitionsAndBeatsPopularity) {
  NextItemData d = transition_world(160, 120, 16, 11);
  torch::manual_seed(1);
  NextItemModel model(NextItemOptions(d.num_items).d_model(32).layers(1).heads(1).max_len(16).dropout(0.1));
  // An engine observer sees every epoch.
  struct Count : mtrec::Observer {
    int epochs = 0;
    mtrec::Signal after_epoch(mtrec::Trainer&) override { return ++epochs, mtrec::Signal::Continue; }
  };
  auto count = std::make_shared<Count>();
  auto r = mtrec::fit_next_item(model, d,
                                mtrec::NextItemTrainOptions()
                                    .epochs(20)
                                    .batch_size(32)
                                    .lr(1e-2)
                                    .warmup_steps(10)
                                    .eval_every(5)
                                    .patience(0)
                                    .seed(5)
                                    .device("cpu"),
                                mtrec::RunOptions().observer(count));
  EXPECT_EQ(count->epochs, r.epochs_run);
  EXPECT_EQ(r.epochs_run, 20);
  ASSERT_EQ(r.history.size(), 20u);
  for (const auto& e : r.history) EXPECT_EQ(e.evaluated, e.epoch % 5 == 0) << "epoch " << e.epoch;
  ASSERT_GT(r.best_epoch, 0);
  EXPECT_LT(r.history.back().loss, r.history.front().loss);
  // The restored parameters are the best validation epoch's.
  auto [vhr, vndcg] = mtrec::fast_full_ranking_hr_ndcg10(model, d, mtrec::NextItemStage::Valid);
  EXPECT_NEAR(vndcg, r.best_valid_ndcg10, 1e-9);
  EXPECT_NEAR(vhr, r.best_valid_hr10, 1e-9);

  mtrec::RankingReport full =
      mtrec::evaluate_next_item(model, d, mtrec::NextItemStage::Test, mtrec::RankingOptions().threads(1));
  mtrec::RankingReport pop =
      mtrec::evaluate_most_popular(d, mtrec::NextItemStage::Test, mtrec::RankingOptions().threads(1));
  // 80% of targets follow the transition: a model that learnt it gets HR@10 near 0.8, while
  // popularity on a near-uniform catalogue of 120 items gets about 10/120.
  RecordProperty("model_hr10", std::to_string(full.at("HR@10")));
  RecordProperty("popularity_hr10", std::to_string(pop.at("HR@10")));
  EXPECT_GT(full.at("HR@10"), 0.6);
  EXPECT_GT(full.at("HR@10"), pop.at("HR@10") + 0.45);
  EXPECT_GT(full.at("NDCG@10"), pop.at("NDCG@10") + 0.3);
  // The on-device fast path agrees with the evaluator (the slow exact oracle).
  auto [thr, tndcg] = mtrec::fast_full_ranking_hr_ndcg10(model, d, mtrec::NextItemStage::Test);
  EXPECT_NEAR(thr, full.at("HR@10"), 1e-9);
  EXPECT_NEAR(tndcg, full.at("NDCG@10"), 1e-6);
}

TEST(NextItem, FastRankingTreatsNanScoresAsTheEvaluatorDoes) {
  // 30 items, 6 users. Item 24 (user 0's and 3's test target) and item 27 (nobody's target,
  // in no history) score NaN: a NaN target is a miss, a NaN candidate ranks ahead.
  NextItemData d;
  d.num_items = 30;
  for (int32_t u = 0; u < 6; ++u) {
    d.train.push_back({u, u + 6, u + 12});
    d.valid.push_back(18 + u);
    d.test.push_back(24 + u % 3);
  }
  NextItemModel model = tiny_model(d.num_items);
  {
    torch::NoGradGuard ng;
    model->item_emb->weight[24 + 1].fill_(std::numeric_limits<float>::quiet_NaN());
    model->item_emb->weight[27 + 1].fill_(std::numeric_limits<float>::quiet_NaN());
  }
  mtrec::RankingReport full =
      mtrec::evaluate_next_item(model, d, mtrec::NextItemStage::Test, mtrec::RankingOptions().ks({10}).threads(1));
  auto [hr, ndcg] = mtrec::fast_full_ranking_hr_ndcg10(model, d, mtrec::NextItemStage::Test);
  EXPECT_NEAR(hr, full.at("HR@10"), 1e-9);
  EXPECT_NEAR(ndcg, full.at("NDCG@10"), 1e-6);
  EXPECT_LE(hr, 4.0 / 6 + 1e-12);  // users 0 and 3 can never hit
}

TEST(NextItem, SampledSoftmaxTrainingAlsoLowersFullLoss) {
  NextItemData d = transition_world(120, 300, 14, 12);
  for (auto loss : {mtrec::NextItemLoss::SampledUniform, mtrec::NextItemLoss::SampledPopularity}) {
    torch::manual_seed(2);
    NextItemModel model(NextItemOptions(d.num_items).d_model(32).layers(1).max_len(14).dropout(0.0));
    std::vector<const std::vector<int32_t>*> in;
    std::vector<std::vector<int32_t>> xs, ys;
    for (const auto& s : d.train) {
      xs.emplace_back(s.begin(), s.end() - 1);
      ys.emplace_back(s.begin() + 1, s.end());
    }
    std::vector<const std::vector<int32_t>*> px, py;
    for (size_t k = 0; k < xs.size(); ++k) {
      px.push_back(&xs[k]);
      py.push_back(&ys[k]);
    }
    torch::Tensor tok = mtrec::pack_histories(px, 14), tgt = mtrec::pack_histories(py, 14);
    auto full_loss = [&] {
      torch::NoGradGuard ng;
      model->eval();
      return model->full_softmax_loss(tok, tgt).item<double>();
    };
    const double before = full_loss();
    mtrec::fit_next_item(model, d,
                         mtrec::NextItemTrainOptions()
                             .epochs(15)
                             .batch_size(32)
                             .lr(1e-2)
                             .warmup_steps(5)
                             .loss(loss)
                             .num_negatives(32)
                             .eval_every(0)
                             .device("cpu"));
    const double after = full_loss();
    EXPECT_LT(after, before - 1.0) << "loss kind " << static_cast<int>(loss);
  }
  EXPECT_THROW(mtrec::parse_next_item_loss("bpr"), mtrec::Error);
  EXPECT_EQ(mtrec::parse_next_item_loss("sampled-pop"), mtrec::NextItemLoss::SampledPopularity);
}

TEST(NextItem, OptionsRoundTripThroughJson) {
  auto o = NextItemOptions(99).d_model(16).layers(3).heads(4).ffn_dim(32).max_len(20).dropout(0.25).text_dim(8);
  auto back = mtrec::next_item_options_from_json(mtrec::next_item_options_to_json(o));
  EXPECT_EQ(back.num_items(), 99);
  EXPECT_EQ(back.d_model(), 16);
  EXPECT_EQ(back.layers(), 3);
  EXPECT_EQ(back.heads(), 4);
  EXPECT_EQ(back.ffn_dim(), 32);
  EXPECT_EQ(back.max_len(), 20);
  EXPECT_EQ(back.dropout(), 0.25);
  EXPECT_EQ(back.text_dim(), 8);
  EXPECT_EQ(mtrec::next_item_options_from_json(R"({"num_items": 5})").d_model(), 64);
  EXPECT_THROW(mtrec::next_item_options_from_json(R"({"num_items": 5, "dim": 3})"), mtrec::Error);
  EXPECT_THROW(mtrec::next_item_options_from_json(R"({"d_model": 3})"), mtrec::Error);
  EXPECT_THROW(mtrec::next_item_options_from_json("{"), mtrec::Error);
}

TEST(NextItem, RejectsBadInput) {
  auto model = tiny_model(7);
  EXPECT_THROW(model->forward(torch::zeros({1, 7}, torch::kLong)), mtrec::Error);  // longer than max_len
  EXPECT_THROW(model->full_softmax_loss(toy_tokens(), torch::zeros({2, 6}, torch::kLong)), mtrec::Error);
  NextItemData d = transition_world(4, 9, 5, 1);
  EXPECT_THROW(mtrec::fit_next_item(model, d, mtrec::NextItemTrainOptions().epochs(1)), mtrec::Error);
}

// Validation every eval_every epochs and after the last one; patience counts validations; the
// parameters end as those of the best validation.
TEST(NextItem, ValidatesAfterTheLastEpochAndStopsOnPatience) {
  NextItemData d = transition_world(60, 40, 10, 3);
  auto run = [&](int epochs, int eval_every, int patience, double lr) {
    torch::manual_seed(4);
    NextItemModel model(NextItemOptions(d.num_items).d_model(16).layers(1).max_len(10).dropout(0.0));
    auto r = mtrec::fit_next_item(model, d,
                                  mtrec::NextItemTrainOptions()
                                      .epochs(epochs)
                                      .batch_size(16)
                                      .lr(lr)
                                      .warmup_steps(2)
                                      .eval_every(eval_every)
                                      .patience(patience)
                                      .device("cpu"));
    std::vector<int> evaluated;
    for (const auto& e : r.history)
      if (e.evaluated) evaluated.push_back(e.epoch);
    auto [hr, ndcg] = mtrec::fast_full_ranking_hr_ndcg10(model, d, mtrec::NextItemStage::Valid);
    EXPECT_NEAR(ndcg, r.best_valid_ndcg10, 1e-9);
    return std::make_pair(r, evaluated);
  };
  EXPECT_EQ(run(7, 3, 0, 1e-2).second, (std::vector<int>{3, 6, 7}));
  EXPECT_EQ(run(4, 0, 0, 1e-2).second, (std::vector<int>{4}));  // eval_every 0: only at the end
  // A learning rate this small leaves the model where it started: validation cannot improve
  // after the first, so patience 2 stops after the third.
  auto [r, evaluated] = run(20, 1, 2, 1e-9);
  EXPECT_TRUE(r.early_stopped);
  EXPECT_EQ(r.epochs_run, 3);
  EXPECT_EQ(r.best_epoch, 1);
}

// An interrupted run (a crash after a mid-epoch checkpoint) resumed from RUN/train/last.ckpt
// ends with exactly the parameters of the uninterrupted run (dropout and sampled negatives draw
// from the generator the checkpoint carries).
TEST(NextItem, ResumeFromAMidEpochCheckpointIsBitIdentical) {
  NextItemData d = transition_world(70, 50, 12, 8);
  const auto options = mtrec::NextItemTrainOptions()
                           .epochs(3)
                           .batch_size(16)
                           .lr(5e-3)
                           .warmup_steps(3)
                           .eval_every(1)
                           .patience(0)
                           .loss(mtrec::NextItemLoss::SampledPopularity)
                           .num_negatives(16)
                           .seed(9)
                           .device("cpu");
  auto fresh = [&] {
    torch::manual_seed(3);
    return NextItemModel(NextItemOptions(d.num_items).d_model(16).layers(1).max_len(12).dropout(0.3));
  };
  auto params = [](NextItemModel& m) {
    std::vector<torch::Tensor> v;
    for (auto& p : m->parameters()) v.push_back(p.detach().clone());
    return v;
  };
  NextItemModel want_model = fresh();
  auto want = mtrec::fit_next_item(want_model, d, options);
  mtrec::test::TempDir dir;
  const auto run = mtrec::RunOptions().out_dir(dir.path("run")).checkpoint_every(3);
  {
    NextItemModel model = fresh();
    EXPECT_THROW(mtrec::fit_next_item(model, d, options,
                                      mtrec::RunOptions(run).observer(std::make_shared<mtrec::test::CrashAtStep>(7))),
                 std::runtime_error);
  }
  {
    auto j = nlohmann::json::parse(mtrec::load_checkpoint(dir.path("run/train/last.ckpt")).trainer_json);
    EXPECT_EQ(j.at("step"), 6);  // mid-epoch: the resume starts inside epoch 2
    EXPECT_EQ(j.at("batch"), 1);
  }
  NextItemModel model = fresh();
  auto got = mtrec::fit_next_item(model, d, options, mtrec::RunOptions(run).resume(dir.path("run/train/last.ckpt")));
  auto a = params(model), b = params(want_model);
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) EXPECT_TRUE(torch::equal(a[k], b[k])) << "parameter " << k;
  EXPECT_EQ(got.best_epoch, want.best_epoch);
  EXPECT_EQ(got.best_valid_ndcg10, want.best_valid_ndcg10);
  EXPECT_EQ(got.epochs_run, 3);
}

}  // namespace
