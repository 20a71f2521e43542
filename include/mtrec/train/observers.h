#pragma once
// The trainer's observers (train/trainer.h): logging, progress, early stopping, checkpoints and
// the HTML report are hooks on the loop, not branches in it.
//   trainer.add_observer(std::make_shared<mtrec::JsonlLogger>("run/metrics.jsonl"));
//   trainer.add_observer(std::make_shared<mtrec::ProgressObserver>());
//   trainer.add_observer(std::make_shared<mtrec::EarlyStopping>(3));
//   trainer.add_observer(std::make_shared<mtrec::Checkpointer>("run", /*every_steps=*/500));
//   trainer.add_observer(std::make_shared<mtrec::HtmlReport>("run/report.html"));
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mtrec/train/trainer.h"

namespace mtrec {

class ProgressBar;

/// One JSON line per epoch ({"event":"epoch", epoch, step, loss, task_loss, task_weight (the
/// multiplier of each task's loss in force), lr, valid, ...}) and,
/// with every_batches > 0, one per that many batches ({"event":"batch", ...}); flushed per line.
/// A resumed run appends to the same file.
class JsonlLogger : public Observer {
 public:
  explicit JsonlLogger(std::string path, int64_t every_batches = 0);
  void on_train_begin(Trainer& t) override;
  Signal after_batch(Trainer& t) override;
  Signal after_epoch(Trainer& t) override;
  void on_train_end(Trainer& t) override;

 private:
  std::string path_;
  int64_t every_;
  std::ofstream out_;
};

/// A progress bar per epoch (rate, ETA, loss) on stderr; off a terminal, a log line every
/// progress_interval() seconds (core/progress.h).
/// After each epoch one log line (loss, validation metrics, the task weights in force when there
/// are two tasks or more).
class ProgressObserver : public Observer {
 public:
  explicit ProgressObserver(std::string label = "epoch");
  ~ProgressObserver() override;
  Signal after_batch(Trainer& t) override;
  Signal after_epoch(Trainer& t) override;

 private:
  std::string label_;
  std::unique_ptr<ProgressBar> bar_;
};

/// Stops after `patience` validations in a row without improvement of the monitored metric;
/// with restore_best, the model ends with the parameters of the best validation.
class EarlyStopping : public Observer {
 public:
  explicit EarlyStopping(int patience, bool restore_best = true);
  Signal on_validation(Trainer& t) override;
  Signal on_stall(Trainer& t) override;
  void on_train_end(Trainer& t) override;
  void save_state(Checkpoint& ck) const override;
  void load_state(const Checkpoint& ck) override;

 private:
  int patience_;
  bool restore_best_;
  std::vector<std::pair<std::string, at::Tensor>> best_;
};

/// Per-task model selection: for each tracked validation metric ("task/metric", and whether
/// larger is better), the parameters and buffers of the validation at which it was best.
/// Metrics that improve at the same validation share one copy. With patience > 0, stops after
/// that many validations in a row in which no tracked metric improved (the monitored metric
/// alone would stop a multi-task run while other tasks still learn). At the end the model
/// holds the state selected for the first metric.
class BestPerTask : public Observer {
 public:
  using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;
  struct Best {
    double value = 0;
    int epoch = -1;  // 0-based
    std::shared_ptr<const NamedTensors> state;
  };
  explicit BestPerTask(std::vector<std::pair<std::string, bool>> metrics, int patience = 0);
  Signal on_validation(Trainer& t) override;
  void on_train_end(Trainer& t) override;
  void save_state(Checkpoint& ck) const override;
  void load_state(const Checkpoint& ck) override;
  /// Metric -> its best so far (metrics never validated are absent).
  const std::map<std::string, Best>& best() const { return best_; }
  const std::vector<std::pair<std::string, bool>>& metrics() const { return metrics_; }

 private:
  std::vector<std::pair<std::string, bool>> metrics_;
  int patience_;
  int stalls_ = 0;
  std::map<std::string, Best> best_;
};

/// Writes DIR/last.ckpt after every epoch (and every `every_steps` optimiser steps, mid-epoch),
/// DIR/best.ckpt when the monitored metric improves, and DIR/config.json (the effective
/// configuration) at the start. Every write is atomic.
class Checkpointer : public Observer {
 public:
  explicit Checkpointer(std::string dir, int64_t every_steps = 0);
  void on_train_begin(Trainer& t) override;
  Signal after_batch(Trainer& t) override;
  Signal on_validation(Trainer& t) override;
  Signal after_epoch(Trainer& t) override;
  std::string last_path() const { return dir_ + "/last.ckpt"; }
  std::string best_path() const { return dir_ + "/best.ckpt"; }

 private:
  std::string dir_;
  int64_t every_;
  int64_t last_saved_step_ = -1;
};

/// A self-contained HTML page (inline SVG, no scripts or external files) with each task's
/// training loss, weight in force and each validation metric per epoch, rewritten after every epoch.
class HtmlReport : public Observer {
 public:
  explicit HtmlReport(std::string path, std::string title = "mtrec training report");
  Signal after_epoch(Trainer& t) override;
  void on_train_end(Trainer& t) override;
  void save_state(Checkpoint& ck) const override;
  void load_state(const Checkpoint& ck) override;
  /// The page for the history so far (exposed for tests).
  std::string render(const Trainer& t) const;

 private:
  std::string path_, title_;
  std::vector<std::map<std::string, double>> losses_;   // per epoch: task -> mean loss ("total" too)
  std::vector<std::map<std::string, double>> weights_;  // per epoch: task -> weight in force
};

}  // namespace mtrec
