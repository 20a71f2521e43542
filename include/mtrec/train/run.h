#pragma once
// What every engine-trained fitter (train/fit*.h, train/pretrain.h) takes besides its head's
// options: where the run writes its artefacts and whether it continues an earlier one, and the
// standard observers that follow from that.
//   mtrec::RunOptions run = mtrec::RunOptions().out_dir("runs/mf").checkpoint_every(500);
//   mtrec::add_run_observers(trainer, run, "select", /*patience=*/5);
#include <torch/arg.h>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/data/schema.h"
#include "mtrec/nn/checkpoint.h"

namespace mtrec {

class Communicator;
class Observer;
class Trainer;

#define MTREC_RUN_OPTIONS(X)                                                                         \
  /* "" : no artefacts; else checkpoints (last/best), config.json, metrics.jsonl and report.html, */ \
  /* one subfolder per stage */                                                                      \
  X(std::string, out_dir, {})                                                                        \
  /* optimiser steps between mid-epoch checkpoints (0: per epoch) */                                 \
  X(int64_t, checkpoint_every, 0)                                                                    \
  /* a last.ckpt / best.ckpt of an earlier run with the same options */                              \
  X(std::string, resume, {})                                                                         \
  /* progress: a bar on a terminal, else a line every progress_interval() s */                       \
  X(bool, progress, false)                                                                           \
  /* the caller's effective configuration, stored with the run */                                    \
  X(std::string, config_json, {})                                                                    \
  /* the caller's own, added after the standard ones */                                              \
  X(std::vector<std::shared_ptr<Observer>>, observers, {})                                           \
  /* the data set's ids, stored in every checkpoint of the run */                                    \
  X(IdMap, users, {})                                                                                \
  X(IdMap, items, {})                                                                                \
  X(IdMap, scenarios, {})                                                                            \
  /* data-parallel ranks (train/distributed.h); null: one process */                                 \
  X(std::shared_ptr<Communicator>, communicator, {})                                                 \
  /* What serving needs (model/io.h's serving_tensors: histories, catalogue), stored in every */     \
  /* checkpoint of the run so that last.ckpt and best.ckpt serve like the final export. */           \
  X(NamedTensors, checkpoint_tensors, {})

struct RunOptions {
  using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;
  MTREC_OPTIONS(MTREC_RUN_OPTIONS)

 public:  // TORCH_ARG leaves the access private
  /// The id maps of the data set trained on, so that checkpoints written during training
  /// (last.ckpt, best.ckpt) answer in the caller's ids, as the final one does.
  RunOptions& id_maps(const Dataset& ds) {
    users_ = ds.users, items_ = ds.items, scenarios_ = ds.scenarios;
    return *this;
  }
  /// Adds an observer of the caller's (train/trainer.h) to every stage of the run.
  RunOptions& observer(std::shared_ptr<Observer> v) {
    observers_.push_back(std::move(v));
    return *this;
  }
};

/// Adds, in this order: EarlyStopping(patience) when patience > 0; a ProgressObserver when
/// run.progress; and with run.out_dir, a JsonlLogger (DIR/STAGE/metrics.jsonl), a Checkpointer
/// (DIR/STAGE/last.ckpt, best.ckpt, config.json; every run.checkpoint_every steps) and an
/// HtmlReport (DIR/STAGE/report.html); then run.observers, in the order given. Also gives the
/// trainer the run's id maps for its checkpoints and run.communicator; on ranks other than 0
/// only early stopping and run.observers are added (rank 0 writes and reports).
void add_run_observers(Trainer& trainer, const RunOptions& run, const std::string& stage, int patience);

/// The configuration a stage's trainer stores: run.config_json with "stage" set to
/// `stage_json` (a JSON object naming the stage, e.g. {"name":"select"}).
std::string stage_config(const RunOptions& run, const std::string& stage_json);

/// Completes a trainer checkpoint with what the fitted head's own checkpoint says: its task
/// name, golden pairs, configuration (stored under "model") and the tensors the trainer does
/// not store itself (a tokenizer, serving data), so that the head's from_checkpoint loads it.
void add_head_checkpoint(Checkpoint& trainer_checkpoint, const Checkpoint& head);

/// The training checkpoint `path` to resume a run of task `task` from. Throws mtrec::Error in
/// one line naming the file, what it holds and what is expected, e.g. "'m.ckpt' is a model
/// export (task rating); --resume needs a training checkpoint of task rating:
/// RUN_DIR/<stage>/last.ckpt".
Checkpoint load_training_checkpoint(const std::string& path, const std::string& task);

}  // namespace mtrec
