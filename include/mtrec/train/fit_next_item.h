#pragma once
// Fitting the next-item head (tasks/next_item.h) on the training engine (train/trainer.h):
// AdamW, linear warm-up then cosine decay, gradient clipping, full or sampled softmax; validation
// (full-ranking HR@10 / NDCG@10 on data.valid) every eval_every epochs and after the last one;
// the parameters of the best validation NDCG@10 are restored at the end and `patience`
// validations without improvement stop the run (EarlyStopping). RunOptions (train/run.h) add
// checkpoints, metrics.jsonl, report.html, a progress bar and resume.
//
//   mtrec::NextItemTrainResult r = mtrec::fit_next_item(model, data,
//       mtrec::NextItemTrainOptions().epochs(30).lr(5e-3).eval_every(5),
//       mtrec::RunOptions().out_dir("runs/seq").checkpoint_every(200));
//   // after a crash: the same call with .resume("runs/seq/train/last.ckpt") continues exactly.
#include <vector>

#include "mtrec/tasks/next_item.h"
#include "mtrec/train/run.h"
#include "mtrec/train/trainer.h"

namespace mtrec {

struct NextItemEpoch {
  int epoch = 0;                            // 1-based
  double loss = 0;                          // mean training loss of the epoch
  double lr = 0;                            // learning rate of the epoch's last step
  double seconds = 0;                       // wall time since training started (this process)
  bool evaluated = false;                   // validation ran after this epoch
  double valid_hr10 = 0, valid_ndcg10 = 0;  // full ranking, train items excluded
  bool best = false;                        // new best validation NDCG@10
};

struct NextItemTrainResult {
  int epochs_run = 0;
  int best_epoch = 0;  // 1-based; the parameters of this epoch are restored at the end
  double best_valid_ndcg10 = 0, best_valid_hr10 = 0;
  double seconds = 0;
  bool early_stopped = false;
  std::vector<NextItemEpoch> history;  // the epochs this process ran
};

/// Trains `model` on data.train (every position predicts the next item) on the Trainer; the
/// model is moved to the chosen device and left there in eval mode. The caller's observers
/// (run.observer(...), e.g. a time budget that returns Signal::Stop) see every event.
NextItemTrainResult fit_next_item(NextItemModel& model, const NextItemData& data,
                                  const NextItemTrainOptions& options = {}, const RunOptions& run = {});

}  // namespace mtrec
