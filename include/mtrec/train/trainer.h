#pragma once
// The training engine: one loop for every task and every set of tasks.
//
//   mtrec::RatingModel model(mtrec::BiasedMF(mtrec::BiasedMFOptions(users, items).dim(32).global_mean(3.5)));
//   mtrec::InteractionSource source(train);                    // data/batcher.h
//   mtrec::RatingObjective rating(/*l2=*/0.05, valid, 1, 5);   // tasks/rating.h
//   mtrec::Trainer trainer(model, source, {{&rating, 1.0}},
//                          mtrec::TrainerOptions().epochs(20).lr(0.01).monitor("rating/rmse", /*maximize=*/false));
//   trainer.add_observer(std::make_shared<mtrec::EarlyStopping>(/*patience=*/3));  // train/observers.h
//   trainer.add_observer(std::make_shared<mtrec::Checkpointer>("runs/mf"));         // last.ckpt, best.ckpt
//   mtrec::TrainSummary s = trainer.train();   // or first trainer.resume(mtrec::load_checkpoint("runs/mf/last.ckpt"))
// (tests/train/trainer_test.cpp runs this example as written.)
//
// Each step: the batcher's next batch -> model.forward -> the joint loss (train/weighting.h: static
// L = Σ w_t·task_t.loss, or learned weights: uncertainty, GradNorm) -> NaN/Inf guard ->
// backward (accumulated over `accumulate` batches) -> clip -> dense optimiser (AdamW/Adam/SGD) and
// sparse row optimiser (embedding tables) at the scheduled learning rate -> observers. After each
// epoch every task validates; the monitored metric decides improvement, and observers (early
// stopping, checkpointer, logger, report) act on it. Observers change the loop only by returning
// Signal::Stop. The trainer owns the random state: it seeds LibTorch's generator once from its
// seed when a run starts (not when it resumes) and saves the generator state in checkpoints with
// the optimiser state, the loss weighting's learned state, the schedule position, the data
// position and observer state, so that a resumed run is bit-identical to an uninterrupted one
// on the CPU.
#include <torch/arg.h>
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/data/batcher.h"
#include "mtrec/nn/checkpoint.h"
#include "mtrec/tasks/task.h"
#include "mtrec/train/optim.h"
#include "mtrec/train/weighting.h"

namespace mtrec {

#define MTREC_TRAINER_OPTIONS(X)                                            \
  X(int, epochs, 10)                                                        \
  X(int64_t, batch_size, 256)                                               \
  /* batches per optimiser step (gradient accumulation) */                  \
  X(int, accumulate, 1)                                                     \
  /* dense parameters: adamw | adam | sgd */                                \
  X(std::string, optimizer, "adamw")                                        \
  X(double, lr, 1e-3)                                                       \
  /* dense parameters (decoupled for adamw) */                              \
  X(double, weight_decay, 0)                                                \
  /* sgd */                                                                 \
  X(double, momentum, 0)                                                    \
  /* embedding tables: sgd | adagrad | adam */                              \
  X(std::string, sparse_optimizer, "adagrad")                               \
  /* 0: lr */                                                               \
  X(double, sparse_lr, 0)                                                   \
  /* constant | cosine | linear | exponential */                            \
  X(std::string, schedule, "constant")                                      \
  X(int64_t, warmup_steps, 0)                                               \
  /* cosine / linear end point, as a fraction of lr */                      \
  X(double, min_lr_ratio, 0)                                                \
  /* exponential: lr·decay^epoch */                                        \
  X(double, lr_decay, 1)                                                    \
  /* 0: no clipping */                                                      \
  X(double, clip_norm, 0)                                                   \
  /* consecutive non-finite steps before training stops */                  \
  X(int, max_bad_steps, 10)                                                 \
  /* "task/metric" deciding improvement ("" : first task's first metric) */ \
  X(std::string, monitor, "")                                               \
  /* whether a larger monitored metric is better */                         \
  X(bool, maximize, false)                                                  \
  /* epochs between validations, and after the last (0: never) */           \
  X(int, validate_every, 1)                                                 \
  /* bf16 autocast on CUDA (ignored on the CPU) */                          \
  X(bool, bf16, false)                                                      \
  /* batches assembled ahead by the batcher's thread */                     \
  X(int, prefetch, 4)                                                       \
  X(uint64_t, seed, 42)                                                     \
  X(std::string, device, "auto")                                            \
  /* joint loss: static | uncertainty | gradnorm (train/weighting.h) */     \
  X(std::string, weighting, "static")                                       \
  /* GradNorm's α */                                                       \
  X(double, gradnorm_alpha, 1.5)                                            \
  /* Adam learning rate of GradNorm's weights */                            \
  X(double, gradnorm_lr, 0.025)                                             \
  /* keep their static weight under every rule */                           \
  X(std::vector<std::string>, fixed_weight_tasks, std::vector<std::string>{"mlm"})

struct TrainerOptions {
  MTREC_OPTIONS(MTREC_TRAINER_OPTIONS)

 public:  // TORCH_ARG leaves the access private
  TrainerOptions& monitor(std::string v, bool maximize) {
    monitor_ = std::move(v);
    maximize_ = maximize;
    return *this;
  }
  /// Every option as a JSON object (text), for checkpoints and the run's config file.
  std::string to_json() const;
};

/// Where a run is; what observers read.
struct TrainState {
  int epoch = 0;      // 0-based epoch in progress (== epochs when done)
  int64_t batch = 0;  // batches of this epoch already consumed
  int64_t batches_per_epoch = 0;
  int64_t step = 0;  // optimiser steps taken
  int64_t total_steps = 0;
  int64_t examples = 0;                           // examples consumed
  double loss = 0;                                // last batch: the joint loss (Σ w_t·L_t; uncertainty adds Σ ½s_t)
  std::map<std::string, double> task_loss;        // last batch, per task (unweighted)
  std::map<std::string, double> task_weight;      // last batch, per task: the multiplier of L_t in the joint loss
  double epoch_loss = 0;                          // running mean over this epoch's finite batches
  std::map<std::string, double> epoch_task_loss;  // likewise, per task
  int64_t epoch_batches = 0;
  double finished_epoch_loss = 0;  // the last completed epoch's means (what after_epoch reports)
  std::map<std::string, double> finished_epoch_task_loss;
  double lr = 0;
  int64_t skipped_steps = 0;  // non-finite steps skipped in total
  int bad_in_row = 0;
  double last_finite_loss = 0;
  std::map<std::string, Metrics> valid;  // last validation, per task
  double monitored = 0, best = 0;        // monitored metric, last and best
  bool has_best = false, improved = false;
  int best_epoch = -1;  // 0-based epoch of the best validation
  int stalls = 0;       // validations in a row without improvement
  double seconds = 0;   // wall time of this process's training
  // Data parallel (not in checkpoints): this process's gradient exchange so far.
  double comm_seconds = 0;  // blocked waiting for gradient collectives (not hidden by backward)
  int64_t comm_bytes = 0;   // payload bytes of its gradient collectives
  int64_t comm_steps = 0;   // optimiser steps that exchanged gradients
  bool stopped_early = false;
  std::string stop_reason;
};

enum class Signal { Continue, Stop };
enum class Goal { Minimize, Maximize };

class Trainer;
class Communicator;
class DataParallel;

/// Hooks called by the trainer, in the order observers were added. Only the return value of
/// after_batch / after_epoch / on_validation can change the loop (Signal::Stop ends the run).
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_train_begin(Trainer& trainer) {}
  virtual Signal after_batch(Trainer& trainer) { return Signal::Continue; }
  /// After a validation; state().improved says whether the monitored metric improved.
  virtual Signal on_validation(Trainer& trainer) { return Signal::Continue; }
  /// After a validation without improvement (state().stalls in a row).
  virtual Signal on_stall(Trainer& trainer) { return Signal::Continue; }
  virtual Signal after_epoch(Trainer& trainer) { return Signal::Continue; }
  virtual void on_train_end(Trainer& trainer) {}
  /// Observer state for exact resume: tensors added to the checkpoint under
  /// "trainer/observer/<name>/", read back by load_state.
  virtual void save_state(Checkpoint& checkpoint) const {}
  virtual void load_state(const Checkpoint& checkpoint) {}
};

struct TrainSummary {
  TrainState state;
  std::vector<std::map<std::string, Metrics>> validations;  // per validation, per task
};

class Trainer {
 public:
  /// `tasks`: (task, weight) pairs; the loss is Σ weight·task.loss under static weighting, and
  /// the weights are the starting point (GradNorm) or the prior factor (uncertainty) of the
  /// learned rules (options.weighting). Model, source and tasks must outlive the trainer.
  Trainer(Model& model, BatchSource& source, std::vector<std::pair<Objective*, double>> tasks,
          TrainerOptions options = {});
  ~Trainer();
  void add_observer(std::shared_ptr<Observer> observer);
  /// Data-parallel training over `comm`'s ranks (train/distributed.h); call before resume() and
  /// train(). options.batch_size is then the global batch: each rank gets its share of every
  /// batch, the loss of each is scaled by its share and gradients are summed, so W ranks take
  /// the steps one process takes with the same batch size (exactly so when every example's loss
  /// is independent of the others in its batch and every task's mask is full; a task's mean
  /// over a rank's masked examples otherwise weighs as that rank's share of the batch). Rank 0
  /// broadcasts the initial parameters; every rank validates (tasks may shard validation); a
  /// run resumes on any number of ranks. Refuses GradNorm weighting (its norms are per batch).
  void set_communicator(std::shared_ptr<Communicator> comm);
  const std::shared_ptr<Communicator>& communicator() const { return comm_; }
  /// 0 without a communicator.
  int rank() const;
  /// Restores model, optimisers, schedule, RNG, data position and observer state from a
  /// checkpoint written by this trainer's checkpoint(); train() then continues that run.
  /// Throws mtrec::Error when the checkpoint holds no trainer state or another configuration.
  void resume(const Checkpoint& checkpoint);
  /// Runs until the epochs are done or an observer stops it; throws mtrec::Error after
  /// max_bad_steps non-finite steps in a row, naming the task, the step and the last finite loss.
  TrainSummary train();
  /// The whole training state (model tensors, "trainer/..." tensors, trainer_json). The
  /// decorator set below adds the task's id maps, config and golden pairs.
  Checkpoint checkpoint() const;
  void set_checkpoint_decorator(std::function<void(Checkpoint&)> decorate) { decorate_ = std::move(decorate); }
  /// The data set's id maps, stored in every checkpoint.
  void set_id_maps(IdMap users, IdMap items, IdMap scenarios) {
    users_ = std::move(users), items_ = std::move(items), scenarios_ = std::move(scenarios);
  }
  /// Tensors stored unchanged in every checkpoint (what serving needs: model/io.h's
  /// serving_tensors), so that last.ckpt and best.ckpt serve as the final export does.
  void set_checkpoint_tensors(std::vector<std::pair<std::string, at::Tensor>> tensors) {
    extra_tensors_ = std::move(tensors);
  }
  /// The caller's effective configuration (JSON object text), stored in every checkpoint.
  void set_config(std::string config_json) { config_json_ = std::move(config_json); }
  const std::string& config_json() const { return config_json_; }

  const TrainState& state() const { return state_; }
  const TrainerOptions& options() const { return options_; }
  Model& model() { return model_; }
  /// The tasks and their static weights (the weights in force: state().task_weight).
  const std::vector<std::pair<Objective*, double>>& tasks() const { return tasks_; }
  /// The joint-loss rule and its learned state.
  const LossWeighting& weighting() const { return *weighting_; }
  const std::vector<std::map<std::string, Metrics>>& validations() const { return validations_; }

 private:
  struct Optimizers;
  void validate();
  bool step_batch(const Batch& batch, bool apply, int64_t global_size, int64_t share_size);
  Signal notify(Signal (Observer::*hook)(Trainer&));

  Model& model_;
  BatchSource& source_;
  std::vector<std::pair<Objective*, double>> tasks_;
  TrainerOptions options_;
  std::vector<std::shared_ptr<Observer>> observers_;
  std::unique_ptr<Optimizers> opt_;
  std::unique_ptr<LossWeighting> weighting_;
  std::function<void(Checkpoint&)> decorate_;
  std::string config_json_ = "{}";
  IdMap users_, items_, scenarios_;
  std::vector<std::pair<std::string, at::Tensor>> extra_tensors_;
  TrainState state_;
  std::vector<std::map<std::string, Metrics>> validations_;
  bool resumed_ = false;
  std::shared_ptr<Communicator> comm_;
  std::unique_ptr<DataParallel> dp_;
};

}  // namespace mtrec
