#pragma once
// Fitting the single-task heads: every gradient-trained head runs on the one Trainer
// (train/trainer.h); the closed-form fitters (Bayesian MF, KNN) share the split, evaluation,
// checkpoint and CLI path. RunOptions says where a run writes its artefacts and whether it
// continues an earlier one.
//
//   mtrec::RatingTask mf = mtrec::fit_rating(train, valid, ds.num_users(), ds.num_items(),
//                                            mtrec::RatingTrainOptions().solver("sgd"),
//                                            mtrec::RunOptions().out_dir("runs/mf").checkpoint_every(500));
//   // after a crash: the same call with .resume("runs/mf/select/last.ckpt") continues exactly.
#include <cstdint>
#include <string>

#include "mtrec/data/schema.h"
#include "mtrec/tasks/rating.h"

namespace mtrec {

struct RunOptions {
  std::string out_dir_;         // "" : no artefacts; else checkpoints (last/best), config.json,
                                // metrics.jsonl and report.html, one subfolder per stage
  int64_t checkpoint_every_ = 0;  // optimiser steps between mid-epoch checkpoints (0: per epoch)
  std::string resume_;          // a last.ckpt / best.ckpt of an earlier run with the same options
  bool progress_ = false;       // progress bar on a terminal
  std::string config_json_;     // the caller's effective configuration, stored with the run
  RunOptions& out_dir(std::string v) { out_dir_ = std::move(v); return *this; }
  RunOptions& checkpoint_every(int64_t v) { checkpoint_every_ = v; return *this; }
  RunOptions& resume(std::string v) { resume_ = std::move(v); return *this; }
  RunOptions& progress(bool v) { progress_ = v; return *this; }
  RunOptions& config_json(std::string v) { config_json_ = std::move(v); return *this; }
};

/// Biased MF for ratings. mcmc: Gibbs sampling on train + valid. sgd/adam: the trainer with
/// sparse row updates; early stopping on `valid` (RMSE), then with refit a second run on
/// train + valid for the best epoch count. With an empty `valid`, `epochs` epochs on train.
RatingTask fit_rating(const Interactions& train, const Interactions& valid, int32_t num_users, int32_t num_items,
                      const RatingTrainOptions& options = {}, const RunOptions& run = {});

}  // namespace mtrec
