// The unified model (model/unified.h) and its tasks on the engine (model/joint_tasks.h,
// train/fit_joint.h): masks, a float64 gradient check of the whole joint loss, the checkpoint
// round trip, cold items, the scenario classifier against the majority class.
#include "mtrec/model/unified.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/data/labels.h"
#include "mtrec/data/split.h"
#include "mtrec/data/synthetic.h"
#include "mtrec/eval/evaluator.h"
#include "mtrec/model/joint_data.h"
#include "mtrec/model/joint_tasks.h"
#include "mtrec/model/task_map.h"
#include "mtrec/serve/recommender.h"
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

std::vector<Head> heads_of(const std::vector<std::string>& names) {
  std::vector<Head> heads;
  for (const auto& n : names) heads.push_back(parse_head(n));
  return heads;
}

struct Toy {
  SyntheticWorld w = small_world(30, 20, 1500);
  std::vector<std::vector<int64_t>> items, users, contexts, mlm_rows;
  int64_t vocab = 40;
  std::function<void(UnifiedOptions&)> tweak;  // applied to the options model() builds
  Toy() {
    items = toy_rows(w.data.num_items(), vocab, 1);
    users = toy_rows(w.data.num_users(), vocab, 2);
    contexts = toy_rows(w.data.context_text.size(), vocab, 3);
    mlm_rows = items;
  }
  UnifiedModel model(std::vector<std::string> tasks, TextMode text = TextMode::Finetune, double dropout = 0,
                     bool factor_terms = true, bool user_id_norm = false) {
    nn::TextEncoder enc(
        nn::TextEncoderOptions(vocab, 8).layers(1).heads(2).max_len(8).dropout(dropout).pooling(nn::Pooling::Mean));
    UnifiedOptions o = UnifiedOptions(w.data.num_users(), w.data.num_items(), w.data.scenarios.size())
                           .dim(8)
                           .tasks(heads_of(tasks))
                           .ctr_columns(3)
                           .text(text)
                           .max_history(6)
                           .experts(2)
                           .expert_hidden({8, 6})
                           .scenario_arch(nn::ScenarioArch::Star)
                           .dropout(dropout)
                           .id_dropout(0)
                           .text_refresh_every(1000000000)
                           .factor_terms(factor_terms)
                           .user_id_norm(user_id_norm);
    if (tweak) tweak(o);
    return UnifiedModel(o, text == TextMode::None ? nn::TextEncoder{nullptr} : enc, items, users, 0);
  }
  Batch batch(int64_t n = 48) {
    std::vector<int64_t> rows;
    for (int64_t r = 0; r < n; ++r) rows.push_back(r * 7);
    return batch_of(rows);
  }
  // The examples at `rows` (modulo the number of examples), in order.
  Batch batch_of(std::vector<int64_t> rows) {
    JointSource src(w.data, w.data.interactions, JointDataOptions().max_history(6).mlm_texts(6), contexts, mlm_rows, 0,
                    MlmOptions(vocab, 4).special_ids({0, 1, 2, 3, 4}).seed(3));
    src.begin_epoch(0, 11);
    for (auto& r : rows) r %= src.num_examples();
    return src.make_batch(rows, torch::kCPU);
  }
};

at::Tensor total_loss(std::vector<std::unique_ptr<Objective>>& tasks, const Outputs& out, const Batch& b) {
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
    if (p.grad().defined()) {
      EXPECT_EQ(test::dense_grad(p).abs().max().item<float>(), 0.f);
    }
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
  // The row tables' sparse gradients too; profiles from the cache, since the batch's fresh
  // profile encodings carry no gradient by design (finite differences would see them move).
  toy.tweak = [](UnifiedOptions& o) { o.sparse_ids(true).profile_refresh_every(1000000000); };
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
    if (!p.grad().defined()) continue;                                   // e.g. embedding rows of no example
    at::Tensor flat = p.view({-1}), g = test::dense_grad(p).view({-1});  // the ID tables' are sparse
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

// Losses and the dense gradients of every parameter after one training forward and backward.
std::pair<double, std::map<std::string, at::Tensor>> loss_and_gradients(UnifiedModel& m, const Batch& b) {
  m->train();
  auto tasks = make_joint_tasks(m->options);
  at::Tensor loss = total_loss(tasks, m->forward(b), b);
  loss.backward();
  std::map<std::string, at::Tensor> grads;
  for (const auto& p : m->named_parameters())
    if (p.value().grad().defined()) grads[p.key()] = test::dense_grad(p.value()).clone();
  return {loss.item<double>(), grads};
}

TEST(Unified, PartialTextFinetuneScoresFromTheCacheAndTrainsTheEncoderOnASample) {
  test::OneThread one;
  Toy toy;
  // Dropout 0 and a fresh cache: a fresh encoding equals the cached vector, so the partial path
  // (every item from the cache, k of them carrying a fresh encoding's gradient) has the full
  // path's loss and the same gradient for everything but the encoder.
  auto run = [&](int64_t k) {
    toy.tweak = [k](UnifiedOptions& o) { o.text_finetune_items(k); };
    torch::manual_seed(5);
    UnifiedModel m = toy.model({"rating", "ctr"});
    return loss_and_gradients(m, toy.batch(48));
  };
  const auto [full, g_full] = run(0);
  const auto [part, g_part] = run(3);
  EXPECT_NEAR(part, full, 1e-5);
  double encoder_full = 0, encoder_part = 0;
  for (const auto& [name, g] : g_full) {
    ASSERT_TRUE(g_part.count(name)) << name;
    if (name.rfind("text.", 0) == 0) {
      encoder_full += g.abs().sum().item<double>(), encoder_part += g_part.at(name).abs().sum().item<double>();
      continue;
    }
    EXPECT_TRUE(torch::allclose(g_part.at(name), g, 1e-4, 1e-6)) << name;
  }
  // The encoder learns from 3 of the batch's items: some gradient, not the full one.
  EXPECT_GT(encoder_part, 0);
  EXPECT_GT(std::abs(encoder_part - encoder_full), 1e-3 * encoder_full);
}

TEST(Unified, ScenarioRowsCapTheClassifiersTrainingRows) {
  test::OneThread one;
  torch::manual_seed(6);
  Toy toy;
  toy.tweak = [](UnifiedOptions& o) { o.scenario_rows(5); };
  UnifiedModel m = toy.model({"scenario"});
  Batch b = toy.batch(48);
  const int64_t with_context = b.mask("scenario").sum().item<int64_t>();
  ASSERT_GT(with_context, 5);
  m->train();
  Outputs out = m->forward(b);
  EXPECT_EQ(out.at("scenario/logits").size(0), 5);
  EXPECT_EQ(out.at("scenario/target").size(0), 5);
  m->eval();  // evaluation classifies every row
  EXPECT_EQ(m->forward(b).at("scenario/logits").size(0), with_context);
}

TEST(Unified, ProfileCacheRefreshesOnItsOwnCadence) {
  test::OneThread one;
  torch::manual_seed(7);
  Toy toy;
  toy.tweak = [](UnifiedOptions& o) { o.text_refresh_every(1).profile_refresh_every(3); };
  UnifiedModel m = toy.model({"rating", "mlm"});
  ASSERT_GT(m->user_text_cache.size(0), 0);
  Batch b = toy.batch(16);
  m->train();
  for (int step = 1; step <= 3; ++step) {
    {  // an encoder that moved since the last refresh
      torch::NoGradGuard g;
      for (auto& p : m->text->parameters()) p.add_(0.05);
    }
    const at::Tensor items = m->item_text_cache.clone(), users = m->user_text_cache.clone();
    m->forward(b);
    EXPECT_FALSE(torch::equal(items, m->item_text_cache)) << "step " << step;
    EXPECT_EQ(torch::equal(users, m->user_text_cache), step < 3) << "step " << step;
  }
}

TEST(Unified, BatchProfilesAreEncodedAsAFreshRefreshWouldAndLeaveTheCacheAlone) {
  test::OneThread one;
  torch::manual_seed(8);
  Toy toy;
  UnifiedModel fresh = toy.model({"rating"});  // profile_refresh_every 0: the batch's profiles per step
  toy.tweak = [](UnifiedOptions& o) { o.profile_refresh_every(1); };
  UnifiedModel cached = toy.model({"rating"});  // the cache, refreshed before every step
  {
    torch::NoGradGuard g;
    auto pc = cached->parameters(), pf = fresh->parameters();
    for (size_t i = 0; i < pc.size(); ++i) pc[i].copy_(pf[i]);
  }
  cached->refresh_text_cache();  // the catalogue table the histories read, from the copied encoder
  fresh->refresh_text_cache();
  Batch b = toy.batch(24);
  fresh->train(), cached->train();
  for (int step = 0; step < 2; ++step) {
    {  // an encoder that moved since the construction's refresh
      torch::NoGradGuard g;
      for (auto* m : {&fresh, &cached})
        for (auto& p : (*m)->text->parameters()) p.add_(0.05);
    }
    const at::Tensor before = fresh->user_text_cache.clone();
    const at::Tensor a = fresh->forward(b).at("rating"), c = cached->forward(b).at("rating");
    EXPECT_TRUE(torch::allclose(a, c, 1e-5, 1e-5)) << "step " << step << ": " << (a - c).abs().max().item<float>();
    EXPECT_TRUE(torch::equal(before, fresh->user_text_cache));
  }
}

TEST(Unified, TheSpareCoresThreadsComputeExactlyWhatOneThreadDoes) {
  test::OneThread threads;
  if (spare_cpu_cores() == 0) GTEST_SKIP() << "no spare core here: the second thread is never started";
  torch::manual_seed(10);
  Toy toy;
  const std::vector<std::string> tasks{"rating", "ctr", "next_item", "match", "scenario", "mlm"};
  UnifiedModel two = toy.model(tasks, TextMode::Finetune, /*dropout=*/0.1);
  UnifiedModel one = toy.model(tasks, TextMode::Finetune, 0.1);
  {
    torch::NoGradGuard g;
    auto p1 = one->parameters(), p2 = two->parameters();
    for (size_t i = 0; i < p1.size(); ++i) p1[i].copy_(p2[i]);
  }
  one->use_spare_core = false;
  one->refresh_text_cache(), two->refresh_text_cache();
  one->train(), two->train();
  for (int step = 0; step < 3; ++step) {
    {  // an encoder that moved since the refresh: the profiles' thread must read the current one
      torch::NoGradGuard g;
      for (auto* m : {&one, &two})
        for (auto& p : (*m)->text->parameters()) p.add_(0.01 * (step + 1));
    }
    Batch b = toy.batch(24 + step);
    // Same draws in the same order (the second thread's encoder is built without drawing).
    torch::manual_seed(100 + step);
    Outputs a = two->forward(b);
    torch::manual_seed(100 + step);
    Outputs c = one->forward(b);
    ASSERT_EQ(a.size(), c.size());
    for (const auto& [name, t] : c) EXPECT_TRUE(torch::equal(a.at(name), t)) << name << " at step " << step;
  }
}

TEST(Unified, ACacheRefreshSplitBetweenTwoThreadsEqualsOneThreadsRefresh) {
  test::OneThread threads;
  if (spare_cpu_cores() == 0) GTEST_SKIP() << "no spare core here: the refresh never splits";
  torch::manual_seed(11);
  // 300 items and 260 profiles: 3 chunks each, of which the second thread encodes one.
  nn::TextEncoder enc(nn::TextEncoderOptions(40, 8).layers(1).heads(2).max_len(8).pooling(nn::Pooling::Mean));
  UnifiedModel m(UnifiedOptions(260, 300, 1).dim(8).tasks({Head::Rating}), enc, toy_rows(300, 40, 5),
                 toy_rows(260, 40, 6), 0);
  m->refresh_text_cache();  // split
  const at::Tensor items = m->item_text_cache.clone(), users = m->user_text_cache.clone();
  m->use_spare_core = false;
  m->item_text_cache.zero_(), m->user_text_cache.zero_();
  m->refresh_text_cache();
  EXPECT_TRUE(torch::equal(items, m->item_text_cache));
  EXPECT_TRUE(torch::equal(users, m->user_text_cache));
  EXPECT_GT(items.abs().sum().item<double>(), 0);
}

TEST(Unified, HistoriesEncodedInChunksOfSimilarLengthMatchOneAtATimeInFloat64) {
  test::OneThread one;
  torch::manual_seed(12);
  Toy toy;
  UnifiedModel m = toy.model({"rating", "next_item"}, TextMode::None);
  {
    torch::NoGradGuard g;
    for (auto& p : m->parameters()) p.set_data(p.to(torch::kDouble));
  }
  m->eval();
  // 300 right-aligned histories of 0..6 items (max_history): three chunks of different widths;
  // the last row has a gap, which must stay inside its span.
  const int64_t n = 300, L = 6, I = toy.w.data.num_items();
  std::mt19937_64 rng(4);
  at::Tensor h = torch::zeros({n, L}, torch::kInt64);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = L - int64_t(rng() % (L + 1)); c < L; ++c) h[r][c] = 1 + int64_t(rng() % uint64_t(I));
  h[n - 1] = torch::tensor(std::vector<int64_t>{0, 0, 3, 0, 0, 9});
  const at::Tensor users = torch::arange(n, torch::kInt64) % toy.w.data.num_users();
  torch::NoGradGuard g;
  const at::Tensor all = m->user_vectors(users, h);
  for (int64_t r = 0; r < n; ++r) {
    const at::Tensor alone = m->user_vectors(users.narrow(0, r, 1), h.narrow(0, r, 1));
    ASSERT_TRUE(torch::allclose(all.narrow(0, r, 1), alone, 1e-12, 1e-12))
        << "row " << r << ": " << (all.narrow(0, r, 1) - alone).abs().max().item<double>();
  }
}

TEST(Unified, RowsWithOneHistoryShareTheSequenceStateWithPerRowLossAndGradientsInFloat64) {
  test::OneThread one;
  torch::manual_seed(9);
  Toy toy;
  UnifiedModel m = toy.model({"rating", "ctr", "next_item"}, TextMode::None);
  {
    torch::NoGradGuard g;
    for (auto& p : m->parameters()) p.set_data(p.to(torch::kDouble));
    for (auto& b : m->buffers())
      if (b.is_floating_point()) b.set_data(b.to(torch::kDouble));
  }
  m->train();
  // Each example three times, as a positive and its sampled negatives share user and history.
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < 10; ++r)
    for (int k = 0; k < 3; ++k) rows.push_back(r * 11 + 5);
  auto to_double = [](Batch b) {
    for (auto& [k, v] : b.fields)
      if (v.is_floating_point()) v = v.to(torch::kDouble);
    return b;
  };
  // A weighted sum of every output row: per-row terms, so the batch's total is the sum over rows.
  auto weighted = [](const Outputs& out) {
    const at::Tensor& r = out.at("rating");
    const at::Tensor w = torch::arange(1, r.size(0) + 1, r.options()) / 7;
    return (out.at("rating") * w).sum() + (out.at("ctr_logit") * w.unsqueeze(1)).sum() +
           (out.at("next_item/hidden").sum(1) * w.index_select(0, torch::arange(out.at("next_item/hidden").size(0))))
               .sum();
  };
  Batch whole = to_double(toy.batch_of(rows));
  ASSERT_GT(whole.at("mask/next_item").sum().item<int64_t>(), 0);
  m->zero_grad();
  at::Tensor whole_loss = weighted(m->forward(whole));
  whole_loss.backward();
  const double total = whole_loss.item<double>();
  std::map<std::string, at::Tensor> shared;
  for (const auto& p : m->named_parameters())
    if (p.value().grad().defined()) shared[p.key()] = test::dense_grad(p.value()).clone();
  // The slow path: one row per forward, its weight as in the batch.
  m->zero_grad();
  double per_row = 0;
  int64_t next_rows = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    Outputs out = m->forward(to_double(toy.batch_of({rows[i]})));
    const double w = double(i + 1) / 7;
    at::Tensor l = out.at("rating").sum() * w + out.at("ctr_logit").sum() * w;
    if (out.at("next_item/hidden").size(0) > 0) l = l + out.at("next_item/hidden").sum() * (double(++next_rows) / 7);
    l.backward();
    per_row += l.item<double>();
  }
  EXPECT_NEAR(total, per_row, 1e-9 * std::abs(total));
  int compared = 0;
  for (const auto& p : m->named_parameters()) {
    if (!shared.count(p.key())) continue;
    EXPECT_TRUE(torch::allclose(shared[p.key()], test::dense_grad(p.value()), 1e-9, 1e-11)) << p.key();
    ++compared;
  }
  EXPECT_GT(compared, 10);
}

TEST(Unified, TextsEncodedInChunksOfSimilarLengthMatchOneAtATime) {
  test::OneThread one;
  torch::manual_seed(10);
  Toy toy;
  UnifiedModel m = toy.model({"scenario"});
  m->eval();
  // 300 texts (more than one chunk of 128) of 1 to 8 tokens in random order of length.
  const int64_t n = 300, L = 8;
  at::Tensor ids = torch::zeros({n, L}, torch::kInt64), mask = torch::zeros({n, L}, torch::kBool);
  std::mt19937_64 rng(4);
  for (int64_t r = 0; r < n; ++r) {
    const int64_t len = 1 + int64_t(rng() % L);
    for (int64_t t = 0; t < len; ++t)
      ids[r][t] = t == 0 ? 2 : 5 + int64_t(rng() % uint64_t(toy.vocab - 5)), mask[r][t] = true;
  }
  torch::NoGradGuard g;
  const at::Tensor all = m->scenario_probs(ids, mask);
  for (int64_t r = 0; r < n; r += 7) {
    const int64_t len = mask[r].sum().item<int64_t>();
    const at::Tensor one =
        m->scenario_probs(ids.narrow(0, r, 1).narrow(1, 0, len), mask.narrow(0, r, 1).narrow(1, 0, len));
    EXPECT_TRUE(torch::allclose(all[r], one[0], 1e-5, 1e-6)) << "text " << r;
  }
}

TEST(Unified, SparseIdsGiveTheRowTablesSparseGradients) {
  test::OneThread one;
  Toy toy;
  EXPECT_FALSE(UnifiedOptions().sparse_ids());  // the default: dense AdamW (docs/unified.md)
  toy.tweak = [](UnifiedOptions& o) { o.sparse_ids(true); };
  UnifiedModel m = toy.model({"rating", "ctr"}, TextMode::None);
  UnifiedEngineModel engine(m);
  const std::vector<std::string> expected = {
      "user_emb.weight",         "rating_mf.user_table.weight", "rating_mf.item_table.weight",
      "ctr_factors.user.weight", "ctr_factors.item.weight",     "ctr_factors.bias.weight"};
  auto names = engine.sparse_parameters();
  std::sort(names.begin(), names.end());
  auto sorted = expected;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(names, sorted);
  Batch b = toy.batch(16);
  auto tasks = make_joint_tasks(m->options);
  total_loss(tasks, m->forward(b), b).backward();
  for (const auto& p : m->named_parameters())
    if (p.value().grad().defined()) {
      EXPECT_EQ(p.value().grad().is_sparse(), std::count(expected.begin(), expected.end(), p.key()) == 1) << p.key();
    }
  toy.tweak = [](UnifiedOptions& o) { o.sparse_ids(false); };
  UnifiedModel dense = toy.model({"rating", "ctr"}, TextMode::None);
  EXPECT_TRUE(UnifiedEngineModel(dense).sparse_parameters().empty());
}

TEST(Unified, SampledNextItemSoftmaxApproximatesTheFullOne) {
  test::OneThread one;
  torch::manual_seed(4);
  Toy toy;
  UnifiedModel m = toy.model({"next_item"}, TextMode::None);
  Batch b = toy.batch();
  Outputs out = m->forward(b);
  JointObjective full(Head::NextItem, nullptr, 0), sampled(Head::NextItem, nullptr, 4000);
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
  ASSERT_TRUE(m->rating_mf && m->ctr_factors);
  ASSERT_EQ(m->rating_mf->options.dim(), m->options.dim());
  m->eval();
  torch::NoGradGuard g;
  // With the towers silenced the heads are their factor terms alone: the rating head's biased
  // MF and the CTR head's dot product plus item bias, computed here by hand.
  for (auto* lin : {&m->rating_out, &m->ctr_out}) (*lin)->weight.zero_(), (*lin)->bias.zero_();
  m->rating_mf->user_bias().normal_(0, 0.1), m->rating_mf->item_bias().normal_(0, 0.1);
  m->ctr_factors->bias->weight.normal_(0, 0.1);
  const std::vector<int64_t> us = {0, 1, 2, 7}, is = {3, 4, 5, 9};
  const at::Tensor users = torch::tensor(us), items = torch::tensor(is), scen = torch::zeros({4}, torch::kInt64);
  auto outputs = [&] {
    const at::Tensor uv = m->user_vectors(users, torch::zeros({4, 1}, torch::kInt64));
    return m->rank_outputs(users, uv, items, scen);
  };
  auto [r, c] = outputs();
  const double mu = m->options.global_mean();
  auto bu = [&](int64_t u) { return m->rating_mf->user_bias()[u].item<double>(); };
  auto bi = [&](int64_t i) { return m->rating_mf->item_bias()[i].item<double>(); };
  for (size_t k = 0; k < us.size(); ++k) {
    const int64_t u = us[k], i = is[k];
    const double dot = (m->rating_mf->user_factors()[u] * m->rating_mf->item_factors()[i]).sum().item<double>();
    EXPECT_NEAR(r[int64_t(k)].item<double>(), mu + bu(u) + bi(i) + dot, 1e-5) << k;
    const double logit = (m->ctr_factors->user->weight[u] * m->ctr_factors->item->weight[i]).sum().item<double>() +
                         m->ctr_factors->bias->weight[i][0].item<double>();
    EXPECT_NEAR(c[int64_t(k)][0].item<double>(), 1 / (1 + std::exp(-logit)), 1e-5) << k;
  }
  // The rating part is the rating head's module: BiasedMF's own forward gives the same.
  at::Tensor head = m->rating_mf->forward(users, items);
  EXPECT_TRUE(torch::allclose(head, r, 1e-5, 1e-5)) << head << r;
  // An item training never saw has no ID factors: its rating is μ + b_u + b_i, its click logit 0.
  m->set_seen({3, 4, 5}, {0, 1, 2, 7});
  std::tie(r, c) = outputs();
  EXPECT_NEAR(r[3].item<double>(), mu + bu(7) + bi(9), 1e-5);
  EXPECT_NEAR(c[3][0].item<double>(), 0.5, 1e-6);
  // Checkpoints written before the option load without the terms (they have no such tensors):
  // the BiasedMF keeps its biases only.
  EXPECT_FALSE(unified_options_from_json(R"({"num_users":2,"num_items":2,"num_scenarios":1})").factor_terms());
  UnifiedModel off = toy.model({"rating", "ctr"}, TextMode::None, 0, /*factor_terms=*/false);
  EXPECT_FALSE(off->ctr_factors);
  EXPECT_EQ(off->rating_mf->options.dim(), 0);
}

TEST(Unified, JointRatingAndCtrLossesAreTheHeadsLosses) {
  test::OneThread one;
  torch::manual_seed(3);
  const at::Tensor pred = torch::randn({6}), target = torch::randn({6}), l2 = torch::rand({6});
  const at::Tensor logits = torch::randn({6, 2}), click = torch::randint(2, {6, 2}).to(torch::kFloat);
  const at::Tensor mask = torch::tensor(std::vector<uint8_t>{1, 0, 1, 1, 0, 1}).to(torch::kBool);
  Batch b;
  b.fields["rating"] = target, b.fields["click"] = click;
  b.fields["mask/rating"] = mask, b.fields["mask/ctr"] = mask;
  const Outputs out = {{"rating", pred}, {"rating_l2", l2}, {"ctr_logit", logits}};
  // Hand-computed over the masked rows: mean squared error + λ·mean(l2); BCE averaged over columns.
  double se = 0, sl2 = 0, bce = 0;
  int n = 0;
  for (int64_t k = 0; k < 6; ++k) {
    if (!mask[k].item<bool>()) continue;
    ++n;
    se += std::pow(pred[k].item<double>() - target[k].item<double>(), 2), sl2 += l2[k].item<double>();
    for (int64_t c = 0; c < 2; ++c) {
      const double p = 1 / (1 + std::exp(-logits[k][c].item<double>())), y = click[k][c].item<double>();
      bce -= 0.5 * (y * std::log(p) + (1 - y) * std::log(1 - p));
    }
  }
  EXPECT_NEAR(JointObjective(Head::Rating, nullptr, 0, 0.25).loss(out, b).item<double>(), se / n + 0.25 * sl2 / n,
              1e-5);
  EXPECT_NEAR(JointObjective(Head::Rating, nullptr).loss(out, b).item<double>(), se / n, 1e-5);
  EXPECT_NEAR(JointObjective(Head::Ctr, nullptr).loss(out, b).item<double>(), bce / n, 1e-5);
}

TEST(Unified, CheckpointsFromBeforeTheHeadsModulesLoadAndScoreAlike) {
  test::OneThread one;
  Toy toy;
  for (bool factor_terms : {true, false}) {
    UnifiedModel m = toy.model({"rating", "ctr"}, TextMode::None, 0, factor_terms);
    m->eval();
    // The state as the model before the heads' modules named it: separate bias and factor tables.
    Checkpoint old;
    const int64_t d = m->rating_mf->options.dim();
    for (const auto& [name, t] : module_state(*m)) {
      if (name == "rating_mf.user_table.weight") {
        old.tensors.emplace_back("user_bias.weight", t.narrow(1, d, 1).clone());
        if (factor_terms) old.tensors.emplace_back("mf_user.weight", t.narrow(1, 0, d).clone());
      } else if (name == "rating_mf.item_table.weight") {
        old.tensors.emplace_back("item_bias.weight", t.narrow(1, d, 1).clone());
        if (factor_terms) old.tensors.emplace_back("mf_item.weight", t.narrow(1, 0, d).clone());
      } else if (name.rfind("ctr_factors.", 0) == 0) {
        const std::string rest = name.substr(12);
        old.tensors.emplace_back(rest == "user.weight"   ? "ctr_user.weight"
                                 : rest == "item.weight" ? "ctr_item.weight"
                                                         : "ctr_item_bias.weight",
                                 t.clone());
      } else if (name != "rating_mf.global_mean") {
        old.tensors.emplace_back(name, t.clone());
      }
    }
    upgrade_unified_state(old, m->options);
    torch::manual_seed(99);  // a different start: every value must come from the old state
    UnifiedModel back = toy.model({"rating", "ctr"}, TextMode::None, 0, factor_terms);
    load_module_state(*back, old);
    back->eval();
    torch::NoGradGuard g;
    const at::Tensor users = torch::tensor(std::vector<int64_t>{0, 3, 5}),
                     items = torch::tensor(std::vector<int64_t>{1, 2, 8});
    const at::Tensor scen = torch::zeros({3}, torch::kInt64), hist = torch::zeros({3, 1}, torch::kInt64);
    auto [r1, c1] = m->rank_outputs(users, m->user_vectors(users, hist), items, scen);
    auto [r2, c2] = back->rank_outputs(users, back->user_vectors(users, hist), items, scen);
    EXPECT_TRUE(torch::equal(r1, r2)) << factor_terms;
    EXPECT_TRUE(torch::equal(c1, c2)) << factor_terms;
  }
}

TEST(Unified, OptionsRoundTripAndBadValuesNameThemselves) {
  UnifiedOptions o =
      UnifiedOptions(3, 4, 2).dim(16).tasks({Head::Ctr, Head::Match}).arch(nn::ExpertArch::Ple).levels(2);
  UnifiedOptions back = unified_options_from_json(unified_options_to_json(o));
  EXPECT_EQ(unified_options_to_json(back), unified_options_to_json(o));
  // One name per head: the CLI's hyphen is read as the one spelling; an unknown name lists the heads.
  EXPECT_EQ(parse_head("next-item"), Head::NextItem);
  EXPECT_STREQ(head_name(parse_head("next_item")), "next_item");
  for (Head h : all_heads()) EXPECT_EQ(parse_head(head_name(h)), h);
  // Anywhere a head goes into JSON (the CLI's --json "tasks"), it is its name, not the enum's number.
  const nlohmann::json heads = std::vector<Head>{Head::Rating, Head::NextItem};
  EXPECT_EQ(heads.dump(), R"(["rating","next_item"])");
  EXPECT_EQ(heads.get<std::vector<Head>>(), (std::vector<Head>{Head::Rating, Head::NextItem}));
  try {
    unified_options_from_json(R"({"num_users":1,"num_items":1,"num_scenarios":1,"tasks":["ctr","clicks"]})");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'clicks'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("rating|ctr|next_item|match|scenario|mlm"), std::string::npos) << e.what();
  }
  EXPECT_THROW(unified_options_from_json(R"({"num_users":1,"num_items":1,"num_scenarios":1,"dims":3})"), Error);
  // Each field is declared once (core/options.h): the JSON keys are the fields' names, an enum
  // by its name, and a bad value names its key.
  const std::string j = unified_options_to_json(UnifiedOptions());
  for (const char* key :
       {"\"scenario_arch\":\"star\"", "\"arch\":\"mmoe\"", "\"text\":\"finetune\"", "\"max_history\":20"})
    EXPECT_NE(j.find(key), std::string::npos) << key << " in " << j;
  try {
    unified_options_from_json(R"({"num_users":1,"num_items":1,"arch":"mmoee"})");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unified model options: option 'arch' = \"mmoee\""), std::string::npos)
        << e.what();
  }
  // The joint trainer's options hold the model's once: one set of defaults.
  EXPECT_EQ(unified_options_to_json(JointTrainOptions().model()), j);
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

// The catalogue scorer (what evaluation and serving rank by) against the slow path: each
// (user, item, scenario) pair through rank_outputs on its own, and the retrieval heads' scores.
TEST(Unified, CatalogueScoresAreEachPairsScore) {
  test::OneThread one;
  torch::manual_seed(6);
  Toy toy;
  UnifiedModel m = toy.model({"rating", "ctr", "next_item", "match"}, TextMode::None);
  m->eval();
  torch::NoGradGuard g;
  const at::Tensor users = torch::tensor({0, 7, -1}, torch::kInt64), scen = torch::tensor({0, 2, 1}, torch::kInt64);
  const at::Tensor uv = m->user_vectors(users, torch::zeros({3, 6}, torch::kInt64));
  const int64_t I = toy.w.data.num_items();
  const at::Tensor rating = m->catalogue_scores(Head::Rating, users, uv, scen);
  const at::Tensor ctr = m->catalogue_scores(Head::Ctr, users, uv, scen);
  ASSERT_EQ(rating.sizes(), (std::vector<int64_t>{3, I}));
  for (int64_t u = 0; u < 3; ++u)
    for (int64_t i : {int64_t(0), int64_t(5), I - 1}) {
      auto [r, p] =
          m->rank_outputs(users.slice(0, u, u + 1), uv.slice(0, u, u + 1), torch::tensor({i}), scen.slice(0, u, u + 1));
      EXPECT_NEAR(rating[u][i].item<double>(), r[0].item<double>(), 1e-5) << u << " " << i;
      EXPECT_NEAR(ctr[u][i].item<double>(), p[0][0].item<double>(), 1e-6) << u << " " << i;
    }
  EXPECT_TRUE(torch::allclose(m->catalogue_scores(Head::NextItem, users, uv, scen), m->next_item_scores(uv)));
  EXPECT_TRUE(torch::allclose(m->catalogue_scores(Head::Match, users, uv, scen), m->match_scores(uv)));
  EXPECT_THROW(m->catalogue_scores(Head::Scenario, users, uv, scen), Error);
  UnifiedModel ctr_only = toy.model({"ctr"}, TextMode::None);
  EXPECT_THROW(ctr_only->catalogue_scores(Head::Rating, users, uv, scen), Error);
}

// user_id_norm: the ID part of a known user's vector (its vector minus the same history's
// without an ID) has the LayerNorm's norm sqrt(d) instead of the embedding's ~0.05 sqrt(d).
TEST(Unified, UserIdNormGivesTheIdTheSequenceStatesScale) {
  test::OneThread one;
  torch::NoGradGuard g;
  Toy toy;
  for (bool on : {false, true}) {
    torch::manual_seed(8);
    UnifiedModel m = toy.model({"next_item"}, TextMode::None, 0, true, on);
    m->eval();
    const at::Tensor hist = torch::zeros({3, 6}, torch::kInt64);
    const at::Tensor with_id = m->user_vectors(torch::tensor({0, 4, 9}, torch::kInt64), hist);
    const at::Tensor no_id = m->user_vectors(torch::tensor({-1, -1, -1}, torch::kInt64), hist);
    const at::Tensor id_norm = (with_id - no_id).norm(2, 1);
    const std::vector<int64_t> ids = {0, 4, 9};
    for (int64_t r = 0; r < 3; ++r) {
      if (on) {
        // LayerNorm (gamma 1, beta 0, eps 1e-5) of the row e: norm sqrt(d · var(e) / (var(e) + eps)).
        const double v = m->user_emb->weight[ids[size_t(r)]].var(/*unbiased=*/false).item<double>();
        EXPECT_NEAR(id_norm[r].item<double>(), std::sqrt(8.0 * v / (v + 1e-5)), 1e-4) << r;
      } else {
        EXPECT_LT(id_norm[r].item<double>(), 0.5) << r;
      }
    }
  }
  // Checkpoints written before the option load without it.
  EXPECT_FALSE(unified_options_from_json(R"({"num_users":1,"num_items":1,"num_scenarios":1})").user_id_norm());
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
  for (Head head : {Head::Ctr, Head::Rating, Head::NextItem, Head::Match}) {
    at::Tensor a = score_catalogue(fit.model, w.data, known, users, 1, head);
    at::Tensor b = score_catalogue(back.model, w.data, known, users, 1, head);
    EXPECT_TRUE(torch::equal(a, b)) << head_name(head);
  }
  EXPECT_EQ(back.ctr_columns, fit.ctr_columns);
  // A changed parameter fails the golden check on load.
  for (auto& [name, t] : ck.tensors)
    if (name == "ctr_out.weight" || name == "rating_out.weight") t = t + 0.5;
  EXPECT_THROW(joint_from_checkpoint(ck, "cpu"), Error);
}

/// Records, at every validation, the metrics and the model's parameters and buffers.
struct ValidationRecorder : Observer {
  std::vector<std::map<std::string, Metrics>> valid;
  std::vector<std::map<std::string, at::Tensor>> states;
  Signal on_validation(Trainer& t) override {
    valid.push_back(t.state().valid);
    std::map<std::string, at::Tensor> st;
    for (auto& [n, x] : module_state(t.model().module())) st[n] = x.clone();
    states.push_back(std::move(st));
    return Signal::Continue;
  }
};

TEST(Unified, PerTaskSelectionScoresEachTaskWithItsBestValidationsParameters) {
  test::OneThread one;
  SyntheticWorld w = small_world(60, 40, 3000);
  Split split = temporal_split(w.data.interactions, 0.8, 0.1);
  JointTrainOptions o = tiny_joint().select_per_task(true);
  o.trainer().epochs(4);
  auto rec = std::make_shared<ValidationRecorder>();
  JointFit fit = fit_joint(w.data, split, o, RunOptions().observer(rec));
  ASSERT_EQ(rec->valid.size(), 4u);
  std::set<int> kept;
  for (const auto& [name, maximize] : joint_metrics(fit.model->options)) {
    const std::string task = name.substr(0, name.find('/')), metric = name.substr(name.find('/') + 1);
    int best = -1;
    double value = 0;
    for (int e = 0; e < 4; ++e) {
      ASSERT_TRUE(rec->valid[size_t(e)].count(task) && rec->valid[size_t(e)].at(task).count(metric)) << name;
      const double x = rec->valid[size_t(e)].at(task).at(metric);
      if (best < 0 || (maximize ? x > value : x < value)) best = e, value = x;
    }
    ASSERT_TRUE(fit.selected.count(task)) << task;
    EXPECT_EQ(fit.selected.at(task).epoch, best) << task;
    EXPECT_DOUBLE_EQ(fit.selected.at(task).value, value) << task;
    kept.insert(best);
    // The model that scores the task holds that validation's parameters exactly (the text
    // caches, rebuilt from them when scoring, aside).
    UnifiedModel m = fit.model_for(task);
    for (const auto& [n, x] : module_state(*m)) {
      if (n.find("text_cache") != std::string::npos) continue;
      EXPECT_TRUE(rec->states[size_t(best)].count(n) && torch::equal(x, rec->states[size_t(best)].at(n)))
          << task << " " << n;
    }
  }
  ASSERT_GE(kept.size(), 2u) << "the tasks should peak at different epochs here, or this tests nothing";
  // The report takes each task from its own model; a checkpoint keeps the selection.
  Interactions known = w.data.interactions.subset(known_rows(split)), test = w.data.interactions.subset(split.test);
  JointReport r = fit.evaluate(w.data, known, test);
  JointBundle back =
      joint_from_checkpoint(deserialize_checkpoint(serialize_checkpoint(fit.to_checkpoint(w.data))), "cpu");
  back.tokenize_contexts(w.data);
  JointReport rb = back.evaluate(w.data, known, test);
  for (const auto& [task, sel] : fit.selected) {
    UnifiedModel m = fit.model_for(task);
    const JointReport alone = evaluate_joint(m, w.data, known, test, fit.eval_options());
    ASSERT_TRUE(r.overall.count(task) && rb.overall.count(task) && alone.overall.count(task)) << task;
    EXPECT_EQ(r.overall.at(task), alone.overall.at(task)) << task;
    EXPECT_EQ(rb.overall.at(task), alone.overall.at(task)) << task;
    ASSERT_TRUE(back.selected.count(task)) << task;
    EXPECT_EQ(back.selected.at(task).epoch, sel.epoch) << task;
  }
  // Serving answers from the state the task map's main head kept.
  for (const char* map : {"*=next_item", "*=ctr", "*=rating:0.5,match:2"}) {
    const std::string main = std::string(map) == "*=next_item" ? "next_item"
                             : std::string(map) == "*=ctr"     ? "ctr"
                                                               : "match";
    Recommender rec(fit, w.data, known, RecommenderOptions().task_map(map).device("cpu"));
    EXPECT_EQ(rec.info().version, fmt::format("{:016x}", state_checksum(*fit.model_for(main)))) << map;
  }
}

TEST(Unified, JointTrainingKilledMidEpochResumesBitIdentically) {
  test::OneThread one;
  SyntheticWorld w = small_world(60, 40, 3000);
  Split split = temporal_split(w.data.interactions, 0.8, 0.1);
  JointTrainOptions o = tiny_joint().weighting("uncertainty").select_per_task(true);
  o.trainer().epochs(2).batch_size(128);
  test::TempDir dir;
  JointFit whole = fit_joint(w.data, split, o, RunOptions().out_dir(dir.path("a")));
  // Crash after step 20 (of 2 x 19), with a checkpoint every 5 steps, then resume from it.
  EXPECT_THROW(
      fit_joint(
          w.data, split, o,
          RunOptions().out_dir(dir.path("b")).checkpoint_every(5).observer(std::make_shared<test::CrashAtStep>(20))),
      std::runtime_error);
  JointFit resumed =
      fit_joint(w.data, split, o, RunOptions().out_dir(dir.path("b")).resume(dir.path("b/joint/last.ckpt")));
  EXPECT_EQ(state_checksum(*resumed.model), state_checksum(*whole.model));
  EXPECT_EQ(resumed.summary.state.task_weight, whole.summary.state.task_weight);
  ASSERT_EQ(resumed.selected.size(), whole.selected.size());
  for (const auto& [task, sel] : whole.selected) {  // the per-task selection resumes too
    EXPECT_EQ(resumed.selected.at(task).epoch, sel.epoch) << task;
    EXPECT_EQ(state_checksum(*resumed.model_for(task)), state_checksum(*whole.model_for(task))) << task;
  }
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

TEST(JointEval, ColdRankingTakesEachUsersFirstColdPositiveAgainstTheColdItemsOnly) {
  SyntheticWorld w = small_world(60, 40, 3000);
  Split split = temporal_split(w.data.interactions, 0.8, 0.1);
  const Interactions known = w.data.interactions.subset(known_rows(split)),
                     test = w.data.interactions.subset(split.test);
  std::vector<char> cold(40, 1);
  for (int32_t i : w.data.interactions.subset(split.train).item) cold[size_t(i)] = 0;
  const Interactions pos = implicit_positives(w.data, test, 0);
  // By hand: each user's earliest positive on a cold item.
  std::map<int32_t, std::pair<int64_t, int32_t>> first;  // user -> (time, item)
  for (size_t j = 0; j < pos.size(); ++j)
    if (cold[size_t(pos.item[j])] && (!first.count(pos.user[j]) || pos.timestamp[j] < first[pos.user[j]].first))
      first[pos.user[j]] = {pos.timestamp[j], pos.item[j]};
  const Interactions tg = cold_targets(w.data, test, cold);
  ASSERT_EQ(tg.size(), first.size());
  ASSERT_GE(tg.size(), 5u) << "too few cold targets to test anything";
  for (size_t j = 0; j < tg.size(); ++j) EXPECT_EQ(tg.item[j], first.at(tg.user[j]).second) << "user " << tg.user[j];
  // Score -item: a target's rank is the number of cold candidates with a smaller id that the
  // user has not engaged with before (warm items never count).
  ScoreFn by_id = [](int32_t, const std::vector<int32_t>& items, std::vector<float>& out) {
    out.resize(items.size());
    for (size_t j = 0; j < items.size(); ++j) out[j] = -float(items[j]);
  };
  std::vector<float> out;
  within_items(cold, by_id)(0, {0, 1, 2, 3}, out);
  for (int32_t i = 0; i < 4; ++i)
    EXPECT_EQ(out[size_t(i)], cold[size_t(i)] ? -float(i) : -std::numeric_limits<float>::infinity());
  const Interactions engaged = implicit_positives(w.data, known, 0);
  double hits = 0;
  for (size_t j = 0; j < tg.size(); ++j) {
    std::set<int32_t> before;
    for (size_t k = 0; k < engaged.size(); ++k)
      if (engaged.user[k] == tg.user[j]) before.insert(engaged.item[k]);
    int rank = 0;
    for (int32_t i = 0; i < tg.item[j]; ++i) rank += cold[size_t(i)] && !before.count(i);
    hits += rank < 10;
  }
  RankingEvaluator ev(engaged, 60, 40, RankingOptions().ks({10}));
  EXPECT_NEAR(ev.evaluate(tg, within_items(cold, by_id)).at("HR@10"), hits / double(tg.size()), 1e-12);
}

TEST(Unified, ScenarioClassifierBeatsTheMajorityClass) {
  test::OneThread one;
  SyntheticWorld w = small_world(150, 80, 8000);
  Split split = temporal_split(w.data.interactions, 0.8, 0.1);
  // The classifier reads the encoder, so it learns at the full rate here (the joint default
  // fine-tunes the encoder slowly for the sake of the cached catalogue vectors).
  JointTrainOptions o = tiny_joint().tasks({Head::Scenario}).text_lr_scale(1);
  o.trainer().epochs(2).lr(5e-3);
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
