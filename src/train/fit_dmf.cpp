#include "mtrec/train/fit_dmf.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <memory>

#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/random.h"
#include "mtrec/eval/protocols.h"
#include "mtrec/train/trainer.h"
#include "seeded_init.h"

namespace mtrec {

DmfFit fit_dmf(const Interactions& train, const Interactions& valid, int32_t num_users, int32_t num_items,
               const DmfTrainOptions& o, const RunOptions& run) {
  MTREC_CHECK(!train.empty(), "DMF needs training interactions");
  MTREC_CHECK(o.negatives() >= 1 && o.epochs() >= 1 && o.batch_size() >= 1, "DMF options: negatives=", o.negatives(),
              " epochs=", o.epochs(), " batch_size=", o.batch_size(), " must all be >= 1");
  MTREC_CHECK(o.lr() > 0 && o.weight_decay() >= 0, "DMF options: lr=", o.lr(),
              " must be > 0 and weight_decay=", o.weight_decay(), " >= 0");
  MTREC_CHECK(o.patience() >= 1 || valid.empty(), "DMF options: patience must be >= 1, got ", o.patience());
  const std::string stage = valid.empty() ? "train" : "select";
  std::unique_ptr<Checkpoint> resume;
  if (!run.resume().empty()) {
    resume = std::make_unique<Checkpoint>(load_training_checkpoint(run.resume(), "dmf"));
    auto c = nlohmann::json::parse(resume->config_json);
    const std::string was = c.contains("stage") ? c.at("stage").value("name", std::string()) : std::string();
    MTREC_CHECK(was == stage, "cannot resume '", run.resume(), "': it is from stage '", was, "', and this run (",
                valid.empty() ? "no" : "with", " validation rows) has stage '", stage, "'");
  }

  const float max_rating = train.has_rating ? static_cast<float>(o.max_rating()) : 1.0f;
  DmfExamples examples(train, num_users, num_items, o.negatives(), max_rating, o.soft_labels());
  DmfFit task;
  task.input_scale = max_rating;
  task.model = with_init_seed(derive_seed(o.seed(), "dmf-init"), [&] {
    return DMF(DMFOptions(num_users, num_items)
                   .user_layers(o.layers())
                   .item_layers(o.item_layers().empty() ? o.layers() : o.item_layers())
                   .dropout(o.dropout())
                   .input_norm(o.input_norm()));
  });
  task.model->to(choose_device(o.device()));
  task.model->set_matrix(examples.pairs(), max_rating);
  DmfModel model(task.model, o.mask_target());

  std::unique_ptr<RankingEvaluator> evaluator;
  DmfObjective objective;
  if (!valid.empty()) {
    // Protocol D on the validation item: 100 uniform unseen negatives (train excluded); only
    // @10 is read, so only @10 is computed.
    evaluator = std::make_unique<RankingEvaluator>(
        examples.pairs(), num_users, num_items,
        ranking_protocol(kRankingNegatives, derive_seed(o.seed(), "dmf-valid")).ks({10}));
    objective.set_validator([&](Model&) -> Metrics {
      task.cache_vectors();
      auto r = evaluator->evaluate(valid, task.score_fn());
      return {{"HR@10", r.at("HR@10")}, {"NDCG@10", r.at("NDCG@10")}};
    });
  }

  // Dense Adam on every parameter, as DMF was tuned with (docs/heads.md): the input tables are
  // items×256 and users×256, small enough that row-wise sparse updates would buy nothing.
  Trainer trainer(model, examples, {{&objective, 1.0}},
                  TrainerOptions()
                      .epochs(o.epochs())
                      .batch_size(o.batch_size())
                      .optimizer("adam")
                      .lr(o.lr())
                      .weight_decay(o.weight_decay())
                      .monitor("dmf/HR@10", true)
                      .validate_every(valid.empty() ? 0 : 1)
                      .seed(derive_seed(o.seed(), "dmf-" + stage))
                      .device(o.device()));
  add_run_observers(trainer, run, stage, valid.empty() ? 0 : o.patience());
  trainer.set_config(stage_config(run, nlohmann::json{{"name", stage}}.dump()));
  trainer.set_checkpoint_decorator([&task](Checkpoint& ck) {
    // The golden pairs score the parameters being saved.
    task.cache_vectors();
    add_head_checkpoint(ck, task.to_checkpoint({}, {}));
  });
  if (resume) trainer.resume(*resume);
  TrainSummary s = trainer.train();
  task.epochs_run = s.state.epoch;
  task.best_epoch = s.state.has_best ? s.state.best_epoch + 1 : 0;
  task.best_valid_hr = s.state.has_best ? s.state.best : 0.0;
  task.model->eval();
  task.cache_vectors();
  return task;
}

}  // namespace mtrec
