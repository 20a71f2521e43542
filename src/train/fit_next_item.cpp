#include "mtrec/train/fit_next_item.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <limits>

#include "mtrec/core/check.h"
#include "mtrec/core/random.h"
#include "mtrec/train/observers.h"

namespace mtrec {

namespace {

// The per-epoch history of NextItemTrainResult, read off the trainer's state.
class HistoryRecorder : public Observer {
 public:
  explicit HistoryRecorder(std::vector<NextItemEpoch>& history) : history_(history) {}
  Signal on_validation(Trainer& t) override {
    const auto& s = t.state();
    auto v = s.valid.find("next_item");
    if (v != s.valid.end()) {
      current_.evaluated = true;
      current_.valid_hr10 = v->second.at("HR@10");
      current_.valid_ndcg10 = v->second.at("NDCG@10");
      current_.best = s.improved;
    }
    return Signal::Continue;
  }
  Signal after_epoch(Trainer& t) override {
    const auto& s = t.state();
    current_.epoch = s.epoch;
    current_.loss = s.finished_epoch_loss;
    current_.lr = s.lr;
    current_.seconds = s.seconds;
    history_.push_back(current_);
    current_ = NextItemEpoch();
    return Signal::Continue;
  }

 private:
  std::vector<NextItemEpoch>& history_;
  NextItemEpoch current_;
};

}  // namespace

NextItemTrainResult fit_next_item(NextItemModel& model, const NextItemData& data, const NextItemTrainOptions& opt,
                                  const RunOptions& run) {
  MTREC_CHECK(opt.epochs() >= 1, "epochs must be >= 1, got ", opt.epochs());
  MTREC_CHECK(opt.batch_size() >= 1, "batch_size must be >= 1, got ", opt.batch_size());
  MTREC_CHECK(opt.lr() > 0, "lr must be > 0, got ", opt.lr());
  MTREC_CHECK(opt.eval_every() >= 0 && opt.patience() >= 0, "eval_every (", opt.eval_every(), ") and patience (",
              opt.patience(), ") must be >= 0");
  MTREC_CHECK(data.num_items == model->options.num_items(), "data has ", data.num_items,
              " items but the model was built for ", model->options.num_items());
  NextItemSource source(data, model->options.max_len());
  NextItemEngineModel engine_model(model);
  NextItemObjective objective(data, opt.loss(), opt.num_negatives());
  bool has_valid = false;
  for (int32_t t : data.valid) has_valid = has_valid || t >= 0;
  // eval_every 0: one validation, after the last epoch (the trainer always validates that one).
  const int validate_every = !has_valid ? 0 : opt.eval_every() > 0 ? opt.eval_every() : opt.epochs();
  Trainer trainer(engine_model, source, {{&objective, 1.0}},
                  TrainerOptions()
                      .epochs(opt.epochs())
                      .batch_size(opt.batch_size())
                      .optimizer("adamw")
                      .lr(opt.lr())
                      .weight_decay(opt.weight_decay())
                      .schedule("cosine")
                      .warmup_steps(opt.warmup_steps())
                      .min_lr_ratio(opt.min_lr_ratio())
                      .clip_norm(opt.clip_norm() > 0 ? opt.clip_norm() : 0.0)
                      .monitor("next_item/NDCG@10", true)
                      .validate_every(validate_every)
                      .seed(derive_seed(opt.seed(), "next-item"))
                      .device(opt.device()));
  // Best-epoch restore always; patience 0 never stops.
  if (has_valid)
    trainer.add_observer(
        std::make_shared<EarlyStopping>(opt.patience() > 0 ? opt.patience() : std::numeric_limits<int>::max()));
  add_run_observers(trainer, run, "train", 0);
  NextItemTrainResult result;
  trainer.add_observer(std::make_shared<HistoryRecorder>(result.history));

  nlohmann::json config =
      run.config_json().empty() ? nlohmann::json::object() : nlohmann::json::parse(run.config_json());
  config["model"] = nlohmann::json::parse(next_item_options_to_json(model->options));
  trainer.set_config(config.dump());
  trainer.set_checkpoint_decorator(
      [&model](Checkpoint& ck) { add_head_checkpoint(ck, next_item_checkpoint(model, {}, {})); });
  if (!run.resume().empty()) trainer.resume(load_training_checkpoint(run.resume(), "next_item"));

  TrainSummary s = trainer.train();
  result.epochs_run = s.state.epoch;
  result.seconds = s.state.seconds;
  result.early_stopped = s.state.stopped_early;
  if (s.state.has_best) {
    result.best_epoch = s.state.best_epoch + 1;
    // The validation that set the best (the first to reach it, as the trainer compares).
    bool found = false;
    for (const auto& v : s.validations) {
      auto t = v.find("next_item");
      if (t == v.end()) continue;
      const double ndcg = t->second.at("NDCG@10");
      if (!found || ndcg > result.best_valid_ndcg10) {
        found = true;
        result.best_valid_ndcg10 = ndcg;
        result.best_valid_hr10 = t->second.at("HR@10");
      }
    }
  }
  return result;
}

}  // namespace mtrec
