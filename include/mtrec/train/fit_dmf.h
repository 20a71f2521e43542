#pragma once
// Fitting the DMF head (tasks/dmf.h) on the training engine (train/trainer.h): DmfModel,
// DmfExamples (positives + negatives redrawn per epoch from the epoch's seed) and DmfObjective
// under dense Adam, with early stopping on the sampled HR@10 of the split's validation rows.
//
//   mtrec::DmfFit dmf = mtrec::fit_dmf(train, valid, ds.num_users(), ds.num_items(),
//                                       mtrec::DmfTrainOptions().epochs(20),
//                                       mtrec::RunOptions().out_dir("runs/dmf").checkpoint_every(500));
//   // after a crash: the same call with .resume("runs/dmf/select/last.ckpt") continues exactly.
//   dmf.set_inputs(train_and_valid);   // the towers read everything before the test item
#include <cstdint>

#include "mtrec/data/schema.h"
#include "mtrec/tasks/dmf.h"
#include "mtrec/train/run.h"

namespace mtrec {

/// Trains DMF on `train` (one pair per (user, item), its latest row). With a non-empty `valid`,
/// validates after every epoch (HR@10 among 100 uniform unseen items, `train` excluded, as
/// protocol D) and keeps the best epoch, stopping after `patience` epochs without gain (stage
/// "select"); with an empty one, runs `epochs` epochs (stage "train"). There is no refit: the
/// chosen model scores test items after set_inputs(train + valid).
DmfFit fit_dmf(const Interactions& train, const Interactions& valid, int32_t num_users, int32_t num_items,
               const DmfTrainOptions& options = {}, const RunOptions& run = {});

}  // namespace mtrec
