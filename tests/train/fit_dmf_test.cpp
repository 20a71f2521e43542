// DMF on the training engine (train/fit_dmf.h): its example table, and exact resume.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <stdexcept>

#include "mtrec/core/check.h"
#include "mtrec/data/split.h"
#include "mtrec/data/synthetic.h"
#include "mtrec/nn/checkpoint.h"
#include "mtrec/tasks/dmf.h"
#include "mtrec/data/labels.h"
#include "mtrec/train/fit_dmf.h"
#include "mtrec/train/trainer.h"
#include "test_torch.h"
#include "test_util.h"

namespace mtrec {
namespace {

using test::OneThread;

std::vector<int64_t> to_vec(const at::Tensor& t) {
  auto c = t.to(torch::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

TEST(DmfExamples, PositivesThenNegativesRedrawnFromTheEpochSeedOnly) {
  Interactions x;
  x.has_rating = true;
  const int data[][3] = {{0, 0, 5}, {0, 1, 3}, {1, 1, 4}, {1, 2, 1}, {2, 0, 2}, {2, 3, 5}, {0, 1, 4}};
  for (const auto& d : data) x.push_back(d[0], d[1], static_cast<float>(d[2]));  // (0, 1) twice: one pair
  DmfExamples ex(x, 3, 20, 3, 5.0f, /*soft_labels=*/false);
  ASSERT_EQ(ex.pairs().size(), 6u);
  EXPECT_EQ(ex.num_examples(), 24);
  std::vector<int64_t> all(24);
  for (int64_t k = 0; k < 24; ++k) all[k] = k;

  ex.begin_epoch(0, 11);
  Batch a = ex.make_batch(all, torch::kCPU);
  auto users = to_vec(a.at("user")), items = to_vec(a.at("item"));
  for (size_t k = 0; k < ex.pairs().size(); ++k) {
    const int64_t at = static_cast<int64_t>(k) * 4;
    EXPECT_EQ(users[at], ex.pairs().user[k]);
    EXPECT_EQ(items[at], ex.pairs().item[k]);
    EXPECT_FLOAT_EQ(a.at("dmf")[at].item<float>(), 1.0f);  // label 1, not r/max
    EXPECT_FLOAT_EQ(a.at("dmf_weight")[at].item<float>(), ex.pairs().rating[k] / 5.0f);
    for (int j = 1; j <= 3; ++j) {
      EXPECT_EQ(users[at + j], ex.pairs().user[k]);
      EXPECT_EQ(a.at("dmf")[at + j].item<float>(), 0.0f);
      EXPECT_EQ(a.at("dmf_weight")[at + j].item<float>(), 0.0f);  // a negative's inputs are its full rows
      for (size_t p = 0; p < ex.pairs().size(); ++p)              // never one of the user's pairs
        if (ex.pairs().user[p] == users[at]) {
          EXPECT_NE(items[at + j], ex.pairs().item[p]);
        }
    }
  }
  // The same seed draws the same negatives whatever happened before; another seed others.
  ex.begin_epoch(5, 99);
  auto other = to_vec(ex.make_batch(all, torch::kCPU).at("item"));
  ex.begin_epoch(0, 11);
  EXPECT_EQ(to_vec(ex.make_batch(all, torch::kCPU).at("item")), items);
  EXPECT_NE(other, items);

  DmfExamples soft(x, 3, 20, 1, 5.0f, /*soft_labels=*/true);
  soft.begin_epoch(0, 1);
  EXPECT_FLOAT_EQ(soft.make_batch({0}, torch::kCPU).at("dmf")[0].item<float>(), 1.0f);   // 5 / 5
  EXPECT_FLOAT_EQ(soft.make_batch({4}, torch::kCPU).at("dmf")[0].item<float>(), 0.2f);   // pair 2, (1, 2) rated 1
  EXPECT_FLOAT_EQ(soft.make_batch({10}, torch::kCPU).at("dmf")[0].item<float>(), 0.8f);  // (0, 1): the later row, 4
}

using Crash = test::CrashAtStep;

std::vector<at::Tensor> params_of(const DmfFit& t) {
  std::vector<at::Tensor> out;
  for (const auto& p : t.model->named_parameters()) out.push_back(p.value().detach().clone());
  return out;
}

// An interrupted fit_dmf, resumed from its mid-epoch checkpoint, ends with exactly the
// parameters (and the validation history) of an uninterrupted one: the negatives of each epoch,
// the batch order, dropout's generator, Adam's moments and early stopping's best copy all resume.
TEST(FitDmf, ResumeFromAMidEpochCheckpointIsBitIdentical) {
  OneThread one;
  test::TempDir dir;
  const auto w = generate_world(SyntheticOptions().users(60).items(40).topics(3).interactions(3000).seed(3));
  Interactions x = implicit_positives(w.data, w.data.interactions);
  Split s = leave_one_out_split(x, 5);
  Interactions train = x.subset(s.train), valid = x.subset(s.valid);
  const auto o =
      DmfTrainOptions().layers({16, 8}).epochs(3).negatives(2).batch_size(128).lr(3e-3).dropout(0.2).patience(5).device(
          "cpu");
  const int64_t n = static_cast<int64_t>(unique_pairs_latest(train).size()) * 3;
  const int64_t per_epoch = (n + 127) / 128;
  ASSERT_GE(per_epoch, 5);

  DmfFit want = fit_dmf(train, valid, w.data.num_users(), w.data.num_items(), o);
  // Checkpoints at step per_epoch + 1 (epoch 2, batch 1); the crash two steps later.
  const auto run = RunOptions().out_dir(dir.path("run")).checkpoint_every(per_epoch + 1);
  EXPECT_THROW(fit_dmf(train, valid, w.data.num_users(), w.data.num_items(), o,
                       RunOptions(run).observer(std::make_shared<Crash>(per_epoch + 3))),
               std::runtime_error);
  const std::string last = dir.path("run/select/last.ckpt");
  Checkpoint ck = load_checkpoint(last);
  EXPECT_NE(ck.trainer_json.find("\"epoch\":1,"), std::string::npos) << ck.trainer_json.substr(0, 400);
  EXPECT_NE(ck.trainer_json.find("\"batch\":1,"), std::string::npos);

  DmfFit got = fit_dmf(train, valid, w.data.num_users(), w.data.num_items(), o, RunOptions(run).resume(last));
  auto a = params_of(got), b = params_of(want);
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) EXPECT_TRUE(torch::equal(a[k], b[k])) << "parameter " << k;
  EXPECT_EQ(got.epochs_run, want.epochs_run);
  EXPECT_EQ(got.best_epoch, want.best_epoch);
  EXPECT_EQ(got.best_valid_hr, want.best_valid_hr);
  EXPECT_GT(got.best_valid_hr, 0);
  std::vector<int32_t> items = {0, 1, 2, 3, 4, 5};
  EXPECT_EQ(got.score(3, items), want.score(3, items));

  // The run's best.ckpt is a model checkpoint too: it loads, verifies its golden pairs and scores
  // as the returned (best-epoch) model.
  DmfFit best = DmfFit::from_checkpoint(load_checkpoint(dir.path("run/select/best.ckpt")), "cpu");
  EXPECT_EQ(best.score(3, items), got.score(3, items));

  // Without validation rows the stage is "train": a "select" checkpoint does not continue it.
  EXPECT_THROW(fit_dmf(train, {}, w.data.num_users(), w.data.num_items(), o, RunOptions().resume(last)), Error);
}

}  // namespace
}  // namespace mtrec
