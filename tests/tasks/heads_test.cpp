// Recommendation heads: float64 gradient checks of every loss, each head against a simple
// baseline on the synthetic world, fusion arithmetic, checkpoint round trips and corruption.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "mtrec/core/check.h"
#include "mtrec/core/io.h"
#include "mtrec/data/sampler.h"
#include "mtrec/data/split.h"
#include "mtrec/data/synthetic.h"
#include "mtrec/eval/evaluator.h"
#include "mtrec/eval/metrics.h"
#include "mtrec/tasks/ctr.h"
#include "mtrec/tasks/dmf.h"
#include "mtrec/tasks/fusion.h"
#include "mtrec/data/labels.h"
#include "mtrec/tasks/rating.h"
#include "mtrec/train/fit.h"
#include "mtrec/train/fit_dmf.h"
#include "mtrec/nn/checkpoint.h"
#include "test_data.h"
#include "test_torch.h"
#include "test_util.h"

namespace mtrec {
namespace {

using test::OneThread;

// Central differences against autograd for every element of every parameter of `m`.
void expect_gradients_match(torch::nn::Module& m, const std::function<torch::Tensor()>& loss_fn, double tol = 1e-6) {
  m.zero_grad();
  loss_fn().backward();
  const double h = 1e-6;
  int checked = 0;
  for (auto& p : m.named_parameters()) {
    auto w = p.value();
    ASSERT_EQ(w.scalar_type(), torch::kDouble) << p.key();
    auto g = w.grad().defined() ? w.grad().clone() : torch::zeros_like(w);
    auto flat = w.view(-1);
    auto gflat = g.view(-1);
    for (int64_t k = 0; k < flat.numel(); ++k) {
      torch::NoGradGuard ng;
      double orig = flat[k].item<double>();
      flat[k] = orig + h;
      double up = loss_fn().item<double>();
      flat[k] = orig - h;
      double down = loss_fn().item<double>();
      flat[k] = orig;
      double numeric = (up - down) / (2 * h);
      double analytic = gflat[k].item<double>();
      EXPECT_NEAR(analytic, numeric, tol * (1 + std::fabs(numeric))) << p.key() << "[" << k << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 10);
}

// Module::to(kDouble) would also convert integer buffers (DMF's CSR indices): floating only.
void to_double(torch::nn::Module& m) {
  torch::NoGradGuard g;
  for (auto& p : m.parameters()) p.set_data(p.to(torch::kDouble));
  for (auto& b : m.buffers())
    if (b.is_floating_point()) b.set_data(b.to(torch::kDouble));
}

Interactions tiny_ratings() {
  Interactions x;
  x.has_rating = true;
  const int data[][3] = {{0, 0, 5}, {0, 1, 3}, {1, 1, 4}, {1, 2, 1}, {2, 0, 2}, {2, 3, 5}, {3, 2, 4}, {3, 4, 3}};
  for (const auto& d : data) x.push_back(d[0], d[1], static_cast<float>(d[2]));
  return x;
}

TEST(GradCheck, BiasedMFMseWithL2) {
  torch::manual_seed(1);
  BiasedMF mf(BiasedMFOptions(4, 5).dim(3).init_std(0.5).global_mean(3.5));
  to_double(*mf);
  auto users = torch::tensor({0, 1, 2, 3, 0}, torch::kLong), items = torch::tensor({1, 2, 3, 4, 0}, torch::kLong);
  auto target = torch::tensor({3.0, 1.0, 5.0, 3.0, 5.0}, torch::kDouble);
  expect_gradients_match(
      *mf, [&] { return rating_loss(mf->forward(users, items), target, mf->l2_terms(users, items), 0.1); });
  // The loss value itself: MSE + λ·mean of per-example squared norms.
  auto pred = mf->forward(users, items);
  double mse = (pred - target).pow(2).mean().item<double>();
  double l2 = mf->l2_terms(users, items).mean().item<double>();
  EXPECT_NEAR(rating_loss(pred, target, mf->l2_terms(users, items), 0.1).item<double>(), mse + 0.1 * l2, 1e-12);
}

TEST(GradCheck, DmfNormalisedCrossEntropy) {
  torch::manual_seed(2);
  DMF dmf(DMFOptions(4, 5).user_layers({6, 3}).item_layers({6, 3}));
  dmf->set_matrix(tiny_ratings(), 5.0f);
  to_double(*dmf);
  auto users = torch::tensor({0, 1, 2, 3, 1, 0}, torch::kLong), items = torch::tensor({0, 1, 3, 4, 0, 2}, torch::kLong);
  auto y = torch::tensor({1.0, 0.8, 1.0, 0.6, 0.0, 0.0}, torch::kDouble);
  auto loss = [&] {
    return dmf_loss(torch::cosine_similarity(dmf->user_vectors(users), dmf->item_vectors(items), 1, 1e-8), y);
  };
  expect_gradients_match(*dmf, loss, 1e-5);
  // Value: -(y log p + (1-y) log(1-p)) with p the clamped cosine.
  auto cos = torch::tensor({0.5, 0.9, 0.0, 1.0}, torch::kDouble);
  auto lab = torch::tensor({0.8, 1.0, 0.0, 0.4}, torch::kDouble);
  double p3 = 1 - 1e-6, p2 = 1e-6;
  double want = -(0.8 * std::log(0.5) + 0.2 * std::log(0.5) + std::log(0.9) + std::log(1 - p2) + 0.4 * std::log(p3) +
                  0.6 * std::log(1 - p3)) /
                4;
  EXPECT_NEAR(dmf_loss(cos, lab).item<double>(), want, 1e-9);
}

// Training with the target masked: every observed pair drops itself from both inputs
// (weight r/5), the negatives (weight 0) read the full rows.
TEST(GradCheck, DmfMaskedTarget) {
  torch::manual_seed(4);
  DMF dmf(DMFOptions(4, 5).user_layers({6, 3}).item_layers({5, 3}).input_norm(0.5));
  dmf->set_matrix(tiny_ratings(), 5.0f);
  to_double(*dmf);
  auto users = torch::tensor({0, 1, 2, 3, 1, 0}, torch::kLong), items = torch::tensor({0, 1, 3, 4, 0, 2}, torch::kLong);
  auto w = torch::tensor({1.0, 0.8, 1.0, 0.6, 0.0, 0.0}, torch::kDouble);
  auto y = torch::tensor({1.0, 0.8, 1.0, 0.6, 0.0, 0.0}, torch::kDouble);
  auto loss = [&] {
    return dmf_loss(
        torch::cosine_similarity(dmf->user_vectors(users, items, w), dmf->item_vectors(items, users, w), 1, 1e-8), y);
  };
  expect_gradients_match(*dmf, loss, 1e-5);
}

// Masking is exact: for every observed pair, the masked first layer (and the tower output)
// equals the one computed from a matrix without that rating, with and without the n^-α scale.
class DmfMask : public ::testing::TestWithParam<double> {};

TEST_P(DmfMask, MaskedTargetEqualsRowWithoutIt) {
  torch::manual_seed(5);
  Interactions x = tiny_ratings();
  x.push_back(1, 0, 2.0f);  // user 1: items 1, 2, 0
  DMF dmf(DMFOptions(4, 5).user_layers({6, 4, 3}).item_layers({7, 3}).input_norm(GetParam()));
  to_double(*dmf);
  dmf->set_matrix(x, 5.0f);
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<int64_t> u(x.user.begin(), x.user.end()), i(x.item.begin(), x.item.end());
  // The weights as set_matrix stores them: r/5 in float, then widened.
  auto U = torch::tensor(u), I = torch::tensor(i), W = (torch::tensor(x.rating) / 5.0f).to(torch::kDouble);
  torch::NoGradGuard g;
  auto masked_user = dmf->user_input_layer(U, I, W), masked_item = dmf->item_input_layer(I, U, W);
  auto masked_uvec = dmf->user_vectors(U, I, W), masked_ivec = dmf->item_vectors(I, U, W);
  // Weight 0 leaves the full row.
  EXPECT_TRUE(torch::allclose(dmf->user_input_layer(U, I, torch::zeros_like(W)), dmf->user_input_layer(U), 0, 1e-12));
  EXPECT_FALSE(torch::allclose(masked_user, dmf->user_input_layer(U), 0, 1e-3));
  for (int64_t k = 0; k < n; ++k) {
    std::vector<size_t> keep;
    for (size_t j = 0; j < x.size(); ++j)
      if (static_cast<int64_t>(j) != k) keep.push_back(j);
    dmf->set_matrix(x.subset(keep), 5.0f);
    auto uk = U.slice(0, k, k + 1), ik = I.slice(0, k, k + 1);
    EXPECT_TRUE(torch::allclose(masked_user[k], dmf->user_input_layer(uk)[0], 0, 1e-12)) << "pair " << k;
    EXPECT_TRUE(torch::allclose(masked_item[k], dmf->item_input_layer(ik)[0], 0, 1e-12)) << "pair " << k;
    EXPECT_TRUE(torch::allclose(masked_uvec[k], dmf->user_vectors(uk)[0], 0, 1e-12)) << "pair " << k;
    EXPECT_TRUE(torch::allclose(masked_ivec[k], dmf->item_vectors(ik)[0], 0, 1e-12)) << "pair " << k;
  }
  // And the oracle itself is the bag sum written out: bias + n^-α Σ_j r_uj/5 · E[j] over the
  // kept row. Pair 2 is (user 1, item 1); without it user 1's row holds items 2 and 0: n = 2.
  dmf->set_matrix(x, 5.0f);
  auto sum = torch::zeros_like(dmf->user_input_bias);
  for (size_t j = 0; j < x.size(); ++j)
    if (x.user[j] == 1 && x.item[j] != 1)
      sum += static_cast<double>(x.rating[j] / 5.0f) * dmf->user_input->weight[x.item[j]];
  auto want = dmf->user_input_bias + sum * std::pow(2.0, -GetParam());
  EXPECT_TRUE(torch::allclose(masked_user[2], want, 0, 1e-12));
}
INSTANTIATE_TEST_SUITE_P(InputNorm, DmfMask, ::testing::Values(0.0, 0.5));

TEST(GradCheck, CtrBinaryCrossEntropy) {
  torch::manual_seed(3);
  CtrModel ctr(CtrModelOptions(3, 4, 2).dim(2).hidden({3}));
  to_double(*ctr);
  auto u = torch::tensor({0, 1, 2, 0}, torch::kLong), i = torch::tensor({0, 1, 3, 2}, torch::kLong);
  auto s = torch::tensor({0, 1, 1, 0}, torch::kLong);
  auto y = torch::tensor({1.0, 0.0, 1.0, 0.0}, torch::kDouble);
  expect_gradients_match(*ctr, [&] { return ctr_loss(ctr->forward(u, i, s), y); });
  auto z = torch::tensor({0.3, -1.2}, torch::kDouble);
  auto lab = torch::tensor({1.0, 0.0}, torch::kDouble);
  double want = (std::log(1 + std::exp(-0.3)) + std::log(1 + std::exp(-1.2))) / 2;
  EXPECT_NEAR(ctr_loss(z, lab).item<double>(), want, 1e-12);
}

// ---- Heads against baselines on the synthetic world ---------------------------------------
const SyntheticWorld& small_world() {
  static const SyntheticWorld w =
      generate_world(SyntheticOptions().users(300).items(200).topics(4).interactions(40000).seed(7));
  return w;
}

// A repeated (user, item) pair is one matrix entry, the latest row's: masking the target then
// takes out all of it.
TEST(DmfHead, DuplicatePairsAreOneEntryKeepingTheLatest) {
  torch::manual_seed(6);
  Interactions x = tiny_ratings();  // (0, 1) rated 3
  x.timestamp.assign(x.size(), 1);
  x.has_timestamp = true;
  x.push_back(0, 1, 5.0f, 9);  // the latest: kept
  x.push_back(0, 1, 2.0f, 4);
  x.push_back(2, 3, 1.0f, 1);  // same time as the first (2, 3): the later row wins
  Interactions u = unique_pairs_latest(x);
  ASSERT_EQ(u.size(), 8u);
  for (size_t k = 0; k < u.size(); ++k) {
    if (u.user[k] == 0 && u.item[k] == 1) {
      EXPECT_EQ(u.rating[k], 5.0f);
    }
    if (u.user[k] == 2 && u.item[k] == 3) {
      EXPECT_EQ(u.rating[k], 1.0f);
    }
  }

  DMF dmf(DMFOptions(4, 5).user_layers({6, 3}).item_layers({5, 3}));
  to_double(*dmf);
  dmf->set_matrix(x, 5.0f);
  EXPECT_EQ(dmf->user_cols.numel(), 8);
  EXPECT_EQ(dmf->item_cols.numel(), 8);
  EXPECT_EQ((dmf->user_offsets[1] - dmf->user_offsets[0]).item<int64_t>(), 2);  // items 0 and 1
  {
    torch::NoGradGuard g;
    auto U = torch::tensor({int64_t(0)}), I = torch::tensor({int64_t(1)});
    auto W = torch::tensor({1.0}, torch::kDouble);  // 5 / 5, the kept row's value
    auto masked = dmf->user_input_layer(U, I, W), masked_item = dmf->item_input_layer(I, U, W);
    std::vector<size_t> keep;
    for (size_t k = 0; k < x.size(); ++k)
      if (!(x.user[k] == 0 && x.item[k] == 1)) keep.push_back(k);
    dmf->set_matrix(x.subset(keep), 5.0f);
    EXPECT_TRUE(torch::allclose(masked, dmf->user_input_layer(U), 0, 1e-12));
    EXPECT_TRUE(torch::allclose(masked_item, dmf->item_input_layer(I), 0, 1e-12));
  }

  // fit_dmf() reads the same deduplicated matrix.
  auto task = fit_dmf(x, {}, 4, 5, DmfTrainOptions().layers({8, 4}).epochs(1).negatives(1).device("cpu"));
  EXPECT_EQ(task.model->user_cols.numel(), 8);
}

// The fused score node against the same maths composed of LibTorch ops, and its gradient by
// central differences in float64 (repeated rows included, as a batch has them).
TEST(RatingHead, FusedScoreMatchesOpsAndItsGradientIsExact) {
  auto g = torch::make_generator<at::CPUGeneratorImpl>(3);
  auto P = torch::randn({5, 4}, g).to(torch::kDouble).requires_grad_(true);
  auto Q = torch::randn({5, 4}, g).to(torch::kDouble).requires_grad_(true);
  auto w = torch::randn({5}, g).to(torch::kDouble), v = torch::randn({5}, g).to(torch::kDouble);
  auto [s, l2] = mf_score(P, Q);
  auto [rs, rl2] = mf_score_reference(P, Q);
  EXPECT_TRUE(torch::allclose(s, rs, 0, 1e-12));
  EXPECT_TRUE(torch::allclose(l2, rl2, 0, 1e-12));
  ((s * w).sum() + (l2 * v).sum()).backward();
  auto f = [&](const at::Tensor& p, const at::Tensor& q) {
    auto [a, b] = mf_score_reference(p, q);
    return ((a * w).sum() + (b * v).sum()).item<double>();
  };
  torch::NoGradGuard no_grad;
  const double h = 1e-6;
  for (auto* which : {&P, &Q})
    for (int64_t i = 0; i < 5; ++i)
      for (int64_t k = 0; k < 4; ++k) {
        auto hi = P.detach().clone(), lo = P.detach().clone(), qh = Q.detach().clone(), ql = Q.detach().clone();
        auto& up = which == &P ? hi : qh;
        auto& dn = which == &P ? lo : ql;
        up[i][k] += h;
        dn[i][k] -= h;
        double num = (f(which == &P ? hi : P.detach(), which == &P ? Q.detach() : qh) -
                      f(which == &P ? lo : P.detach(), which == &P ? Q.detach() : ql)) /
                     (2 * h);
        EXPECT_NEAR(which->grad()[i][k].item<double>(), num, 1e-7)
            << (which == &P ? "P" : "Q") << "[" << i << "][" << k << "]";
      }
}

TEST(RatingHead, BeatsGlobalMeanOnSyntheticWorld) {
  OneThread one;
  // Star ratings are a quarter of the clicks: a denser world than the others use.
  const auto w = generate_world(SyntheticOptions().users(200).items(100).topics(4).interactions(60000).seed(7));
  Interactions x = explicit_ratings(w.data, w.data.interactions);  // "rating" rows only
  ASSERT_GT(x.size(), 1000u);
  Split s = random_split(x, 0.2, 0.0, 11);
  Interactions train = x.subset(s.train), test = x.subset(s.test);
  double mean = 0;
  for (float r : train.rating) mean += r;
  mean /= train.size();
  std::vector<float> base(test.size(), static_cast<float>(mean));
  double base_rmse = rmse(base, test.rating);
  for (const char* solver : {"sgd", "mcmc"}) {
    auto task =
        fit_rating(train, {}, w.data.num_users(), w.data.num_items(),
                   RatingTrainOptions().solver(solver).dim(16).epochs(30).l2(0.05).sweeps(60).device("cpu").seed(5));
    auto m = task.evaluate(test);
    EXPECT_LT(m.rmse, 0.9 * base_rmse) << solver << " MF " << m.rmse << " vs global mean " << base_rmse;
  }
}

// Most-popular scorer: training counts.
ScoreFn popularity_fn(const Interactions& train, int32_t num_items) {
  auto counts = std::make_shared<std::vector<float>>(num_items, 0.0f);
  for (int32_t i : train.item) (*counts)[i] += 1;
  return [counts](int32_t, const std::vector<int32_t>& items, std::vector<float>& out) {
    out.resize(items.size());
    for (size_t k = 0; k < items.size(); ++k) out[k] = (*counts)[items[k]];
  };
}

TEST(DmfHead, BeatsPopularityOnSyntheticWorld) {
  OneThread one;
  const auto& w = small_world();
  Interactions x = implicit_positives(w.data, w.data.interactions);  // clicks, no impressions
  Split s = leave_one_out_split(x, 3);
  Interactions train = x.subset(s.train), valid = x.subset(s.valid), test = x.subset(s.test);
  auto seen_rows = s.train;
  seen_rows.insert(seen_rows.end(), s.valid.begin(), s.valid.end());
  std::sort(seen_rows.begin(), seen_rows.end());
  auto task = fit_dmf(train, valid, w.data.num_users(), w.data.num_items(),
                      DmfTrainOptions().layers({32, 16}).epochs(3).batch_size(512).lr(3e-3).device("cpu"));
  RankingEvaluator ev(x.subset(seen_rows), w.data.num_users(), w.data.num_items(),
                      RankingOptions().ks({10}).sampled_negatives(100).seed(9));
  double hr = ev.evaluate(test, task.score_fn()).at("HR@10");
  double pop = ev.evaluate(test, popularity_fn(train, w.data.num_items())).at("HR@10");
  EXPECT_GT(hr, pop + 0.05) << "DMF HR@10 " << hr << " vs popularity " << pop;
}

TEST(CtrHead, BeatsPopularityOnSyntheticWorld) {
  OneThread one;
  const auto& w = small_world();
  Interactions x = implicit_positives(w.data, w.data.interactions);
  Split s = random_split(x, 0.2, 0.05, 13);
  Interactions train = x.subset(s.train), test = x.subset(s.test);
  const int32_t scen = std::max<int32_t>(1, w.data.scenarios.size());
  auto task = fit_ctr(train, x.subset(s.valid), w.data.num_users(), w.data.num_items(), scen,
                      CtrTrainOptions().dim(16).hidden({32}).epochs(6).negatives(2).device("cpu"));
  NegativeSampler all(x, w.data.num_users(), w.data.num_items(), NegativeSampler::Kind::Uniform, 17);
  CtrExamples ex = sample_ctr_examples(test, all, 2);
  auto m = task.evaluate(ex);
  std::vector<float> pop_score;
  std::vector<float> counts(w.data.num_items(), 0.0f);
  for (int32_t i : train.item) counts[i] += 1;
  for (int32_t i : ex.item) pop_score.push_back(counts[i]);
  double pop_auc = auc(pop_score, ex.label), pop_gauc = gauc(pop_score, ex.label, ex.user);
  EXPECT_GT(m.auc, pop_auc + 0.02) << "CTR AUC " << m.auc << " vs popularity " << pop_auc;
  EXPECT_GT(m.gauc, pop_gauc + 0.02) << "CTR GAUC " << m.gauc << " vs popularity " << pop_gauc;
  EXPECT_LT(m.logloss, std::log(2.0));
}

// predict() is const and runs on the evaluator's threads: it must never switch the module's
// mode (a data race); fit() and from_checkpoint() leave the model in eval mode.
TEST(CtrHead, PredictNeverChangesTheModuleMode) {
  auto x = tiny_ratings();
  auto ctr = fit_ctr(x, {}, 4, 5, 1, CtrTrainOptions().dim(4).hidden({4}).epochs(2).negatives(1).device("cpu"));
  EXPECT_FALSE(ctr.model->is_training());
  std::vector<int32_t> u = {0, 1, 2}, i = {4, 3, 2}, s = {0, 0, 0};
  auto p = ctr.predict(u, i, s);
  EXPECT_FALSE(ctr.model->is_training());
  ctr.model->train();
  EXPECT_THROW(ctr.predict(u, i, s), Error);
  EXPECT_TRUE(ctr.model->is_training());  // untouched
  ctr.model->eval();
  EXPECT_EQ(ctr.predict(u, i, s), p);
}

// Training negatives follow the test pool's rule: never an item the user has any row for,
// positive or not. User 0's only unseen item is 5: items 2..4 (rated, not positives) are never
// drawn, so their bias never gets a gradient.
TEST(CtrHead, TrainingNegativesAvoidEverySeenRow) {
  OneThread one;
  Interactions pos = test::interactions_of({{0, 0}, {0, 1}, {1, 0}, {1, 2}});
  Interactions seen = test::interactions_of({{0, 2}, {0, 3}, {0, 4}, {1, 1}, {1, 3}, {1, 4}});  // user 1's unseen: 5
  auto ctr = fit_ctr(pos, {}, 2, 6, 1, CtrTrainOptions().dim(4).hidden({4}).epochs(4).negatives(2).device("cpu"), seen);
  auto bias = ctr.model->factors->bias->weight.detach().view(-1);
  for (int i : {3, 4}) EXPECT_EQ(bias[i].item<float>(), 0.0f) << "item " << i << " was sampled as a negative";
  EXPECT_LT(bias[5].item<float>(), 0.0f);
  // The pool itself: rows of any kind count.
  NegativeSampler s = ctr_negative_sampler(seen, 2, 6, 1);
  for (int k = 0; k < 20; ++k)
    for (int32_t i : s.sample(0, 1)) EXPECT_NE(i, 3);
}

// ---- Fusion --------------------------------------------------------------------------------
TEST(Fusion, ZScoreAndMinMaxByHand) {
  std::vector<float> cf = {1, 2, 3}, model = {10, 0, 20};
  // z-scores (population sd): cf -> {-1.2247, 0, 1.2247}, model -> {0, -1.2247, 1.2247}.
  const double z = std::sqrt(1.5);
  auto n = normalize_scores(cf);
  EXPECT_NEAR(n[0], -z, 1e-5);
  EXPECT_NEAR(n[1], 0, 1e-6);
  auto f = fuse_scores(cf, model, 0.25);
  EXPECT_NEAR(f[0], 0.25 * -z + 0.75 * 0, 1e-5);
  EXPECT_NEAR(f[1], 0.25 * 0 + 0.75 * -z, 1e-5);
  EXPECT_NEAR(f[2], z, 1e-5);
  auto mm = fuse_scores(cf, model, 0.25, FusionNorm::MinMax);  // {0,.5,1} and {.5,0,1}
  EXPECT_NEAR(mm[0], 0.375, 1e-6);
  EXPECT_NEAR(mm[1], 0.125, 1e-6);
  EXPECT_NEAR(mm[2], 1.0, 1e-6);
  // α = 1 and 0 give each side alone; a constant list contributes nothing.
  EXPECT_EQ(fuse_scores(cf, model, 1.0), normalize_scores(cf));
  EXPECT_NEAR(fuse_scores({4, 4, 4}, model, 0.5)[2], 0.5 * z, 1e-6);
  EXPECT_THROW(fuse_scores(cf, model, 1.5), Error);
  EXPECT_THROW(fuse_scores(cf, {1, 2}, 0.5), Error);
  // Scale invariance: multiplying one scorer by 1000 does not change the fused ranking.
  std::vector<float> big = {10000, 0, 20000};
  auto fb = fuse_scores(cf, big, 0.25);
  for (size_t k = 0; k < f.size(); ++k) EXPECT_NEAR(fb[k], f[k], 1e-6);
}

TEST(Fusion, ChooseAlphaAndFusedScoreFn) {
  auto c = choose_alpha([](double a) { return -(a - 0.3) * (a - 0.3); });
  EXPECT_NEAR(c.alpha, 0.3, 1e-12);
  EXPECT_EQ(c.curve.size(), 11u);
  ScoreFn a = [](int32_t, const std::vector<int32_t>& items, std::vector<float>& out) {
    out.assign(items.begin(), items.end());
  };
  ScoreFn b = [](int32_t, const std::vector<int32_t>& items, std::vector<float>& out) {
    out.clear();
    for (int32_t i : items) out.push_back(-static_cast<float>(i));
  };
  std::vector<float> out;
  fuse_score_fns(a, b, 0.8)(0, {1, 2, 3}, out);  // 0.8·z - 0.2·z = 0.6·z
  EXPECT_NEAR(out[2], 0.6 * std::sqrt(1.5), 1e-5);
}

// ---- Checkpoints ---------------------------------------------------------------------------
IdMap ids(const std::string& prefix, int n) {
  IdMap m;
  for (int k = 0; k < n; ++k) m.intern(prefix + std::to_string(k));
  return m;
}

TEST(Checkpoint, RatingRoundTripGivesIdenticalPredictions) {
  test::TempDir dir;
  auto x = tiny_ratings();
  for (const char* solver : {"sgd", "mcmc"}) {
    auto task = fit_rating(x, {}, 4, 5,
                           RatingTrainOptions().solver(solver).dim(4).epochs(5).sweeps(10).batch_size(4).device("cpu"));
    std::string path = dir.path(std::string(solver) + ".ckpt");
    save_checkpoint(path, task.to_checkpoint(ids("u", 4), ids("i", 5)));
    auto ck = load_checkpoint(path);
    EXPECT_EQ(ck.task, "rating");
    EXPECT_EQ(ck.users.raw(3), "u3");
    EXPECT_EQ(ck.golden.size(), 8u);
    auto back = RatingFit::from_checkpoint(ck, "cpu");
    EXPECT_EQ(back.solver, solver);
    std::vector<int32_t> u = {0, 1, 2, 3, 3}, i = {0, 1, 2, 3, 4};
    EXPECT_EQ(task.predict(u, i), back.predict(u, i)) << solver;
  }
}

TEST(Checkpoint, DmfAndCtrRoundTrip) {
  test::TempDir dir;
  auto x = tiny_ratings();
  auto dmf = fit_dmf(x, {}, 4, 5, DmfTrainOptions().layers({8, 4}).epochs(2).negatives(1).device("cpu"));
  save_checkpoint(dir.path("dmf.ckpt"), dmf.to_checkpoint(ids("u", 4), ids("i", 5)));
  auto dmf2 = DmfFit::from_checkpoint(load_checkpoint(dir.path("dmf.ckpt")), "cpu");
  EXPECT_EQ(dmf.score(2, {0, 1, 2, 3, 4}), dmf2.score(2, {0, 1, 2, 3, 4}));

  auto ctr = fit_ctr(x, {}, 4, 5, 1, CtrTrainOptions().dim(4).hidden({4}).epochs(2).negatives(1).device("cpu"));
  save_checkpoint(dir.path("ctr.ckpt"), ctr.to_checkpoint(ids("u", 4), ids("i", 5), ids("s", 1)));
  auto ctr2 = CtrFit::from_checkpoint(load_checkpoint(dir.path("ctr.ckpt")), "cpu");
  std::vector<int32_t> u = {0, 1, 2}, i = {4, 3, 2}, s = {0, 0, 0};
  EXPECT_EQ(ctr.predict(u, i, s), ctr2.predict(u, i, s));
  // A CTR checkpoint from before CtrFactors names its tables user_emb, item_emb, item_bias.
  Checkpoint old = load_checkpoint(dir.path("ctr.ckpt"));
  for (auto& [name, t] : old.tensors)
    for (auto [now, before] :
         {std::pair{"factors.user.", "user_emb."}, {"factors.item.", "item_emb."}, {"factors.bias.", "item_bias."}})
      if (name.rfind(now, 0) == 0) name = before + name.substr(std::string(now).size());
  ASSERT_THROW(old.tensor("factors.user.weight"), Error);
  EXPECT_EQ(ctr.predict(u, i, s), CtrFit::from_checkpoint(old, "cpu").predict(u, i, s));
}

TEST(Checkpoint, CorruptionAndGoldenMismatchAreClearErrors) {
  test::TempDir dir;
  auto x = tiny_ratings();
  auto task = fit_rating(x, {}, 4, 5, RatingTrainOptions().solver("sgd").dim(4).epochs(2).batch_size(4).device("cpu"));
  Checkpoint ck = task.to_checkpoint(ids("u", 4), ids("i", 5));
  std::string bytes = serialize_checkpoint(ck);

  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x20;
  std::string path = dir.write("bad.ckpt", flipped);
  try {
    load_checkpoint(path);
    FAIL() << "a corrupted checkpoint loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad.ckpt"), std::string::npos) << e.what();
  }
  EXPECT_THROW(deserialize_checkpoint(bytes.substr(0, bytes.size() - 3)), Error);  // truncated
  EXPECT_THROW(deserialize_checkpoint("not a checkpoint at all"), Error);

  // A consistent file whose parameters no longer reproduce the golden scores.
  for (auto& [name, t] : ck.tensors)
    if (name == "item_table.weight") t = t + 0.5;
  try {
    RatingFit::from_checkpoint(deserialize_checkpoint(serialize_checkpoint(ck), "edited.ckpt"), "cpu");
    FAIL() << "golden mismatch not detected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("golden"), std::string::npos) << e.what();
  }
  // The wrong task is refused by name.
  EXPECT_THROW(CtrFit::from_checkpoint(deserialize_checkpoint(bytes)), Error);
}

TEST(Checkpoint, OpaqueBytesRoundTripAsUint8Tensor) {
  // A model with its own binary form (KnnModel::to_bytes) rides in a checkpoint as one u8 tensor.
  std::string blob("\x00\x01\xff knn bytes \x7f", 16);
  Checkpoint ck;
  ck.task = "opaque";
  ck.tensors.emplace_back("blob", bytes_to_tensor(blob));
  ck.tensors.emplace_back("empty", bytes_to_tensor(""));
  Checkpoint back = deserialize_checkpoint(serialize_checkpoint(ck));
  EXPECT_EQ(tensor_to_bytes(back.tensor("blob")), blob);
  EXPECT_EQ(tensor_to_bytes(back.tensor("empty")), "");
  EXPECT_THROW(tensor_to_bytes(torch::zeros({3})), Error);  // not uint8
}

TEST(Checkpoint, Fnv1aKnownValues) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);
}

}  // namespace
}  // namespace mtrec
