#include "mtrec/train/fit_joint.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <chrono>
#include <algorithm>
#include <set>

#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/log.h"
#include "mtrec/model/joint_data.h"
#include "mtrec/model/joint_tasks.h"
#include "mtrec/tasks/labels.h"
#include "mtrec/core/random.h"
#include "mtrec/train/distributed.h"
#include "mtrec/train/pretrain.h"
#include "seeded_init.h"

namespace mtrec {

std::string JointTrainOptions::to_json() const {
  nlohmann::json j = {{"tasks", tasks_},
                      {"weights", weights_},
                      {"mlm_lambda", mlm_lambda_},
                      {"arch", arch_},
                      {"scenario_arch", scenario_arch_},
                      {"weighting", weighting_},
                      {"text", text_},
                      {"dim", dim_},
                      {"experts", experts_},
                      {"levels", levels_},
                      {"expert_hidden", expert_hidden_},
                      {"max_history", max_history_},
                      {"vocab_size", vocab_size_},
                      {"text_dim", text_dim_},
                      {"text_layers", text_layers_},
                      {"text_heads", text_heads_},
                      {"text_max_len", text_max_len_},
                      {"text_refresh_every", text_refresh_every_},
                      {"text_lr_scale", text_lr_scale_},
                      {"pretrain_epochs", pretrain_epochs_},
                      {"mlm_texts", mlm_texts_},
                      {"ctr_negatives", ctr_negatives_},
                      {"ctr_min_rating", ctr_min_rating_},
                      {"id_dropout", id_dropout_},
                      {"next_item_negatives", next_item_negatives_},
                      {"dropout", dropout_},
                      {"patience", patience_},
                      {"trainer", nlohmann::json::parse(trainer_.to_json())}};
  return j.dump();
}

JointEvalOptions JointBundle::eval_options() const {
  return JointEvalOptions().ctr_columns(ctr_columns).context_rows(context_rows).ctr_min_rating(ctr_min_rating)
      .ctr_negatives(ctr_negatives).rating_range(rating_min, rating_max).seed(seed);
}

std::vector<std::vector<int64_t>> tokenize_contexts(const Tokenizer& tokenizer, const Dataset& ds, int64_t max_len) {
  std::vector<std::string> t;
  for (int32_t c = 0; c < ds.context_text.size(); ++c) t.push_back(ds.context_text.text(c));
  EncodeOptions eo;
  eo.set_max_len(max_len);
  return tokenizer.encode_rows(t, eo);
}

void JointBundle::tokenize_contexts(const Dataset& ds) {
  context_rows.clear();
  if (tokenizer && model && model->text) context_rows = mtrec::tokenize_contexts(*tokenizer, ds, model->text->options.max_len());
}

namespace {

nlohmann::json encoder_json(const nn::TextEncoderOptions& o) {
  return {{"vocab_size", o.vocab_size()}, {"dim", o.dim()},        {"layers", o.layers()},
          {"heads", o.heads()},           {"ffn_dim", o.ffn_dim()}, {"max_len", o.max_len()},
          {"dropout", o.dropout()},       {"pooling", nn::pooling_name(o.pooling())},
          {"out_dim", o.out_dim()},       {"pad_id", o.pad_id()}};
}

nn::TextEncoderOptions encoder_options(const nlohmann::json& j) {
  return nn::TextEncoderOptions(j.at("vocab_size").get<int64_t>(), j.at("dim").get<int64_t>())
      .layers(j.at("layers").get<int64_t>())
      .heads(j.at("heads").get<int64_t>())
      .ffn_dim(j.at("ffn_dim").get<int64_t>())
      .max_len(j.at("max_len").get<int64_t>())
      .dropout(j.at("dropout").get<double>())
      .pooling(nn::parse_pooling(j.at("pooling").get<std::string>()))
      .out_dim(j.at("out_dim").get<int64_t>())
      .pad_id(j.at("pad_id").get<int64_t>());
}

/// What golden pairs score: the first of rating, CTR click probability, next-item score, for
/// (user, item, scenario) with an empty history.
GoldenScoreFn golden_fn(UnifiedModel model) {
  return [model](const std::vector<std::vector<int64_t>>& inputs) mutable {
    torch::NoGradGuard g;
    const c10::Device dev = model->item_emb->weight.device();
    std::vector<int64_t> u, i, s;
    for (const auto& in : inputs) u.push_back(in.at(0)), i.push_back(in.at(1)), s.push_back(in.at(2));
    at::Tensor ut = torch::tensor(u).to(dev), it = torch::tensor(i).to(dev), st = torch::tensor(s).to(dev);
    at::Tensor uv = model->user_vectors(ut, torch::zeros({int64_t(u.size()), 1}, torch::kInt64).to(dev));
    at::Tensor score;
    if (model->experts) {
      auto [r, p] = model->rank_outputs(ut, uv, it, st);
      score = r.defined() ? r : p.select(1, 0);
    } else if (model->next_proj) {
      score = model->next_item_scores(uv).gather(1, it.unsqueeze(1)).squeeze(1);
    } else {
      score = model->match_scores(uv).gather(1, it.unsqueeze(1)).squeeze(1);
    }
    score = score.to(torch::kFloat).cpu().contiguous();
    return std::vector<float>(score.data_ptr<float>(), score.data_ptr<float>() + score.numel());
  };
}

std::vector<std::vector<int64_t>> rows_of(const at::Tensor& tokens, const at::Tensor& mask) {
  std::vector<std::vector<int64_t>> rows(size_t(tokens.size(0)));
  at::Tensor t = tokens.cpu(), m = mask.cpu();
  for (int64_t r = 0; r < t.size(0); ++r)
    for (int64_t c = 0; c < t.size(1); ++c)
      if (m[r][c].item<bool>()) rows[size_t(r)].push_back(t[r][c].item<int64_t>());
  return rows;
}

}  // namespace

Checkpoint JointBundle::to_checkpoint(const Dataset& ds) {
  MTREC_CHECK(model, "joint checkpoint: no model");
  const bool was_training = model->is_training();
  model->eval();
  Checkpoint ck;
  ck.task = "joint";
  nlohmann::json config = {{"unified", nlohmann::json::parse(unified_options_to_json(model->options))},
                           {"pad_id", model->pad_id},
                           {"ctr_columns", ctr_columns},
                           {"ctr_min_rating", ctr_min_rating},
                           {"ctr_negatives", ctr_negatives},
                           {"rating_range", {rating_min, rating_max}},
                           {"seed", seed}};
  if (model->text) config["encoder"] = encoder_json(model->text->options);
  ck.config_json = config.dump();
  ck.users = ds.users, ck.items = ds.items, ck.scenarios = ds.scenarios;
  ck.tensors = module_state(*model);
  if (auto* sp = dynamic_cast<SentencePieceTokenizer*>(tokenizer.get()))
    ck.tensors.push_back({"tokenizer", bytes_to_tensor(sp->serialized())});
  std::vector<std::vector<int64_t>> inputs;
  const int64_t U = model->options.num_users(), I = model->options.num_items(), S = model->options.num_scenarios();
  for (int64_t k = 0; k < 6; ++k) inputs.push_back({(k * 7919) % U, (k * 104729) % I, k % S});
  ck.golden = make_golden(inputs, golden_fn(model));
  // What serving needs beside the model: histories (CSR) and the item catalogue.
  std::vector<int64_t> offsets = {0}, items;
  for (const auto& h : histories) {
    items.insert(items.end(), h.begin(), h.end());
    offsets.push_back(int64_t(items.size()));
  }
  if (!histories.empty()) {
    ck.tensors.push_back({"serve/history_offsets", torch::tensor(offsets, torch::kInt64)});
    ck.tensors.push_back({"serve/history_items", torch::tensor(items, torch::kInt64)});
  }
  const TextCatalog& cat = item_catalog.size() > 0 ? item_catalog : ds.item_text;
  nlohmann::json rows = nlohmann::json::array();
  for (int32_t i = 0; i < cat.size(); ++i) {
    nlohmann::json r = nlohmann::json::array();
    for (const auto& f : cat.fields()) r.push_back(cat.get(i, f));
    rows.push_back(std::move(r));
  }
  ck.tensors.push_back({"serve/item_catalog", bytes_to_tensor(nlohmann::json{{"fields", cat.fields()}, {"rows", rows}}.dump())});
  model->train(was_training);
  return ck;
}

void JointBundle::set_histories(const Dataset& ds, const Interactions& known) {
  UserHistories h(ds, known, ds.num_users(), seed, 0);
  histories.assign(size_t(ds.num_users()), {});
  for (int32_t u = 0; u < ds.num_users(); ++u) histories[size_t(u)] = h.items(u);
}

JointBundle joint_from_checkpoint(const Checkpoint& ck, const std::string& device) {
  MTREC_CHECK(ck.task == "joint", "checkpoint '", ck.path, "' holds task '", ck.task, "', not 'joint'");
  nlohmann::json config = nlohmann::json::parse(ck.config_json);
  const nlohmann::json head = config.contains("model") ? config["model"] : config;
  JointBundle b;
  UnifiedOptions uo = unified_options_from_json(head.at("unified").dump());
  const int64_t pad = head.at("pad_id").get<int64_t>();
  b.ctr_columns = head.at("ctr_columns").get<std::vector<std::string>>();
  b.ctr_min_rating = head.at("ctr_min_rating").get<float>();
  b.ctr_negatives = head.at("ctr_negatives").get<int>();
  b.rating_min = head.at("rating_range").at(0).get<float>(), b.rating_max = head.at("rating_range").at(1).get<float>();
  b.seed = head.at("seed").get<uint64_t>();
  nn::TextEncoder enc{nullptr};
  if (head.contains("encoder")) enc = nn::TextEncoder(encoder_options(head["encoder"]));
  bool has_tok = false;
  for (const auto& [name, t] : ck.tensors) has_tok |= name == "tokenizer";
  if (has_tok) b.tokenizer = std::make_shared<SentencePieceTokenizer>(SentencePieceTokenizer::from_serialized(tensor_to_bytes(ck.tensor("tokenizer"))));
  std::vector<std::vector<int64_t>> item_rows, user_rows;
  if (uo.text() != TextMode::None) {
    item_rows = rows_of(ck.tensor("item_tokens"), ck.tensor("item_token_mask"));
    if (ck.tensor("user_tokens").size(0) > 0) user_rows = rows_of(ck.tensor("user_tokens"), ck.tensor("user_token_mask"));
  }
  b.model = UnifiedModel(uo, enc, item_rows, user_rows, pad);
  b.model->to(choose_device(device));
  load_module_state(*b.model, ck);
  b.model->eval();
  verify_golden(ck, golden_fn(b.model));
  bool has_hist = false, has_cat = false;
  for (const auto& [name, t] : ck.tensors) has_hist |= name == "serve/history_offsets", has_cat |= name == "serve/item_catalog";
  if (has_hist) {
    at::Tensor off = ck.tensor("serve/history_offsets").to(torch::kInt64).contiguous();
    at::Tensor it = ck.tensor("serve/history_items").to(torch::kInt64).contiguous();
    const int64_t* o = off.data_ptr<int64_t>();
    const int64_t* v = it.data_ptr<int64_t>();
    MTREC_CHECK(off.numel() == uo.num_users() + 1 && o[off.numel() - 1] == it.numel(), "checkpoint '", ck.path,
                "': serve/history_offsets has ", off.numel(), " entries for ", uo.num_users(), " users and ",
                it.numel(), " items");
    b.histories.resize(size_t(uo.num_users()));
    for (int64_t u = 0; u < uo.num_users(); ++u) {
      MTREC_CHECK(o[u] <= o[u + 1], "checkpoint '", ck.path, "': serve/history_offsets decreases at user ", u);
      for (int64_t j = o[u]; j < o[u + 1]; ++j) {
        MTREC_CHECK(v[j] >= 0 && v[j] < uo.num_items(), "checkpoint '", ck.path, "': history item ", v[j],
                    " outside [0, ", uo.num_items(), ")");
        b.histories[size_t(u)].push_back(int32_t(v[j]));
      }
    }
  }
  if (has_cat) {
    const auto cat = nlohmann::json::parse(tensor_to_bytes(ck.tensor("serve/item_catalog")));
    b.item_catalog = TextCatalog(cat.at("fields").get<std::vector<std::string>>());
    const auto& fields = b.item_catalog.fields();
    int32_t i = 0;
    for (const auto& row : cat.at("rows")) {
      for (size_t f = 0; f < fields.size() && f < row.size(); ++f) b.item_catalog.set(i, fields[f], row[f].get<std::string>());
      ++i;
    }
    b.item_catalog.resize(i);
  }
  return b;
}

JointFit fit_joint(const Dataset& ds, const Split& split, const JointTrainOptions& o, const RunOptions& run) {
  using Clock = std::chrono::steady_clock;
  const auto& x = ds.interactions;
  Interactions train = x.subset(split.train), valid = x.subset(split.valid);
  MTREC_CHECK(!train.empty(), "fit_joint: the split has no training rows");
  const bool multi = ds.behaviors.size() > 1, impressions = ds.behaviors.find("impression") >= 0;
  JointFit fit;
  fit.seed = o.trainer_.seed_;
  std::vector<size_t> fitted = split.train;  // row order kept: histories without timestamps follow it
  fitted.insert(fitted.end(), split.valid.begin(), split.valid.end());
  std::sort(fitted.begin(), fitted.end());
  fit.set_histories(ds, x.subset(fitted));
  fit.item_catalog = ds.item_text;
  fit.ctr_min_rating = o.ctr_min_rating_ > 0 ? o.ctr_min_rating_ : (!multi && x.has_rating ? 4.f : 0.f);
  // Without impressions, CTR negatives are sampled (protocol C); with them, they are the data's.
  fit.ctr_negatives = o.ctr_negatives_ > 0 ? o.ctr_negatives_ : (impressions ? 0 : 4);
  const TextMode text = parse_text_mode(o.text_);
  const uint64_t seed = o.trainer_.seed_;
  const std::shared_ptr<Communicator> comm =
      run.communicator_ && run.communicator_->world_size() > 1 ? run.communicator_ : nullptr;

  // The tasks this data can serve.
  std::vector<std::string> tasks;
  for (const auto& t : o.tasks_) {
    std::string why;
    if (t == "rating" && (!x.has_rating || (multi && ds.behaviors.find("rating") < 0))) why = "the data has no star ratings";
    if (t == "next_item" && !x.has_timestamp) why = "the data has no timestamps";
    if (t == "scenario" && (!x.has_context || ds.context_text.size() == 0 || ds.scenarios.size() < 2))
      why = "the data has no context texts or one scenario";
    if ((t == "scenario" || t == "mlm") && text == TextMode::None) why = "the text encoder is off (--text none)";
    if (t == "mlm" && o.mlm_texts_ <= 0) why = "mlm_texts is 0";
    if (why.empty()) tasks.push_back(t);
    else log_info("joint: task '{}' left out: {}", t, why);
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
        bytes = SentencePieceTokenizer::train(corpus, SentencePieceTrainOptions().vocab_size(o.vocab_size_).seed(seed))
                    .serialized();
      }
      comm->broadcast_bytes(bytes, 0, "broadcast of the tokenizer");
      tok = std::make_shared<SentencePieceTokenizer>(SentencePieceTokenizer::from_serialized(bytes));
    } else {
      tok = std::make_shared<SentencePieceTokenizer>(
          SentencePieceTokenizer::train(corpus, SentencePieceTrainOptions().vocab_size(o.vocab_size_).seed(seed)));
    }
    EncodeOptions eo;
    eo.set_max_len(o.text_max_len_);
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
    fit.context_rows = tokenize_contexts(*tok, ds, o.text_max_len_);
    mlm_rows = tok->encode_rows(catalogue_texts(ds), eo);
    // Initial parameters depend on the seed alone (not on what ran before in the process).
    encoder = with_init_seed(derive_seed(seed, "joint-encoder"), [&] {
      return nn::TextEncoder(nn::TextEncoderOptions(tok->vocab_size(), o.text_dim_)
                                 .layers(o.text_layers_).heads(o.text_heads_).max_len(o.text_max_len_)
                                 .pooling(nn::Pooling::Mean).dropout(o.dropout_).pad_id(tok->pad_id()));
    });
    fit.tokenizer = tok;
    if (o.pretrain_epochs_ > 0 && run.resume_.empty()) {
      const auto t0 = Clock::now();
      RunOptions pr = run;
      pr.observers_.clear();
      pretrain_mlm(encoder, *tok, catalogue_texts(ds),
                   TrainerOptions().epochs(o.pretrain_epochs_).batch_size(64).lr(1e-3).weight_decay(0.01)
                       .seed(seed).device(o.trainer_.device_),
                   {}, pr);
      fit.pretrain_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    }
  }

  // Data.
  JointDataOptions dopt = JointDataOptions().max_history(o.max_history_).ctr_negatives(fit.ctr_negatives)
                              .ctr_min_rating(fit.ctr_min_rating).seed(seed);
  const bool with_mlm = std::find(tasks.begin(), tasks.end(), "mlm") != tasks.end();
  const bool with_scen = std::find(tasks.begin(), tasks.end(), "scenario") != tasks.end();
  if (with_mlm) dopt.mlm_texts(o.mlm_texts_);
  std::optional<tasks::MlmOptions> mlm_opt;
  if (with_mlm) {
    const auto sp = tok->special_ids();
    mlm_opt = tasks::MlmOptions(tok->vocab_size(), sp.mask).special_ids({sp.pad, sp.unk, sp.cls, sp.sep, sp.mask}).seed(seed);
  }
  JointSource source(ds, train, dopt, with_scen ? fit.context_rows : std::vector<std::vector<int64_t>>{},
                     with_mlm ? mlm_rows : std::vector<std::vector<int64_t>>{}, tok ? tok->pad_id() : 0, mlm_opt);
  fit.ctr_columns = source.ctr_columns();

  // Model.
  double mean = 3.5;
  if (std::find(tasks.begin(), tasks.end(), "rating") != tasks.end()) {
    Interactions r = explicit_ratings(ds, train);
    double s = 0;
    for (float v : r.rating) s += v;
    if (!r.empty()) {
      mean = s / double(r.size());
      fit.rating_min = *std::min_element(r.rating.begin(), r.rating.end());
      fit.rating_max = *std::max_element(r.rating.begin(), r.rating.end());
    }
  }
  UnifiedOptions uo = UnifiedOptions(ds.num_users(), ds.num_items(), std::max<int32_t>(1, ds.scenarios.size()))
                          .dim(o.dim_).tasks(tasks).ctr_columns(int64_t(fit.ctr_columns.size())).text(text)
                          .text_refresh_every(o.text_refresh_every_).text_lr_scale(o.text_lr_scale_)
                          .max_history(o.max_history_).arch(nn::parse_expert_arch(o.arch_)).experts(o.experts_)
                          .levels(o.levels_).expert_hidden(o.expert_hidden_)
                          .scenario_arch(nn::parse_scenario_arch(o.scenario_arch_)).dropout(o.dropout_)
                          .id_dropout(o.id_dropout_).next_item_negatives(o.next_item_negatives_).global_mean(mean);
  fit.model = with_init_seed(derive_seed(seed, "joint-model"),
                             [&] { return UnifiedModel(uo, encoder, item_rows, user_rows, tok ? tok->pad_id() : 0); });
  {
    std::set<int32_t> items(train.item.begin(), train.item.end()), users(train.user.begin(), train.user.end());
    fit.model->set_seen(std::vector<int32_t>(items.begin(), items.end()), std::vector<int32_t>(users.begin(), users.end()));
  }
  fit.model->to(choose_device(o.trainer_.device_));

  // Tasks, weights, trainer.
  JointEvalOptions valid_options = fit.eval_options();
  if (comm) valid_options.sharded(comm->rank(), comm->world_size(), sum_over_ranks(comm));  // each rank its users
  auto validation = valid.empty() ? nullptr
                                  : std::make_shared<JointValidation>(fit.model, ds, train, valid, valid_options);
  auto task_objects = make_joint_tasks(uo, validation);
  std::vector<std::pair<Task*, double>> weighted;
  for (auto& t : task_objects) {
    auto it = o.weights_.find(t->name());
    const double w = it != o.weights_.end() ? it->second : t->name() == "mlm" ? o.mlm_lambda_ : 1.0;
    weighted.push_back({t.get(), w});
    fit.weights[t->name()] = w;
  }
  TrainerOptions to = o.trainer_;
  bool maximize = false;
  const std::string monitor = joint_monitor(uo, &maximize);
  if (to.monitor_.empty()) to.monitor(monitor, maximize);
  to.weighting(o.weighting_);
  if (!validation) to.validate_every(0);
  UnifiedEngineModel engine(fit.model);
  Trainer trainer(engine, source, weighted, to);
  trainer.set_config(stage_config(run, nlohmann::json{{"name", "joint"}, {"options", nlohmann::json::parse(o.to_json())}}.dump()));
  add_run_observers(trainer, run, "joint", validation ? o.patience_ : 0);
  JointBundle* bundle = &fit;
  trainer.set_checkpoint_decorator([bundle, &ds](Checkpoint& ck) {
    Checkpoint head = bundle->to_checkpoint(ds);
    add_head_checkpoint(ck, head);
    for (auto& [name, t] : head.tensors)
      if (name == "tokenizer") ck.tensors.push_back({name, t});
  });
  if (!run.resume_.empty()) {
    Checkpoint ck = load_checkpoint(run.resume_);
    // The trainer checks its own options; the model's (lr scale, refresh, dropout...) are here.
    const auto c = nlohmann::json::parse(ck.config_json);
    const auto saved = c.contains("model") ? c["model"].value("unified", nlohmann::json()) : nlohmann::json();
    const auto now = nlohmann::json::parse(unified_options_to_json(uo));
    MTREC_CHECK(saved == now, "resume: checkpoint '", run.resume_, "' was trained with model options ", saved.dump(),
                ", this run has ", now.dump());
    trainer.resume(ck);
  }
  log_info("joint: tasks {} (weights {}), {} + {} scenario layer, {} weighting, text {}, {} training examples",
           nlohmann::json(tasks).dump(), nlohmann::json(fit.weights).dump(), o.arch_, o.scenario_arch_, o.weighting_,
           o.text_, source.num_examples());
  const auto t0 = Clock::now();
  fit.summary = trainer.train();
  fit.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  fit.model->eval();
  fit.model->refresh_text_cache();
  return fit;
}

}  // namespace mtrec
