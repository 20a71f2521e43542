#include "mtrec/train/fit_joint.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <chrono>
#include <algorithm>
#include <set>
#include <type_traits>

#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/log.h"
#include "mtrec/model/joint_data.h"
#include "mtrec/model/joint_tasks.h"
#include "mtrec/data/labels.h"
#include "mtrec/core/random.h"
#include "mtrec/train/distributed.h"
#include "mtrec/train/observers.h"
#include "mtrec/train/pretrain.h"
#include "seeded_init.h"

namespace mtrec {

std::string JointTrainOptions::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  visit_fields(*this, [&j](const char* key, const auto& value) {
    using T = std::decay_t<decltype(value)>;
    if constexpr (std::is_same_v<T, UnifiedOptions>) {
      nlohmann::json model = nlohmann::json::parse(unified_options_to_json(value));
      for (const char* data_size : {"num_users", "num_items", "num_scenarios", "tasks", "ctr_columns", "global_mean"})
        model.erase(data_size);  // set from the data by fit_joint
      j[key] = model;
    } else if constexpr (std::is_same_v<T, TrainerOptions>) {
      j[key] = nlohmann::json::parse(value.to_json());
    } else {
      j[key] = value;
    }
  });
  return j.dump();
}

JointFit fit_joint(const Dataset& ds, const Split& split, const JointTrainOptions& o, const RunOptions& run) {
  using Clock = std::chrono::steady_clock;
  const auto& x = ds.interactions;
  Interactions train = x.subset(split.train), valid = x.subset(split.valid);
  MTREC_CHECK(!train.empty(), "fit_joint: the split has no training rows");
  const bool multi = ds.behaviors.size() > 1, impressions = ds.behaviors.find("impression") >= 0;
  JointFit fit;
  fit.seed = o.trainer().seed();
  std::vector<size_t> fitted = split.train;  // row order kept: histories without timestamps follow it
  fitted.insert(fitted.end(), split.valid.begin(), split.valid.end());
  std::sort(fitted.begin(), fitted.end());
  fit.set_histories(ds, x.subset(fitted));
  fit.serving.item_catalog = ds.item_text;
  fit.ctr_min_rating = o.ctr_min_rating() > 0 ? o.ctr_min_rating() : (!multi && x.has_rating ? 4.f : 0.f);
  // Without impressions, CTR negatives are sampled (protocol C); with them, they are the data's.
  fit.ctr_negatives = o.ctr_negatives() > 0 ? o.ctr_negatives() : (impressions ? 0 : 4);
  const TextMode text = o.model().text();
  const uint64_t seed = o.trainer().seed();
  const std::shared_ptr<Communicator> comm =
      run.communicator() && run.communicator()->world_size() > 1 ? run.communicator() : nullptr;

  // The tasks this data can serve.
  std::vector<Head> tasks;
  for (const Head t : o.tasks()) {
    std::string why;
    if (t == Head::Rating && (!x.has_rating || (multi && ds.behaviors.find("rating") < 0)))
      why = "the data has no star ratings";
    if (t == Head::NextItem && !x.has_timestamp) why = "the data has no timestamps";
    if (t == Head::Scenario && (!x.has_context || ds.context_text.size() == 0 || ds.scenarios.size() < 2))
      why = "the data has no context texts or one scenario";
    if ((t == Head::Scenario || t == Head::Mlm) && text == TextMode::None)
      why = "the text encoder is off (--text none)";
    if (t == Head::Mlm && o.mlm_texts() <= 0) why = "mlm_texts is 0";
    if (why.empty())
      tasks.push_back(t);
    else
      log_info("joint: task '{}' left out: {}", head_name(t), why);
  }
  MTREC_CHECK(!tasks.empty(), "fit_joint: none of the requested tasks can be trained on '", ds.name, "'");

  // Tokenizer and texts.
  std::vector<std::vector<int64_t>> item_rows, user_rows, mlm_rows;
  nn::TextEncoder encoder{nullptr};
  std::shared_ptr<SentencePieceTokenizer> tok;
  if (text != TextMode::None) {
    std::vector<std::string> corpus = catalogue_texts(ds);
    for (int32_t c = 0; c < ds.context_text.size(); ++c) corpus.push_back(ds.context_text.text(c));
    MTREC_CHECK(!corpus.empty(), "fit_joint: '", ds.name, "' has no item, user or context text; use text none");
    if (comm) {
      // Rank 0 trains the tokenizer and every rank reads its model: the vocabulary must agree.
      std::string bytes;
      if (comm->rank() == 0) {
        Communicator::Busy busy(comm.get(), "training the tokenizer");
        bytes = SentencePieceTokenizer::train(corpus, SentencePieceTrainOptions().vocab_size(o.vocab_size()).seed(seed))
                    .serialized();
      }
      comm->broadcast_bytes(bytes, 0, "broadcast of the tokenizer");
      tok = std::make_shared<SentencePieceTokenizer>(SentencePieceTokenizer::from_serialized(bytes));
    } else {
      tok = std::make_shared<SentencePieceTokenizer>(
          SentencePieceTokenizer::train(corpus, SentencePieceTrainOptions().vocab_size(o.vocab_size()).seed(seed)));
    }
    EncodeOptions eo;
    eo.set_max_len(o.text_max_len());
    auto rows = [&](const TextCatalog& cat, int32_t n) {
      std::vector<std::string> t(static_cast<size_t>(n));
      for (int32_t i = 0; i < std::min(n, cat.size()); ++i) t[size_t(i)] = cat.text(i);
      return tok->encode_rows(t, eo);
    };
    item_rows = rows(ds.item_text, ds.num_items());
    if (ds.user_text.size() > 0) {
      user_rows = rows(ds.user_text, ds.num_users());
      for (int32_t u = 0; u < ds.num_users(); ++u)
        if (u >= ds.user_text.size() || ds.user_text.text(u).empty()) user_rows[size_t(u)].clear();
    }
    fit.context_rows = tokenize_contexts(*tok, ds, o.text_max_len());
    mlm_rows = tok->encode_rows(catalogue_texts(ds), eo);
    // Initial parameters depend on the seed alone (not on what ran before in the process).
    encoder = with_init_seed(derive_seed(seed, "joint-encoder"), [&] {
      return nn::TextEncoder(nn::TextEncoderOptions(tok->vocab_size(), o.text_dim())
                                 .layers(o.text_layers())
                                 .heads(o.text_heads())
                                 .max_len(o.text_max_len())
                                 .pooling(nn::Pooling::Mean)
                                 .dropout(o.model().dropout())
                                 .pad_id(tok->pad_id()));
    });
    fit.tokenizer = tok;
    if (o.pretrain_epochs() > 0 && run.resume().empty()) {
      const auto t0 = Clock::now();
      RunOptions pr = run;
      pr.observers().clear();
      pretrain_mlm(encoder, *tok, catalogue_texts(ds),
                   TrainerOptions()
                       .epochs(o.pretrain_epochs())
                       .batch_size(64)
                       .lr(1e-3)
                       .weight_decay(0.01)
                       .seed(seed)
                       .device(o.trainer().device()),
                   {}, pr);
      fit.pretrain_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    }
  }

  // Data.
  JointDataOptions dopt = JointDataOptions()
                              .max_history(o.model().max_history())
                              .ctr_negatives(fit.ctr_negatives)
                              .ctr_min_rating(fit.ctr_min_rating)
                              .seed(seed);
  const bool with_mlm = std::find(tasks.begin(), tasks.end(), Head::Mlm) != tasks.end();
  const bool with_scen = std::find(tasks.begin(), tasks.end(), Head::Scenario) != tasks.end();
  if (with_mlm) dopt.mlm_texts(o.mlm_texts());
  std::optional<MlmOptions> mlm_opt;
  if (with_mlm) {
    const auto sp = tok->special_ids();
    mlm_opt = MlmOptions(tok->vocab_size(), sp.mask).special_ids({sp.pad, sp.unk, sp.cls, sp.sep, sp.mask}).seed(seed);
  }
  JointSource source(ds, train, dopt, with_scen ? fit.context_rows : std::vector<std::vector<int64_t>>{},
                     with_mlm ? mlm_rows : std::vector<std::vector<int64_t>>{}, tok ? tok->pad_id() : 0, mlm_opt);
  fit.ctr_columns = source.ctr_columns();

  // Model.
  double mean = 3.5;
  if (std::find(tasks.begin(), tasks.end(), Head::Rating) != tasks.end()) {
    Interactions r = explicit_ratings(ds, train);
    double s = 0;
    for (float v : r.rating) s += v;
    if (!r.empty()) {
      mean = s / double(r.size());
      fit.rating_min = *std::min_element(r.rating.begin(), r.rating.end());
      fit.rating_max = *std::max_element(r.rating.begin(), r.rating.end());
    }
  }
  UnifiedOptions uo = UnifiedOptions(o.model())
                          .num_users(ds.num_users())
                          .num_items(ds.num_items())
                          .num_scenarios(std::max<int32_t>(1, ds.scenarios.size()))
                          .tasks(tasks)
                          .ctr_columns(int64_t(fit.ctr_columns.size()))
                          .global_mean(mean);
  fit.model = with_init_seed(derive_seed(seed, "joint-model"),
                             [&] { return UnifiedModel(uo, encoder, item_rows, user_rows, tok ? tok->pad_id() : 0); });
  {
    std::set<int32_t> items(train.item.begin(), train.item.end()), users(train.user.begin(), train.user.end());
    fit.model->set_seen(std::vector<int32_t>(items.begin(), items.end()),
                        std::vector<int32_t>(users.begin(), users.end()));
  }
  fit.model->to(choose_device(o.trainer().device()));

  // Tasks, weights, trainer.
  JointEvalOptions valid_options = fit.eval_options();
  if (comm) valid_options.sharded(comm->rank(), comm->world_size(), sum_over_ranks(comm));  // each rank its users
  auto validation =
      valid.empty() ? nullptr : std::make_shared<JointValidation>(fit.model, ds, train, valid, valid_options);
  auto task_objects = make_joint_tasks(uo, validation);
  std::vector<std::pair<Objective*, double>> weighted;
  for (auto& t : task_objects) {
    auto it = o.weights().find(t->name());
    const double w = it != o.weights().end() ? it->second : t->name() == "mlm" ? o.mlm_lambda() : 1.0;
    weighted.push_back({t.get(), w});
    fit.weights[t->name()] = w;
  }
  TrainerOptions to = o.trainer();
  std::vector<std::pair<std::string, bool>> metrics = joint_metrics(uo);
  if (to.monitor().empty() && !metrics.empty()) to.monitor(metrics.front().first, metrics.front().second);
  // The monitored metric first: the model itself holds the state selected for it.
  metrics.erase(std::remove_if(metrics.begin(), metrics.end(), [&](const auto& m) { return m.first == to.monitor(); }),
                metrics.end());
  if (!to.monitor().empty()) metrics.insert(metrics.begin(), {to.monitor(), to.maximize()});
  to.weighting(o.weighting());
  if (!validation) to.validate_every(0);
  UnifiedEngineModel engine(fit.model);
  Trainer trainer(engine, source, weighted, to);
  trainer.set_config(
      stage_config(run, nlohmann::json{{"name", "joint"}, {"options", nlohmann::json::parse(o.to_json())}}.dump()));
  const bool select = validation && o.select_per_task() && !metrics.empty();
  add_run_observers(trainer, run, "joint", validation && !select ? o.patience() : 0);
  std::shared_ptr<BestPerTask> selection;
  if (select) {
    selection = std::make_shared<BestPerTask>(metrics, o.patience());
    trainer.add_observer(selection);
  }
  JointBundle* bundle = &fit;
  trainer.set_checkpoint_decorator([bundle, &ds](Checkpoint& ck) {
    Checkpoint head = bundle->to_checkpoint(ds);
    add_head_checkpoint(ck, head);  // with the tokenizer and the serving data
  });
  if (!run.resume().empty()) {
    Checkpoint ck = load_training_checkpoint(run.resume(), "joint");
    // The trainer checks its own options; the model's (lr scale, refresh, dropout...) are here.
    const auto c = nlohmann::json::parse(ck.config_json);
    const auto saved = c.contains("model") ? c["model"].value("unified", nlohmann::json()) : nlohmann::json();
    const auto now = nlohmann::json::parse(unified_options_to_json(uo));
    MTREC_CHECK(saved == now, "resume: checkpoint '", run.resume(), "' was trained with model options ", saved.dump(),
                ", this run has ", now.dump());
    trainer.resume(ck);
  }
  log_info("joint: tasks {} (weights {}), {} + {} scenario layer, {} weighting, text {}, {} training examples",
           nlohmann::json(tasks).dump(), nlohmann::json(fit.weights).dump(), nn::expert_arch_name(uo.arch()),
           nn::scenario_arch_name(uo.scenario_arch()), o.weighting(), text_mode_name(text), source.num_examples());
  const auto t0 = Clock::now();
  fit.summary = trainer.train();
  fit.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (selection) {
    const auto& best = selection->best();
    auto own = best.find(metrics.front().first);  // the state the model now holds
    for (const auto& [name, b] : best) {
      const bool same = own != best.end() && b.state == own->second.state;
      fit.selected[name.substr(0, name.find('/'))] = TaskSelection{name, b.value, b.epoch, same ? nullptr : b.state};
      log_info("joint: {} keeps epoch {} ({:.5g})", name, b.epoch + 1, b.value);
    }
  }
  fit.model->eval();
  fit.model->refresh_text_cache();
  return fit;
}

}  // namespace mtrec
