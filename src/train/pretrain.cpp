#include "mtrec/train/pretrain.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <memory>

#include "mtrec/core/check.h"
#include "mtrec/core/log.h"
#include "mtrec/core/random.h"
#include "mtrec/train/observers.h"

namespace mtrec {

namespace {

// One MlmEpoch per epoch from the objective's token counts.
class MlmEpochRecorder : public Observer {
 public:
  MlmEpochRecorder(MlmObjective& objective, std::vector<MlmEpoch>& epochs) : objective_(objective), epochs_(epochs) {}
  Signal after_epoch(Trainer& t) override {
    auto c = objective_.take_counts();
    MlmEpoch e;
    e.epoch = t.state().epoch;
    e.masked_tokens = c.masked;
    e.loss = c.masked ? c.loss_sum / static_cast<double>(c.masked) : 0.0;
    e.accuracy = c.masked ? static_cast<double>(c.correct) / static_cast<double>(c.masked) : 0.0;
    log_info("epoch {}: MLM loss {:.4f}, masked-token accuracy {:.4f} ({} masked tokens)", e.epoch, e.loss, e.accuracy,
             e.masked_tokens);
    epochs_.push_back(e);
    return Signal::Continue;
  }

 private:
  MlmObjective& objective_;
  std::vector<MlmEpoch>& epochs_;
};

}  // namespace

std::vector<std::string> catalogue_texts(const Dataset& ds, bool users) {
  std::vector<std::string> out;
  auto add = [&out](const TextCatalog& c) {
    for (int32_t i = 0; i < c.size(); ++i) {
      std::string t = c.text(i);
      if (!t.empty()) out.push_back(std::move(t));
    }
  };
  add(ds.item_text);
  if (users) add(ds.user_text);
  return out;
}

MlmPretrainResult pretrain_mlm(nn::TextEncoder& encoder, const Tokenizer& tokenizer,
                               const std::vector<std::string>& texts, const TrainerOptions& trainer_options,
                               const MlmPretrainOptions& o, const RunOptions& run) {
  MTREC_CHECK(!texts.empty(), "MLM pretraining: no texts");
  MTREC_CHECK(encoder->options.vocab_size() == tokenizer.vocab_size(), "MLM pretraining: encoder vocabulary ",
              encoder->options.vocab_size(), " != tokenizer vocabulary ", tokenizer.vocab_size());
  MTREC_CHECK(encoder->options.pad_id() == tokenizer.pad_id(), "MLM pretraining: encoder pad id ",
              encoder->options.pad_id(), " != tokenizer pad id ", tokenizer.pad_id());
  const auto sp = tokenizer.special_ids();
  MlmOptions mlm_options = MlmOptions(tokenizer.vocab_size(), sp.mask)
                               .special_ids({sp.pad, sp.unk, sp.cls, sp.sep, sp.mask})
                               .mask_prob(o.mask_prob())
                               .replace_with_mask(o.replace_with_mask())
                               .replace_with_random(o.replace_with_random())
                               .seed(trainer_options.seed());
  MlmSource source(tokenizer.encode_rows(texts, EncodeOptions().set_max_len(encoder->options.max_len())),
                   tokenizer.pad_id(), mlm_options);
  MlmTask mlm(mlm_options, encoder->options.dim(), encoder->options.layer_norm_eps());
  MlmEngineModel model(encoder, mlm);
  MlmObjective objective;
  Trainer trainer(model, source, {{&objective, 1.0}}, TrainerOptions(trainer_options).validate_every(0));
  add_run_observers(trainer, run, "pretrain", 0);
  MlmPretrainResult result;
  result.texts = static_cast<int64_t>(texts.size());
  result.head = mlm->head;
  trainer.add_observer(std::make_shared<MlmEpochRecorder>(objective, result.epochs));
  nlohmann::json config =
      run.config_json().empty() ? nlohmann::json::object() : nlohmann::json::parse(run.config_json());
  config["encoder"] = {{"vocab_size", encoder->options.vocab_size()},
                       {"dim", encoder->options.dim()},
                       {"layers", encoder->options.layers()},
                       {"heads", encoder->options.heads()},
                       {"max_len", encoder->options.max_len()}};
  config["mlm"] = {{"mask_prob", o.mask_prob()},
                   {"replace_with_mask", o.replace_with_mask()},
                   {"replace_with_random", o.replace_with_random()},
                   {"texts", result.texts}};
  trainer.set_config(config.dump());
  trainer.set_checkpoint_decorator([](Checkpoint& ck) { ck.task = "mlm-pretrain"; });
  if (!run.resume().empty()) trainer.resume(load_training_checkpoint(run.resume(), "mlm-pretrain"));
  result.summary = trainer.train();
  return result;
}

}  // namespace mtrec
