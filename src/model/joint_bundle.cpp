#include "mtrec/model/joint_bundle.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/random.h"
#include "mtrec/model/io.h"
#include "mtrec/text/tokenizer.h"

namespace mtrec {

JointEvalOptions JointBundle::eval_options() const {
  return JointEvalOptions()
      .ctr_columns(ctr_columns)
      .context_rows(context_rows)
      .ctr_min_rating(ctr_min_rating)
      .ctr_negatives(ctr_negatives)
      .rating_range(rating_min, rating_max)
      .seed(seed);
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
  if (tokenizer && model && model->text)
    context_rows = mtrec::tokenize_contexts(*tokenizer, ds, model->text->options.max_len());
}

namespace {

nlohmann::json encoder_json(const nn::TextEncoderOptions& o) {
  return {{"vocab_size", o.vocab_size()}, {"dim", o.dim()},
          {"layers", o.layers()},         {"heads", o.heads()},
          {"ffn_dim", o.ffn_dim()},       {"max_len", o.max_len()},
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

/// A model built like `m` (options, encoder, texts) holding `state`, on m's device, in eval mode.
UnifiedModel copy_with_state(const UnifiedModel& m, const std::vector<std::pair<std::string, at::Tensor>>& state) {
  std::vector<std::vector<int64_t>> item_rows, user_rows;
  if (m->options.text() != TextMode::None) {
    item_rows = rows_of(m->item_tokens, m->item_token_mask);
    if (m->user_tokens.size(0) > 0) user_rows = rows_of(m->user_tokens, m->user_token_mask);
  }
  UnifiedModel c{nullptr};
  keeping_cpu_generator([&] {  // its initial draws are overwritten
    c = UnifiedModel(m->options, m->text ? nn::TextEncoder(m->text->options) : nn::TextEncoder{nullptr}, item_rows,
                     user_rows, m->pad_id);
  });
  c->to(m->item_emb->weight.device());
  Checkpoint tmp;
  tmp.tensors = state;
  load_module_state(*c, tmp);
  c->eval();
  c->refresh_text_cache();  // the state's caches are training-time ones, older than its encoder
  return c;
}

const std::string kSelectedPrefix = "selected/e";

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
  std::map<int, const std::vector<std::pair<std::string, at::Tensor>>*> states;  // distinct, by epoch
  for (const auto& [task, sel] : selected) {
    config["selected"][task] = {{"metric", sel.metric}, {"value", sel.value}, {"epoch", sel.epoch}};
    if (sel.state) states[sel.epoch] = sel.state.get();
  }
  ck.config_json = config.dump();
  ck.users = ds.users, ck.items = ds.items, ck.scenarios = ds.scenarios;
  ck.tensors = module_state(*model);
  add_keyed_states(ck, kSelectedPrefix, states);
  if (auto* sp = dynamic_cast<SentencePieceTokenizer*>(tokenizer.get()))
    ck.tensors.push_back({"tokenizer", bytes_to_tensor(sp->serialized())});
  std::vector<std::vector<int64_t>> inputs;
  const int64_t U = model->options.num_users(), I = model->options.num_items(), S = model->options.num_scenarios();
  for (int64_t k = 0; k < 6; ++k) inputs.push_back({(k * 7919) % U, (k * 104729) % I, k % S});
  ck.golden = make_golden(inputs, golden_fn(model));
  if (serving.item_catalog.size() > 0 || ds.item_text.size() == 0) {
    add_serving_data(ck, serving);
  } else {  // an in-process bundle without its catalogue: the data set's
    ServingData sd;
    sd.histories = serving.histories;
    sd.item_catalog = ds.item_text;
    add_serving_data(ck, sd);
  }
  model->train(was_training);
  return ck;
}

UnifiedModel JointBundle::model_for(const std::string& task) {
  MTREC_CHECK(model, "joint bundle: no model");
  auto it = selected.find(task);
  if (it == selected.end() || !it->second.state) return model;
  auto c = copies_.find(it->second.state);
  if (c == copies_.end()) c = copies_.emplace(it->second.state, copy_with_state(model, *it->second.state)).first;
  return c->second;
}

JointReport JointBundle::evaluate(const Dataset& ds, const Interactions& known, const Interactions& eval) {
  return evaluate(ds, known, eval, eval_options());
}

JointReport JointBundle::evaluate(const Dataset& ds, const Interactions& known, const Interactions& eval,
                                  const JointEvalOptions& options) {
  // Tasks per state, in the order of the states' epochs (-1: the model's own), the same on
  // every rank: a sharded evaluation sums over ranks and must pair like with like.
  std::map<int, std::vector<std::string>> by_state;
  for (const Head h : model->options.tasks()) {
    auto it = selected.find(head_name(h));
    by_state[it == selected.end() || !it->second.state ? -1 : it->second.epoch].push_back(head_name(h));
  }
  if (by_state.size() <= 1 && by_state.count(-1)) return evaluate_joint(model, ds, known, eval, options);
  JointReport merged;
  for (const auto& [state, tasks] : by_state) {
    UnifiedModel m = model_for(tasks.front());
    const JointReport r = evaluate_joint(m, ds, known, eval, options);
    for (const std::string& t : tasks) {
      if (r.overall.count(t)) merged.overall[t] = r.overall.at(t);
      if (r.cold.count(t)) merged.cold[t] = r.cold.at(t);
      for (const auto& [scen, by_task] : r.per_scenario)
        if (by_task.count(t)) merged.per_scenario[scen][t] = by_task.at(t);
    }
  }
  return merged;
}

void JointBundle::set_histories(const Dataset& ds, const Interactions& known) {
  serving.histories = make_serving_data(ds, known, seed).histories;
}

JointBundle joint_from_checkpoint(const Checkpoint& checkpoint, const std::string& device) {
  require_task(checkpoint, "joint");
  Checkpoint ck = checkpoint;  // the tensors are shared: the copy is of names
  const nlohmann::json head = nlohmann::json::parse(model_config(ck));
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
  if (has_tok)
    b.tokenizer = std::make_shared<SentencePieceTokenizer>(
        SentencePieceTokenizer::from_serialized(tensor_to_bytes(ck.tensor("tokenizer"))));
  std::vector<std::vector<int64_t>> item_rows, user_rows;
  if (uo.text() != TextMode::None) {
    item_rows = rows_of(ck.tensor("item_tokens"), ck.tensor("item_token_mask"));
    if (ck.tensor("user_tokens").size(0) > 0)
      user_rows = rows_of(ck.tensor("user_tokens"), ck.tensor("user_token_mask"));
  }
  b.model = UnifiedModel(uo, enc, item_rows, user_rows, pad);
  b.model->to(choose_device(device));
  upgrade_unified_state(ck, uo);
  // The selected states are stored apart from the model's own (names "selected/e<epoch>/...").
  const auto states = take_keyed_states(ck.tensors, kSelectedPrefix);
  if (head.contains("selected"))
    for (const auto& [task, j] : head["selected"].items()) {
      TaskSelection sel{j.at("metric").get<std::string>(), j.at("value").get<double>(), j.at("epoch").get<int>(), {}};
      auto st = states.find(sel.epoch);
      if (st != states.end()) sel.state = st->second;
      b.selected[task] = sel;
    }
  load_module_state(*b.model, ck);
  b.model->eval();
  verify_golden(ck, golden_fn(b.model));
  b.serving = read_serving_data(ck);
  return b;
}

}  // namespace mtrec
