#pragma once
// Fitting the single-task heads: every gradient-trained head runs on the one Trainer
// (train/trainer.h); the closed-form fitters (Bayesian MF, KNN) share the split, evaluation,
// checkpoint and CLI path. RunOptions (train/run.h) says where a run writes its artefacts and
// whether it continues an earlier one.
//
//   mtrec::RatingFit mf = mtrec::fit_rating(train, valid, ds.num_users(), ds.num_items(),
//                                            mtrec::RatingTrainOptions().solver("sgd"),
//                                            mtrec::RunOptions().out_dir("runs/mf").checkpoint_every(500));
//   // after a crash: the same call with .resume("runs/mf/select/last.ckpt") continues exactly.
#include <cstdint>
#include <string>

#include "mtrec/data/schema.h"
#include "mtrec/tasks/ctr.h"
#include "mtrec/tasks/rating.h"
#include "mtrec/train/run.h"

namespace mtrec {

/// Biased MF for ratings. mcmc: Gibbs sampling on train + valid. sgd/adam: the trainer with
/// sparse row updates; early stopping on `valid` (RMSE), then with refit a second run on
/// train + valid for the best epoch count. With an empty `valid`, `epochs` epochs on train.
RatingFit fit_rating(const Interactions& train, const Interactions& valid, int32_t num_users, int32_t num_items,
                     const RatingTrainOptions& options = {}, const RunOptions& run = {});

/// CTR (MLP + dot) on the trainer: Adam on every parameter, negatives resampled each epoch;
/// early stopping on validation AUC over `valid_positives` with the same ratio of negatives
/// (drawn once). Negatives never hit an item the user has a row for in the positives, the
/// validation positives or `seen` (pass every training row: the rule test negatives follow).
CtrFit fit_ctr(const Interactions& positives, const Interactions& valid_positives, int32_t num_users, int32_t num_items,
               int32_t num_scenarios, const CtrTrainOptions& options = {}, const Interactions& seen = {},
               const RunOptions& run = {});

}  // namespace mtrec
