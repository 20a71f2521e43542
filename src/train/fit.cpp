#include "mtrec/train/fit.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <numeric>

#include "mtrec/cf/bayes_mf.h"
#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/log.h"
#include "mtrec/core/progress.h"
#include "mtrec/core/random.h"
#include "mtrec/data/batcher.h"
#include "mtrec/train/observers.h"
#include "mtrec/train/trainer.h"
#include "seeded_init.h"

namespace mtrec {

namespace {

Interactions concat_rows(const Interactions& a, const Interactions& b) {
  Interactions out = a;
  for (size_t k = 0; k < b.size(); ++k)
    out.push_back(b.user[k], b.item[k], b.has_rating ? b.rating[k] : 1.0f, b.has_timestamp ? b.timestamp[k] : 0,
                  b.scenario.empty() ? 0 : b.scenario[k], b.behavior.empty() ? 0 : b.behavior[k]);
  return out;
}

// Gibbs sampling (cf/bayes_mf.h); the module holds the posterior-mean parameters.
RatingFit fit_mcmc(const Interactions& train, int32_t num_users, int32_t num_items, float lo, float hi,
                   const RatingTrainOptions& o, bool progress) {
  ProgressBar bar(o.sweeps(), "rating mcmc");
  BayesMf mf = fit_bayes_mf(train, num_users, num_items,
                            BayesMfOptions()
                                .dim(o.dim())
                                .iterations(o.sweeps())
                                .burn_in(o.burn_in() < 0 ? o.sweeps() / 10 : o.burn_in())
                                .threads(o.threads())
                                .seed(derive_seed(o.seed(), "rating-mcmc")),
                            [&](int sweep, double rmse) {
                              if (progress) {
                                bar.set_postfix("train RMSE " + std::to_string(rmse).substr(0, 6));
                                bar.tick();
                              }
                              log_debug("rating mcmc sweep {}: sample train RMSE {:.4f}", sweep, rmse);
                            });
  bar.finish();
  RatingFit task;
  task.solver = "mcmc";
  task.min_rating = lo;
  task.max_rating = hi;
  task.epochs_run = o.sweeps();
  task.train_rmse = mf.train_rmse;
  task.model = BiasedMF(BiasedMFOptions(num_users, num_items).dim(o.dim()).global_mean(mf.global_mean));
  {
    torch::NoGradGuard no_grad;
    auto copy = [](torch::Tensor dst, const std::vector<float>& src) {
      dst.copy_(torch::from_blob(const_cast<float*>(src.data()), dst.sizes(), torch::kFloat32));
    };
    copy(task.model->user_factors(), mf.user_factors);
    copy(task.model->item_factors(), mf.item_factors);
    copy(task.model->user_bias(), mf.user_bias);
    copy(task.model->item_bias(), mf.item_bias);
  }
  task.model->to(choose_device(o.device()));
  task.model->eval();
  return task;
}

// One engine run of the SGD/Adam rating model on `rows`, validating on `valid` when not empty.
RatingFit run_sgd(const Interactions& rows, const Interactions& valid, int32_t num_users, int32_t num_items, float lo,
                  float hi, int epochs, const RatingTrainOptions& o, const RunOptions& run, const std::string& stage,
                  const nlohmann::json& stage_info, const Checkpoint* resume) {
  const double mean = std::accumulate(rows.rating.begin(), rows.rating.end(), 0.0) / rows.size();
  RatingModel model(with_init_seed(derive_seed(o.seed(), "rating-init"), [&] {
    return BiasedMF(BiasedMFOptions(num_users, num_items).dim(o.dim()).global_mean(mean).sparse(true));
  }));
  InteractionSource source(rows);
  RatingObjective objective(o.l2(), valid, lo, hi);
  const bool adam = o.solver() == "adam";
  Trainer trainer(model, source, {{&objective, 1.0}},
                  TrainerOptions()
                      .epochs(epochs)
                      .batch_size(o.batch_size())
                      .sparse_optimizer(adam ? "adam" : "sgd")
                      // SGD's lr is per example (as in SGD-trained SVD), so the step of a row does not
                      // depend on the batch size: the batch-mean loss takes lr·batch.
                      .lr(adam ? (o.lr() > 0 ? o.lr() : 0.01) : (o.lr() > 0 ? o.lr() : 0.012) * o.batch_size())
                      .schedule("exponential")
                      .lr_decay(o.lr_decay())
                      .monitor("rating/rmse", false)
                      .validate_every(valid.empty() ? 0 : 1)
                      .seed(derive_seed(o.seed(), "rating-" + stage))
                      .device(o.device()));
  add_run_observers(trainer, run, stage, valid.empty() ? 0 : o.patience());
  trainer.set_config(stage_config(run, stage_info.dump()));
  RatingFit task;
  task.solver = o.solver();
  task.min_rating = lo;
  task.max_rating = hi;
  task.model = model.mf();
  trainer.set_checkpoint_decorator([&task](Checkpoint& ck) { add_head_checkpoint(ck, task.to_checkpoint({}, {})); });
  if (resume) trainer.resume(*resume);
  TrainSummary s = trainer.train();
  task.epochs_run = s.state.epoch;
  task.best_epoch = s.state.has_best ? s.state.best_epoch + 1 : s.state.epoch;
  task.best_valid_rmse = s.state.has_best ? s.state.best : 0.0;
  task.model->eval();
  return task;
}

}  // namespace

CtrFit fit_ctr(const Interactions& positives, const Interactions& valid_positives, int32_t num_users, int32_t num_items,
               int32_t num_scenarios, const CtrTrainOptions& o, const Interactions& seen, const RunOptions& run) {
  MTREC_CHECK(positives.size() >= 2, "CTR needs at least 2 positives, got ", positives.size());
  MTREC_CHECK(o.negatives() >= 1, "CTR needs negatives >= 1, got ", o.negatives());
  Interactions pool;
  pool.reserve(positives.size() + valid_positives.size() + seen.size());
  for (const Interactions* x : {&positives, &valid_positives, &seen})
    for (size_t k = 0; k < x->size(); ++k) pool.push_back(x->user[k], x->item[k]);
  NegativeSampler sampler = ctr_negative_sampler(pool, num_users, num_items, derive_seed(o.seed(), "ctr-neg"));
  CtrExamples valid;
  if (!valid_positives.empty()) valid = sample_ctr_examples(valid_positives, sampler, o.negatives());

  CtrEngineModel model(with_init_seed(derive_seed(o.seed(), "ctr-init"), [&] {
    return CtrModel(CtrModelOptions(num_users, num_items, num_scenarios).dim(o.dim()).hidden(o.hidden()));
  }));
  CtrExampleSource source(positives, sampler, o.negatives());
  CtrObjective objective(valid);
  Trainer trainer(model, source, {{&objective, 1.0}},
                  TrainerOptions()
                      .epochs(o.epochs())
                      .batch_size(o.batch_size())
                      .optimizer("adam")
                      .lr(o.lr())
                      .weight_decay(o.weight_decay())
                      .monitor("ctr/auc", true)
                      .validate_every(valid.size() == 0 ? 0 : 1)
                      .seed(derive_seed(o.seed(), "ctr-train"))
                      .device(o.device()));
  add_run_observers(trainer, run, "ctr", valid.size() == 0 ? 0 : o.patience());
  trainer.set_config(stage_config(run, R"({"name":"ctr"})"));
  CtrFit task;
  task.model = model.model();
  trainer.set_checkpoint_decorator([&task](Checkpoint& ck) {
    task.model->eval();  // golden pairs are scored in eval mode; the trainer switches back
    add_head_checkpoint(ck, task.to_checkpoint({}, {}, {}));
  });
  if (!run.resume().empty()) trainer.resume(load_training_checkpoint(run.resume(), "ctr"));
  TrainSummary s = trainer.train();
  task.epochs_run = s.state.epoch;
  task.model->eval();
  return task;
}

RatingFit fit_rating(const Interactions& train, const Interactions& valid, int32_t num_users, int32_t num_items,
                     const RatingTrainOptions& options, const RunOptions& run) {
  MTREC_CHECK(train.has_rating, "the rating task needs interactions with ratings");
  MTREC_CHECK(train.size() >= 2, "the rating task needs at least 2 training ratings, got ", train.size());
  MTREC_CHECK(options.solver() == "mcmc" || options.solver() == "sgd" || options.solver() == "adam",
              "unknown rating solver '", options.solver(), "' (expected mcmc|sgd|adam)");
  MTREC_CHECK(valid.empty() || valid.has_rating, "the rating task's validation rows carry no ratings");
  RatingTrainOptions o = options;
  if (o.dim() == 0) o.dim() = o.solver() == "mcmc" ? 32 : 128;
  MTREC_CHECK(o.dim() >= 1, "rating options: dim must be >= 1 (or 0 for the solver's default), got ", o.dim());
  Interactions all = valid.empty() ? train : concat_rows(train, valid);
  const float lo = *std::min_element(all.rating.begin(), all.rating.end());
  const float hi = *std::max_element(all.rating.begin(), all.rating.end());
  if (o.solver() == "mcmc") return fit_mcmc(all, num_users, num_items, lo, hi, o, run.progress());
  MTREC_CHECK(o.epochs() >= 1 && o.batch_size() >= 1, "rating options: epochs=", o.epochs(),
              " batch_size=", o.batch_size(), " must both be >= 1");

  // Which stage a resumed checkpoint belongs to, and what the first stage chose.
  std::unique_ptr<Checkpoint> resume;
  std::string resume_stage;
  int chosen_epochs = 0;
  double chosen_rmse = 0;
  if (!run.resume().empty()) {
    resume = std::make_unique<Checkpoint>(load_training_checkpoint(run.resume(), "rating"));
    auto stage = nlohmann::json::parse(resume->config_json).at("stage");
    resume_stage = stage.at("name").get<std::string>();
    chosen_epochs = stage.value("epochs", 0);
    chosen_rmse = stage.value("best_valid_rmse", 0.0);
  }
  if (valid.empty())
    return run_sgd(train, {}, num_users, num_items, lo, hi, o.epochs(), o, run, "train", {{"name", "train"}},
                   resume.get());
  if (resume_stage != "refit") {
    RatingFit first = run_sgd(train, valid, num_users, num_items, lo, hi, o.epochs(), o, run, "select",
                              {{"name", "select"}}, resume_stage == "select" ? resume.get() : nullptr);
    if (!o.refit()) return first;
    chosen_epochs = first.best_epoch;
    chosen_rmse = first.best_valid_rmse;
    resume.reset();
  }
  // The validation rows chose the number of epochs; the final model sees train + validation.
  RatingFit task =
      run_sgd(all, {}, num_users, num_items, lo, hi, chosen_epochs, o, run, "refit",
              {{"name", "refit"}, {"epochs", chosen_epochs}, {"best_valid_rmse", chosen_rmse}}, resume.get());
  task.best_epoch = chosen_epochs;
  task.best_valid_rmse = chosen_rmse;
  return task;
}

}  // namespace mtrec
