// The unified model (model/unified.h) and its tasks on the engine (model/joint_tasks.h,
// train/fit_joint.h): masks, a float64 gradient check of the whole joint loss, the checkpoint
// round trip, cold items, the scenario classifier against the majority class.
#include "mtrec/model/unified.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "mtrec/core/check.h"
#include "mtrec/data/split.h"
#include "mtrec/data/synthetic.h"
#include "mtrec/model/joint_data.h"
#include "mtrec/model/joint_tasks.h"
#include "mtrec/model/task_map.h"
#include "mtrec/train/fit_joint.h"
#include "test_joint.h"
#include "test_torch.h"
#include "test_util.h"

namespace mtrec {
namespace {

using test::small_world;
using test::tiny_joint;

// Token rows of a toy vocabulary (ids 5..vocab-1; 0 pad, 2 cls) for n entities.
std::vector<std::vector<int64_t>> toy_rows(int64_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(n));
  for (auto& r : rows) {
    r.push_back(2);
    for (int k = 0; k < 2 + int(rng() % 4); ++k) r.push_back(5 + int64_t(rng() % uint64_t(vocab - 5)));
  }
  return rows;
}

struct Toy {
  SyntheticWorld w = small_world(30, 20, 1500);
  std::vector<std::vector<int64_t>> items, users, contexts, mlm_rows;
  int64_t vocab = 40;
  Toy() {
    items = toy_rows(w.data.num_items(), vocab, 1);
    users = toy_rows(w.data.num_users(), vocab, 2);
    contexts = toy_rows(w.data.context_text.size(), vocab, 3);
    mlm_rows = items;
  }
  UnifiedModel model(std::vector<std::string> tasks, TextMode text = TextMode::Finetune, double dropout = 0,
                     bool factor_terms = true) {
    nn::TextEncoder enc(nn::TextEncoderOptions(vocab, 8).layers(1).heads(2).max_len(8).dropout(dropout)
                            .pooling(nn::Pooling::Mean));
    return UnifiedModel(UnifiedOptions(w.data.num_users(), w.data.num_items(), w.data.scenarios.size())
                            .dim(8).tasks(std::move(tasks)).ctr_columns(3).text(text).max_history(6).experts(2)
                            .expert_hidden({8, 6}).scenario_arch(nn::ScenarioArch::Star).dropout(dropout)
                            .id_dropout(0).text_refresh_every(1000000000).factor_terms(factor_terms),
                        text == TextMode::None ? nn::TextEncoder{nullptr} : enc, items, users, 0);
  }
  Batch batch(int64_t n = 48) {
    JointSource src(w.data, w.data.interactions, JointDataOptions().max_history(6).mlm_texts(6), contexts, mlm_rows, 0,
                    tasks::MlmOptions(vocab, 4).special_ids({0, 1, 2, 3, 4}).seed(3));
    src.begin_epoch(0, 11);
    std::vector<int64_t> rows;
    for (int64_t r = 0; r < n; ++r) rows.push_back(r * 7 % src.num_examples());
    return src.make_batch(rows, torch::kCPU);
  }
};

at::Tensor total_loss(std::vector<std::unique_ptr<Task>>& tasks, const Outputs& out, const Batch& b) {
  at::Tensor l;
  for (auto& t : tasks) l = l.defined() ? l + t->loss(out, b) : t->loss(out, b);
  return l;
}

TEST(Unified, MaskedTaskContributesExactlyZeroGradient) {
  test::OneThread one;
  torch::manual_seed(1);
  Toy toy;
  UnifiedModel m = toy.model({"rating", "ctr"}, TextMode::None);
  Batch b = toy.batch();
  auto tasks = make_joint_tasks(m->options);
  // Rating with every example masked out: exactly zero gradient, and the CTR loss alone.
  b.fields["mask/rating"] = torch::zeros({b.size}, torch::kBool);
  Outputs out = m->forward(b);
  tasks[0]->loss(out, b).backward();
  for (const auto& p : m->parameters()) {
    if (p.grad().defined()) EXPECT_EQ(p.grad().abs().max().item<float>(), 0.f);
  }
  // Labels of masked-out rows do not matter.
  Batch b2 = toy.batch();
  at::Tensor mask = torch::arange(b2.size) % 2 == 0;
  b2.fields["mask/rating"] = mask;
  const double l1 = tasks[0]->loss(m->forward(b2), b2).item<double>();
  b2.fields["rating"] = torch::where(mask, b2.at("rating"), torch::full_like(b2.at("rating"), 100.f));
  EXPECT_DOUBLE_EQ(tasks[0]->loss(m->forward(b2), b2).item<double>(), l1);
}

TEST(Unified, JointLossGradientMatchesFiniteDifferencesInFloat64) {
  test::OneThread one;
  torch::manual_seed(2);
  Toy toy;
  UnifiedModel m = toy.model({"rating", "ctr", "next_item", "match", "scenario", "mlm"});
  {  // Module::to(dtype) would also convert the integer token buffers.
    torch::NoGradGuard g;
    for (auto& p : m->parameters()) p.set_data(p.to(torch::kDouble));
    for (auto& b : m->buffers())
      if (b.is_floating_point()) b.set_data(b.to(torch::kDouble));
  }
  m->train();
  Batch b = toy.batch(24);
  for (auto& [k, v] : b.fields)
    if (v.is_floating_point()) v = v.to(torch::kDouble);
  auto tasks = make_joint_tasks(m->options);
  ASSERT_EQ(tasks.size(), 6u);
  auto loss = [&] { return total_loss(tasks, m->forward(b), b); };
  m->zero_grad();
  loss().backward();
  std::mt19937_64 rng(9);
  int checked = 0;
  for (auto& item : m->named_parameters()) {
    const std::string& name = item.key();
    at::Tensor p = item.value();
    if (!p.grad().defined()) continue;  // e.g. embedding rows of no example
    at::Tensor flat = p.view({-1}), g = p.grad().view({-1});
    for (int k = 0; k < 2; ++k) {
      const int64_t j = int64_t(rng() % uint64_t(flat.numel()));
      const double eps = 1e-6, saved = flat[j].item<double>();
      torch::NoGradGuard ng;
      flat[j].fill_(saved + eps);
      const double up = loss().item<double>();
      flat[j].fill_(saved - eps);
      const double down = loss().item<double>();
      flat[j].fill_(saved);
      const double fd = (up - down) / (2 * eps), an = g[j].item<double>();
      EXPECT_NEAR(an, fd, 1e-5 + 1e-4 * std::abs(fd)) << name << "[" << j << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 60);
}

TEST(Unified, SampledNextItemSoftmaxApproximatesTheFullOne) {
  test::OneThread one;
  torch::manual_seed(4);
  Toy toy;
  UnifiedModel m = toy.model({"next_item"}, TextMode::None);
  Batch b = toy.batch();
  Outputs out = m->forward(b);
  JointObjective full("next_item", nullptr, 0), sampled("next_item", nullptr, 4000);
  const double lf = full.loss(out, b).item<double>();
  // With many uniform negatives, the sampled loss estimates the full one; the logQ correction
  // (-log(K q)) applies to the positive as to the negatives, which shifts it by log(K q) = log(K / I).
  double ls = 0;
  for (int k = 0; k < 8; ++k) ls += sampled.loss(out, b).item<double>() / 8;
  const double shift = std::log(4000.0 / toy.w.data.num_items());
  EXPECT_NEAR(ls - shift, lf, 0.05 * lf) << "full " << lf << ", sampled " << ls << ", shift " << shift;
  sampled.loss(out, b).backward();
  EXPECT_GT(m->next_proj->weight.grad().abs().sum().item<double>(), 0);
}

TEST(Unified, ItemsNeverTrainedOnAreScoredFromTextAlone) {
  test::OneThread one;
  torch::manual_seed(3);
  Toy toy;
  UnifiedModel m = toy.model({"ctr", "next_item"});
  m->set_seen({0, 1, 2}, {0});
  m->eval();
  torch::NoGradGuard g;
  at::Tensor v = m->item_vectors();
  at::Tensor text_only = m->item_text_proj(m->item_text_cache);
  EXPECT_TRUE(torch::allclose(v[5], text_only[5]));
  EXPECT_FALSE(torch::allclose(v[1], text_only[1]));
  // Two cold items with different texts get different vectors.
  EXPECT_GT((v[5] - v[6]).abs().max().item<float>(), 1e-4);
}

TEST(Unified, FactorTermsAreTheHeadsCollaborativeFilteringTermsAndLeaveUnseenIdsOut) {
  test::OneThread one;
  Toy toy;
  UnifiedModel m = toy.model({"rating", "ctr"}, TextMode::None);
  ASSERT_TRUE(m->options.factor_terms());  // the default
  ASSERT_TRUE(m->mf_user && m->ctr_user && m->ctr_item_bias);
  m->eval();
  torch::NoGradGuard g;
  // With the towers silenced the heads are their factor terms alone: the rating head's biased
  // MF and the CTR head's dot product plus item bias, computed here by hand.
  for (auto* lin : {&m->rating_out, &m->ctr_out}) (*lin)->weight.zero_(), (*lin)->bias.zero_();
  m->user_bias->weight.normal_(0, 0.1), m->item_bias->weight.normal_(0, 0.1), m->ctr_item_bias->weight.normal_(0, 0.1);
  const std::vector<int64_t> us = {0, 1, 2, 7}, is = {3, 4, 5, 9};
  const at::Tensor users = torch::tensor(us), items = torch::tensor(is), scen = torch::zeros({4}, torch::kInt64);
  auto outputs = [&] {
    const at::Tensor uv = m->user_vectors(users, torch::zeros({4, 1}, torch::kInt64));
    return m->rank_outputs(users, uv, items, scen);
  };
  auto [r, c] = outputs();
  for (size_t k = 0; k < us.size(); ++k) {
    const int64_t u = us[k], i = is[k];
    const double dot = (m->mf_user->weight[u] * m->mf_item->weight[i]).sum().item<double>();
    const double rating = m->options.global_mean() + m->user_bias->weight[u][0].item<double>() +
                          m->item_bias->weight[i][0].item<double>() + dot;
    EXPECT_NEAR(r[int64_t(k)].item<double>(), rating, 1e-5) << k;
    const double logit = (m->ctr_user->weight[u] * m->ctr_item->weight[i]).sum().item<double>() +
                         m->ctr_item_bias->weight[i][0].item<double>();
    EXPECT_NEAR(c[int64_t(k)][0].item<double>(), 1 / (1 + std::exp(-logit)), 1e-5) << k;
  }
  // An item training never saw has no ID factors: its rating is μ + b_u + b_i, its click logit 0.
  m->set_seen({3, 4, 5}, {0, 1, 2, 7});
  std::tie(r, c) = outputs();
  EXPECT_NEAR(r[3].item<double>(),
              m->options.global_mean() + m->user_bias->weight[7][0].item<double>() + m->item_bias->weight[9][0].item<double>(),
              1e-5);
  EXPECT_NEAR(c[3][0].item<double>(), 0.5, 1e-6);
  // Checkpoints written before the option load without the terms (they have no such tensors).
  EXPECT_FALSE(unified_options_from_json(R"({"num_users":2,"num_items":2,"num_scenarios":1})").factor_terms());
  UnifiedModel off = toy.model({"rating", "ctr"}, TextMode::None, 0, /*factor_terms=*/false);
  EXPECT_FALSE(off->mf_user || off->ctr_user);
}

TEST(Unified, OptionsRoundTripAndBadValuesNameThemselves) {
  UnifiedOptions o = UnifiedOptions(3, 4, 2).dim(16).tasks({"ctr", "match"}).arch(nn::ExpertArch::Ple).levels(2);
  UnifiedOptions back = unified_options_from_json(unified_options_to_json(o));
  EXPECT_EQ(unified_options_to_json(back), unified_options_to_json(o));
  try {
    UnifiedOptions(3, 4, 2).tasks({"ctr", "clicks"}).validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'clicks'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(unified_options_from_json(R"({"num_users":1,"num_items":1,"num_scenarios":1,"dims":3})"), Error);
  // Each field is declared once (core/options.h): the JSON keys are the fields' names, an enum
  // by its name, and a bad value names its key.
  const std::string j = unified_options_to_json(UnifiedOptions());
  for (const char* key : {"\"scenario_arch\":\"star\"", "\"arch\":\"mmoe\"", "\"text\":\"finetune\"", "\"max_history\":20"})
    EXPECT_NE(j.find(key), std::string::npos) << key << " in " << j;
  try {
    unified_options_from_json(R"({"num_users":1,"num_items":1,"arch":"mmoee"})");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unified model options: option 'arch' = \"mmoee\""), std::string::npos) << e.what();
  }
  // The joint trainer's options hold the model's once: one set of defaults.
  EXPECT_EQ(unified_options_to_json(JointTrainOptions().model_), j);
}

TEST(TaskMap, ParsesEntriesWithDefaultsAndRejectsUnknownHeads) {
  TaskMap m = parse_task_map("home_feed=ctr:1,next-item:0.5;*=match");
  ASSERT_EQ(m.heads("home_feed").size(), 2u);
  EXPECT_EQ(m.heads("home_feed")[1].first, "next_item");
  EXPECT_DOUBLE_EQ(m.heads("home_feed")[1].second, 0.5);
  EXPECT_EQ(m.heads("ads")[0].first, "match");
  EXPECT_EQ(parse_task_map("").heads("x", "rating")[0].first, "rating");
  EXPECT_THROW(parse_task_map("a=clicks"), Error);
  EXPECT_THROW(parse_task_map("a=ctr:x"), Error);
  EXPECT_THROW(parse_task_map("=ctr"), Error);
}

TEST(Unified, JointCheckpointRoundTripsToIdenticalScores) {
  test::OneThread one;
  SyntheticWorld w = small_world(60, 40, 3000);
  Split split = temporal_split(w.data.interactions, 0.8, 0.1);
  JointFit fit = fit_joint(w.data, split, tiny_joint(), {});
  Checkpoint ck = deserialize_checkpoint(serialize_checkpoint(fit.to_checkpoint(w.data)));
  JointBundle back = joint_from_checkpoint(ck, "cpu");
  Interactions known = w.data.interactions.subset(split.train);
  std::vector<int32_t> users = {0, 3, 17, 59};
  for (const char* head : {"ctr", "rating", "next_item", "match"}) {
    at::Tensor a = score_catalogue(fit.model, w.data, known, users, 1, head);
    at::Tensor b = score_catalogue(back.model, w.data, known, users, 1, head);
    EXPECT_TRUE(torch::equal(a, b)) << head;
  }
  EXPECT_EQ(back.ctr_columns, fit.ctr_columns);
  // A changed parameter fails the golden check on load.
  for (auto& [name, t] : ck.tensors)
    if (name == "ctr_out.weight" || name == "rating_out.weight") t = t + 0.5;
  EXPECT_THROW(joint_from_checkpoint(ck, "cpu"), Error);
}

TEST(Unified, JointTrainingKilledMidEpochResumesBitIdentically) {
  test::OneThread one;
  SyntheticWorld w = small_world(60, 40, 3000);
  Split split = temporal_split(w.data.interactions, 0.8, 0.1);
  JointTrainOptions o = tiny_joint().weighting("uncertainty");
  o.trainer_.epochs(2).batch_size(128);
  test::TempDir dir;
  JointFit whole = fit_joint(w.data, split, o, RunOptions().out_dir(dir.path("a")));
  // Crash after step 20 (of 2 x 19), with a checkpoint every 5 steps, then resume from it.
  EXPECT_THROW(fit_joint(w.data, split, o,
                         RunOptions().out_dir(dir.path("b")).checkpoint_every(5)
                             .observer(std::make_shared<test::CrashAtStep>(20))),
               std::runtime_error);
  JointFit resumed = fit_joint(w.data, split, o, RunOptions().out_dir(dir.path("b")).resume(dir.path("b/joint/last.ckpt")));
  EXPECT_EQ(state_checksum(*resumed.model), state_checksum(*whole.model));
  EXPECT_EQ(resumed.summary.state.task_weight, whole.summary.state.task_weight);
  // Other model options are refused by name.
  JointTrainOptions other = o;
  other.text_lr_scale(0.5);
  try {
    fit_joint(w.data, split, other, RunOptions().out_dir(dir.path("b")).resume(dir.path("b/joint/last.ckpt")));
    FAIL() << "resumed with other model options";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model options"), std::string::npos) << e.what();
  }
}

TEST(Unified, ScenarioClassifierBeatsTheMajorityClass) {
  test::OneThread one;
  SyntheticWorld w = small_world(150, 80, 8000);
  Split split = temporal_split(w.data.interactions, 0.8, 0.1);
  // The classifier reads the encoder, so it learns at the full rate here (the joint default
  // fine-tunes the encoder slowly for the sake of the cached catalogue vectors).
  JointTrainOptions o = tiny_joint().tasks({"scenario"}).text_lr_scale(1);
  o.trainer_.epochs(2).lr(5e-3);
  JointFit fit = fit_joint(w.data, split, o, {});
  std::vector<size_t> known = split.train;
  known.insert(known.end(), split.valid.begin(), split.valid.end());
  std::sort(known.begin(), known.end());
  JointReport r = evaluate_joint(fit.model, w.data, w.data.interactions.subset(known),
                                 w.data.interactions.subset(split.test), fit.eval_options());
  ASSERT_TRUE(r.overall.count("scenario"));
  const double acc = r.overall["scenario"]["accuracy"], maj = r.overall["scenario"]["majority_accuracy"];
  EXPECT_GT(acc, maj + 0.15) << "accuracy " << acc << ", majority " << maj;
}

}  // namespace
}  // namespace mtrec
