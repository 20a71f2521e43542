#include "mtrec/model/unified.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <future>

#include "../core/options_json.h"
#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/profile.h"
#include "mtrec/core/random.h"
#include "mtrec/nn/dropout.h"

namespace mtrec {

TextMode parse_text_mode(const std::string& name) {
  if (name == "none") return TextMode::None;
  if (name == "frozen") return TextMode::Frozen;
  MTREC_CHECK(name == "finetune", "unknown text mode '", name, "' (expected none|frozen|finetune)");
  return TextMode::Finetune;
}

const char* text_mode_name(TextMode m) {
  return m == TextMode::None ? "none" : m == TextMode::Frozen ? "frozen" : "finetune";
}

bool UnifiedOptions::has_task(Head head) const { return std::find(tasks_.begin(), tasks_.end(), head) != tasks_.end(); }

std::vector<Head> UnifiedOptions::expert_tasks() const {
  std::vector<Head> t;
  for (Head h : {Head::Rating, Head::Ctr})
    if (has_task(h)) t.push_back(h);
  return t;
}

void UnifiedOptions::validate() const {
  MTREC_CHECK(num_users_ > 0 && num_items_ > 0 && num_scenarios_ > 0,
              "unified model: users, items and scenarios must be > 0, got ", num_users_, ", ", num_items_, ", ",
              num_scenarios_);
  MTREC_CHECK(dim_ > 0 && max_history_ > 0 && ctr_columns_ > 0,
              "unified model: dim, max_history and ctr_columns must be > 0, got ", dim_, ", ", max_history_, ", ",
              ctr_columns_);
  MTREC_CHECK(!tasks_.empty(), "unified model: no task enabled");
  MTREC_CHECK(id_dropout_ >= 0 && id_dropout_ < 1, "unified model: id_dropout must be in [0, 1), got ", id_dropout_);
  MTREC_CHECK(match_temperature_ > 0, "unified model: match_temperature must be > 0, got ", match_temperature_);
  MTREC_CHECK(next_item_negatives_ >= 0, "unified model: next_item_negatives must be >= 0, got ", next_item_negatives_);
  MTREC_CHECK(text_refresh_every_ > 0, "unified model: text_refresh_every must be > 0, got ", text_refresh_every_);
  MTREC_CHECK(profile_refresh_every_ >= 0 && text_finetune_items_ >= 0 && scenario_rows_ >= 0,
              "unified model: profile_refresh_every, text_finetune_items and scenario_rows must be >= 0, got ",
              profile_refresh_every_, ", ", text_finetune_items_, ", ", scenario_rows_);
  if (text_ == TextMode::None)
    for (Head h : {Head::Scenario, Head::Mlm})
      MTREC_CHECK(!has_task(h), "unified model: task '", head_name(h), "' needs the text encoder (text mode is none)");
}

// The enum fields' JSON: their names (an unknown one throws, naming it).
void to_json(nlohmann::json& j, TextMode m) { j = text_mode_name(m); }
void from_json(const nlohmann::json& j, TextMode& m) { m = parse_text_mode(j.get<std::string>()); }
namespace nn {
void to_json(nlohmann::json& j, ExpertArch a) { j = expert_arch_name(a); }
void from_json(const nlohmann::json& j, ExpertArch& a) { a = parse_expert_arch(j.get<std::string>()); }
void to_json(nlohmann::json& j, ScenarioArch a) { j = scenario_arch_name(a); }
void from_json(const nlohmann::json& j, ScenarioArch& a) { a = parse_scenario_arch(j.get<std::string>()); }
}  // namespace nn

std::string unified_options_to_json(const UnifiedOptions& o) { return options_to_json(o).dump(); }

UnifiedOptions unified_options_from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    MTREC_FAIL("unified model options: not JSON (", e.what(), ")");
  }
  UnifiedOptions o;
  if (!j.contains("factor_terms")) o.factor_terms(false);  // written before the option: without them
  options_from_json(o, j, "unified model options");
  return o;
}

namespace {

/// Rows of real tokens as [N, L] int64 (pad_id after the text) and a bool mask; L is the
/// longest row (at least 1), capped at max_len.
std::pair<at::Tensor, at::Tensor> pad_rows(const std::vector<std::vector<int64_t>>& rows, int64_t n, int64_t max_len,
                                           int64_t pad_id) {
  int64_t L = 1;
  for (const auto& r : rows) L = std::max<int64_t>(L, static_cast<int64_t>(r.size()));
  L = std::min(L, max_len);
  at::Tensor ids = torch::full({n, L}, pad_id, torch::kInt64), mask = torch::zeros({n, L}, torch::kBool);
  auto a = ids.accessor<int64_t, 2>();
  auto m = mask.accessor<bool, 2>();
  for (size_t i = 0; i < rows.size(); ++i)
    for (int64_t t = 0; t < std::min<int64_t>(L, static_cast<int64_t>(rows[i].size())); ++t)
      a[int64_t(i)][t] = rows[i][size_t(t)], m[int64_t(i)][t] = true;
  return {ids, mask};
}

/// Whether work on `on`'s device may go to a second thread: allowed, on CPU, with a core spare.
bool second_thread(bool allowed, const at::Tensor& on) { return allowed && on.is_cpu() && spare_cpu_cores() > 0; }

/// `encode(rows, width)` over rows of similar length: sorted by `lengths` (stable), in chunks of
/// at most 128 rows, each encoded as wide as its longest row; the results (a row each) in the
/// original order. Rows (undefined: all of them, in order) fit in one call when there are few.
/// Padding never changes a row's result, and a batch in row order is as wide as its longest row:
/// a goodbooks-sized refresh took 1.2x (profiles) to 1.4x (items) as long, and the sequence
/// encoder ran two thirds padding (histories of 6.9 items on average, 20 at most).
/// `two`: every other chunk on a second thread (they alternate in length, so the halves are alike).
at::Tensor by_length(const at::Tensor& lengths, bool two,
                     const std::function<at::Tensor(const at::Tensor& rows, int64_t width)>& encode) {
  constexpr int64_t kChunk = 128;
  const int64_t n = lengths.size(0);
  auto [sorted, order] = lengths.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false);
  const at::Tensor ends = sorted.to(at::kCPU, at::kLong);  // one host read for every chunk's width
  const int64_t* len = ends.data_ptr<int64_t>();
  if (n <= kChunk) return encode(at::Tensor(), n > 0 ? len[n - 1] : 0);
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<at::Tensor> parts(static_cast<size_t>(chunks));
  auto run = [&](int64_t first, int64_t stride) {
    for (int64_t c = first; c < chunks; c += stride) {
      const int64_t begin = c * kChunk, size = std::min(kChunk, n - begin);
      parts[static_cast<size_t>(c)] = encode(order.narrow(0, begin, size), len[begin + size - 1]);
    }
  };
  if (two) {
    // An eval forward only reads the module; grad mode is per thread.
    auto other = std::async(std::launch::async, [&, grad = at::GradMode::is_enabled()] {
      at::AutoGradMode g(grad);
      run(1, 2);
    });
    run(0, 2);
    other.get();
  } else {
    run(0, 1);
  }
  at::Tensor back = torch::empty_like(order);  // the inverse permutation
  back.index_copy_(0, order, torch::arange(n, order.options()));
  return torch::cat(parts, 0).index_select(0, back);
}

}  // namespace

UnifiedModelImpl::UnifiedModelImpl(UnifiedOptions o, nn::TextEncoder encoder,
                                   const std::vector<std::vector<int64_t>>& item_rows,
                                   const std::vector<std::vector<int64_t>>& user_rows, int64_t pad)
    : options(std::move(o)), pad_id(pad), text(std::move(encoder)) {
  options.validate();
  MTREC_CHECK(options.text() == TextMode::None || text, "unified model: text mode ", text_mode_name(options.text()),
              " needs a text encoder");
  const int64_t I = options.num_items(), U = options.num_users();
  if (options.text() != TextMode::None) {
    MTREC_CHECK(static_cast<int64_t>(item_rows.size()) == I, "unified model: ", item_rows.size(),
                " item token rows for ", I, " items");
    MTREC_CHECK(user_rows.empty() || static_cast<int64_t>(user_rows.size()) == U, "unified model: ", user_rows.size(),
                " user token rows for ", U, " users (pass none when users have no text)");
    const int64_t max_len = text->options.max_len();
    std::tie(item_tokens, item_token_mask) = pad_rows(item_rows, I, max_len, pad_id);
    std::tie(user_tokens, user_token_mask) = pad_rows(user_rows, user_rows.empty() ? 0 : U, max_len, pad_id);
    for (const auto& r : item_rows)
      for (int64_t id : r)
        MTREC_CHECK(id >= 0 && id < text->options.vocab_size(), "unified model: item token id ", id,
                    " outside the vocabulary [0, ", text->options.vocab_size(), ")");
  } else {
    item_tokens = torch::zeros({0, 1}, torch::kInt64), item_token_mask = torch::zeros({0, 1}, torch::kBool);
    user_tokens = item_tokens.clone(), user_token_mask = item_token_mask.clone();
  }
  user_has_text = torch::zeros({U}, torch::kBool);
  if (user_tokens.size(0) == U && U > 0) user_has_text = user_token_mask.any(1);
  reset();
}

void UnifiedModelImpl::reset() {
  const auto& o = options;
  const int64_t d = o.dim(), U = o.num_users(), I = o.num_items(), S = o.num_scenarios();
  const int64_t sd = std::max<int64_t>(4, d / 4);
  const bool has_text = o.text() != TextMode::None;
  const int64_t td = has_text ? text->options.output_dim() : 0;
  if (has_text) register_module("text", text);
  auto table = [&](const char* name, int64_t n, int64_t w, double std, bool sparse = false) {
    auto e = register_module(name, torch::nn::Embedding(torch::nn::EmbeddingOptions(n, w).sparse(sparse)));
    torch::NoGradGuard g;
    if (std > 0)
      e->weight.normal_(0, std);
    else
      e->weight.zero_();
    return e;
  };
  // item_emb stays dense: the catalogue table (next_item, match) reads every row of it.
  user_emb = table("user_emb", U, d, 0.05, o.sparse_ids());
  item_emb = table("item_emb", I, d, 0.05);
  if (o.user_id_norm())
    user_id_ln = register_module("user_id_ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  if (o.has_task(Head::Rating))
    rating_mf = register_module("rating_mf", BiasedMF(BiasedMFOptions(U, I)
                                                          .dim(o.factor_terms() ? d : 0)
                                                          .init_std(0.05)
                                                          .global_mean(o.global_mean())
                                                          .sparse(o.sparse_ids())));
  scenario_emb = table("scenario_emb", S, sd, 0.05);
  position_emb = table("position_emb", o.max_history(), d, 0.05);
  if (has_text) {
    item_text_proj = register_module("item_text_proj", torch::nn::Linear(td, d));
    user_text_proj = register_module("user_text_proj", torch::nn::Linear(td, d));
    // Start the text part at the ID embedding's scale: pooled text vectors have unit-variance
    // coordinates, and at LibTorch's default scale the text (shared by every item of a topic)
    // drowned the IDs and the retrieval heads could not tell warm items apart.
    torch::NoGradGuard g;
    for (auto* p : {&item_text_proj, &user_text_proj}) {
      (*p)->weight.normal_(0, 0.05 / std::sqrt(double(td)));
      (*p)->bias.zero_();
    }
  }
  sequence = register_module(
      "sequence",
      nn::CausalTransformer(
          nn::CausalTransformerOptions(d).layers(o.seq_layers()).heads(o.seq_heads()).dropout(o.dropout())));
  const auto et = o.expert_tasks();
  const int64_t in_dim = 3 * d + sd;
  if (!et.empty()) {
    auto eo = nn::ExpertsOptions(in_dim, static_cast<int64_t>(et.size()))
                  .arch(o.arch())
                  .experts(o.experts())
                  .task_experts(o.task_experts())
                  .levels(o.levels())
                  .hidden(o.expert_hidden())
                  .dropout(o.dropout());
    experts = register_module("experts", nn::Experts(eo));
    scenario_layer = register_module(
        "scenario_layer",
        nn::ScenarioLayer(nn::ScenarioLayerOptions(in_dim, eo.out_dim(), static_cast<int64_t>(et.size()), S)
                              .arch(o.scenario_arch())));
    if (o.has_task(Head::Rating)) rating_out = register_module("rating_out", torch::nn::Linear(eo.out_dim(), 1));
    if (o.has_task(Head::Ctr)) ctr_out = register_module("ctr_out", torch::nn::Linear(eo.out_dim(), o.ctr_columns()));
  }
  if (o.factor_terms() && o.has_task(Head::Ctr)) {
    ctr_factors = register_module("ctr_factors", CtrFactors(U, I, d, o.sparse_ids()));
    ctr_factors->init(0.05);
  }
  if (o.has_task(Head::NextItem)) next_proj = register_module("next_proj", torch::nn::Linear(d, d));
  if (o.has_task(Head::Match)) {
    auto tower = [&] {
      return torch::nn::Sequential(torch::nn::Linear(d, d), torch::nn::ReLU(), torch::nn::Linear(d, d));
    };
    match_user = register_module("match_user", tower());
    match_item = register_module("match_item", tower());
  }
  if (o.has_task(Head::Scenario)) scenario_out = register_module("scenario_out", torch::nn::Linear(td, S));
  if (o.has_task(Head::Mlm))
    mlm = register_module("mlm",
                          MlmHead(text->options.dim(), text->options.vocab_size(), text->options.layer_norm_eps()));
  register_buffer("item_tokens", item_tokens);
  register_buffer("item_token_mask", item_token_mask);
  register_buffer("user_tokens", user_tokens);
  register_buffer("user_token_mask", user_token_mask);
  register_buffer("user_has_text", user_has_text);
  item_text_cache = register_buffer("item_text_cache", torch::zeros({has_text ? I : 0, td}));
  user_text_cache = register_buffer("user_text_cache", torch::zeros({user_tokens.size(0), td}));
  item_seen = register_buffer("item_seen", torch::ones({I}, torch::kBool));
  user_seen = register_buffer("user_seen", torch::ones({U}, torch::kBool));
  train_steps = register_buffer("train_steps", torch::zeros({1}, torch::kInt64));
  refresh_text_cache();
}

at::Tensor UnifiedModelImpl::encode_texts(const at::Tensor& tokens, const at::Tensor& mask,
                                          nn::TextEncoderImpl* encoder, bool split) {
  nn::TextEncoderImpl& enc = encoder != nullptr ? *encoder : *text;
  const bool two = split && second_thread(use_spare_core, tokens);
  MTREC_ASSERT(!two || (!at::GradMode::is_enabled() && !enc.is_training()),
               "encode_texts: a split encoding must be without gradient and in eval mode");
  return by_length(mask.sum(1), two, [&](const at::Tensor& rows, int64_t width) {
    // Only the first `width` columns hold tokens; an empty row keeps its first position as a
    // real token so that attention never sees an all-masked row (its vector is masked later).
    const int64_t L = std::max<int64_t>(1, width);
    at::Tensor t = rows.defined() ? tokens.index_select(0, rows) : tokens;
    at::Tensor m = (rows.defined() ? mask.index_select(0, rows) : mask).narrow(1, 0, L).clone();
    m.select(1, 0).fill_(true);
    return enc.forward(t.narrow(1, 0, L), m).pooled;
  });
}

nn::TextEncoderImpl& UnifiedModelImpl::profile_encoder() {
  if (!profile_encoder_) {
    // Built from the options; its initial draws must not move the generator (the run would
    // then differ from one without this thread, and a resumed run from an uninterrupted one).
    keeping_cpu_generator([&] { profile_encoder_ = nn::TextEncoder(text->options); });
    profile_encoder_->eval();
  }
  // The same tensors as `text` (the optimiser updates them in place; aliasing each step also
  // follows a move to another device or a load).
  torch::NoGradGuard g;
  auto alias = [](std::vector<at::Tensor> to, const std::vector<at::Tensor>& from) {
    MTREC_ASSERT(to.size() == from.size(), "profile encoder: ", to.size(), " tensors for ", from.size());
    for (size_t i = 0; i < to.size(); ++i) to[i].set_data(from[i]);
  };
  alias(profile_encoder_->parameters(), text->parameters());
  alias(profile_encoder_->buffers(), text->buffers());
  return *profile_encoder_;
}

void UnifiedModelImpl::refresh_text_cache() { refresh_caches(true, true); }

void UnifiedModelImpl::refresh_caches(bool items, bool users) {
  if (options.text() == TextMode::None || (!items && !users)) return;
  MTREC_PROFILE("text cache refresh");
  torch::NoGradGuard g;
  const bool was_training = text->is_training();
  text->eval();
  auto fill = [&](const at::Tensor& tokens, const at::Tensor& mask, at::Tensor& cache) {
    if (tokens.size(0) > 0) cache.copy_(encode_texts(tokens, mask, nullptr, /*split=*/true));
  };
  if (items) {
    MTREC_PROFILE("items");
    fill(item_tokens, item_token_mask, item_text_cache);
  }
  if (users) {
    MTREC_PROFILE("profiles");
    fill(user_tokens, user_token_mask, user_text_cache);
  }
  text->train(was_training);
}

at::Tensor UnifiedModelImpl::text_vectors(bool items, const at::Tensor& ids) {
  at::Tensor& cache = items ? item_text_cache : user_text_cache;
  if (!items && is_training() && options.profile_refresh_every() == 0) {
    // The batch's profiles, encoded as a refresh would encode them now (eval mode, no gradient):
    // about 500 a step where refreshing every user's profile every text_refresh_every steps
    // cost 1,070 a step at goodbooks size, and never stale.
    // The eval-mode twin of the encoder, so that `text` stays in training mode (and this can
    // run on a second thread beside it: forward()).
    MTREC_PROFILE("profile encoder");
    torch::NoGradGuard g;
    return encode_texts(user_tokens.index_select(0, ids), user_token_mask.index_select(0, ids), &profile_encoder());
  }
  // Profiles never carry gradient (above, or the cache with profile_refresh_every > 0): encoding
  // every user of a batch with gradient too nearly doubled the step.
  if (items && options.text() == TextMode::Finetune && is_training()) {
    const at::Tensor& tok = items ? item_tokens : user_tokens;
    const at::Tensor& msk = items ? item_token_mask : user_token_mask;
    // Not written back: these are drawn with dropout, and a catalogue table mixing noisy fresh
    // rows (always the batch's targets) with clean cached ones taught the retrieval heads to
    // spot the noise instead of the item. The cache is refreshed in eval mode instead.
    MTREC_PROFILE("text encoder");
    const int64_t n = ids.size(0), k = options.text_finetune_items();
    if (k == 0 || n <= k) return encode_texts(tok.index_select(0, ids), msk.index_select(0, ids));
    // The towers read every item from the cache, and a random k of them carry the gradient of
    // a fresh encoding, scaled by n / k (value cache + (fresh - fresh)·n/k): the encoder gets an
    // unbiased estimate of the full gradient from a sample of the batch's items, while the
    // towers see the vectors evaluation sees.
    at::Tensor pick = torch::randperm(n, ids.options()).narrow(0, 0, k);
    at::Tensor sel = ids.index_select(0, pick);
    at::Tensor fresh = encode_texts(tok.index_select(0, sel), msk.index_select(0, sel));
    return cache.index_select(0, ids).index_add(0, pick, (fresh - fresh.detach()) * (double(n) / double(k)));
  }
  return cache.index_select(0, ids);
}

at::Tensor UnifiedModelImpl::item_vectors() {
  at::Tensor table = item_emb->weight * item_seen.unsqueeze(1).to(item_emb->weight.scalar_type());
  if (options.text() == TextMode::None) return table;
  return table + item_text_proj(item_text_cache);
}

at::Tensor UnifiedModelImpl::user_vec(const at::Tensor& users, const at::Tensor& history, const at::Tensor& table,
                                      bool drop_ids, const at::Tensor& profiles) {
  const auto fopt = table.options();
  at::Tensor known = users >= 0;
  at::Tensor uid = users.clamp_min(0);
  at::Tensor keep = (known & user_seen.index_select(0, uid)).to(fopt.dtype());
  if (drop_ids && options.id_dropout() > 0)
    keep = keep * torch::bernoulli(torch::full({users.size(0)}, 1 - options.id_dropout(), fopt));
  at::Tensor u = (user_id_ln ? user_id_ln(user_emb(uid)) : user_emb(uid)) * keep.unsqueeze(1);
  if (options.text() != TextMode::None && user_tokens.size(0) > 0) {
    auto [uniq, inv] = at::_unique(uid, /*sorted=*/true, /*return_inverse=*/true);
    at::Tensor tv = user_text_proj(profiles.defined() ? profiles : text_vectors(false, uniq)).index_select(0, inv);
    at::Tensor has = (known & user_has_text.index_select(0, uid)).to(fopt.dtype());
    u = u + tv * has.unsqueeze(1);
  }
  // The causal sequence encoder over the recent items; right-aligned, so the last column is
  // the latest item and positions count back from it.
  MTREC_PROFILE("sequence encoder");
  at::Tensor h = history;
  if (h.size(1) > options.max_history()) h = h.narrow(1, h.size(1) - options.max_history(), options.max_history());
  // Rows with the same history (a positive and its sampled negatives, a session's exposures)
  // share one state: the encoder runs once per distinct history (dropout noise is shared too).
  auto [uh, inv, counts] = at::unique_dim(h, 0, /*sorted=*/false, /*return_inverse=*/true, /*return_counts=*/false);
  const int64_t L = uh.size(1), d = table.size(1);
  const at::Tensor full = torch::cat({torch::zeros({1, d}, fopt), table}, 0);
  // Histories of similar length together, each chunk only as wide as its longest: the left
  // padding of a right-aligned row never changes its last state.
  // A row's span: from its first item to the end (a gap inside it stays inside).
  const at::Tensor any = uh > 0;
  const at::Tensor span = torch::where(any.any(1), L - any.to(at::kByte).argmax(1), torch::zeros_like(uh.select(1, 0)));
  at::Tensor seq = by_length(span, false, [&](const at::Tensor& rows, int64_t width) {
    const int64_t w = std::max<int64_t>(1, width);
    const at::Tensor hh = (rows.defined() ? uh.index_select(0, rows) : uh).narrow(1, L - w, w);
    const at::Tensor valid = hh > 0;
    at::Tensor x = full.index_select(0, hh.reshape({-1})).view({hh.size(0), w, d});
    const at::Tensor pos = torch::arange(w - 1, -1, -1, users.options());
    x = (x + position_emb(pos).unsqueeze(0)) * valid.unsqueeze(2).to(fopt.dtype());
    if (is_training() && options.dropout() > 0) x = nn::apply_dropout(x, options.dropout(), true);
    return sequence(x, valid).select(1, w - 1);
  });
  return u + seq.index_select(0, inv);
}

at::Tensor UnifiedModelImpl::cross(const at::Tensor& uvec, const at::Tensor& ivec, const at::Tensor& scenarios,
                                   std::vector<at::Tensor>* per_task) {
  at::Tensor x = torch::cat({uvec, ivec, uvec * ivec, scenario_emb(scenarios)}, 1);
  x = scenario_layer(x, scenarios);
  nn::ExpertsOutput eo = experts(x);
  per_task->clear();
  for (size_t t = 0; t < eo.task.size(); ++t)
    per_task->push_back(scenario_layer->task(static_cast<int64_t>(t), eo.task[t], scenarios));
  return x;
}

UnifiedModelImpl::RankingOutputs UnifiedModelImpl::ranking_heads(const std::vector<at::Tensor>& h,
                                                                 const at::Tensor& users, const at::Tensor& items,
                                                                 const at::Tensor& bias_keep,
                                                                 const at::Tensor& user_keep,
                                                                 const at::Tensor& item_keep) {
  MTREC_ASSERT(h.size() == options.expert_tasks().size(), "ranking_heads: ", h.size(), " expert outputs for ",
               options.expert_tasks().size(), " ranking heads");
  RankingOutputs out;
  size_t t = 0;
  if (options.has_task(Head::Rating)) {
    // The deep tower + the rating head's biased MF: mu + b_u + b_i + <p_u, q_i>.
    BiasedMFImpl::Terms mf = rating_mf->terms(users, items);
    out.rating = rating_out(h[t++]).squeeze(1) + rating_mf->global_mean + mf.user_bias * bias_keep + mf.item_bias;
    if (options.factor_terms()) out.rating = out.rating + mf.dot * user_keep * item_keep;
    out.rating_l2 = mf.l2;
  }
  if (options.has_task(Head::Ctr)) {
    // The deep tower + the CTR head's <u, i> + b_i, on every label column.
    out.ctr_logit = ctr_out(h[t++]);
    if (ctr_factors) {
      auto [dot, bias] = ctr_factors->terms(users, items);
      out.ctr_logit = out.ctr_logit + (dot * user_keep * item_keep + bias * item_keep).unsqueeze(1);
    }
  }
  return out;
}

Outputs UnifiedModelImpl::forward(const Batch& b) {
  const auto& o = options;
  Outputs out;
  const bool training = is_training();
  if (training) {
    train_steps.add_(1);
    if (o.text() != TextMode::None) {
      int64_t step = 0;
      {
        MTREC_PROFILE("host syncs");
        step = train_steps.item<int64_t>();
      }
      const int64_t profiles = o.profile_refresh_every();
      refresh_caches(step % o.text_refresh_every() == 0, profiles > 0 && step % profiles == 0);
    }
  }
  const at::Tensor& users = b.at("user");
  const at::Tensor& items = b.at("item");
  const bool ranking = o.has_task(Head::Rating) || o.has_task(Head::Ctr);
  const bool user_rows = ranking || o.has_task(Head::NextItem) || o.has_task(Head::Match);
  // The batch's profiles (encoded fresh each step, in eval mode, without gradient) on a spare
  // core while this thread encodes the contexts, the MLM texts and the items: 41 of 347 ms a
  // goodbooks-sized step otherwise.
  std::future<at::Tensor> profiles;
  if (user_rows && training && o.text() != TextMode::None && o.profile_refresh_every() == 0 &&
      user_tokens.size(0) > 0 && second_thread(use_spare_core, users)) {
    const at::Tensor uniq = std::get<0>(at::_unique(users.clamp_min(0), /*sorted=*/true));
    profile_encoder();  // built here, not there: building saves and restores this thread's generator
    profiles = std::async(std::launch::async, [this, uniq] { return text_vectors(false, uniq); });
  }
  if (o.has_task(Head::Scenario) && b.has("context_ids")) {
    MTREC_PROFILE("scenario");
    at::Tensor idx = b.mask("scenario").nonzero().squeeze(1);
    if (training && o.scenario_rows() > 0 && idx.size(0) > o.scenario_rows())  // a random share of them
      idx = idx.index_select(0, torch::randperm(idx.size(0), idx.options()).narrow(0, 0, o.scenario_rows()));
    at::Tensor ids = b.at("context_ids").index_select(0, idx), m = b.at("context_mask").index_select(0, idx);
    if (idx.numel()) {
      // Many rows of a batch share a context (a session's query or page): encode each once.
      auto [uniq, inv, counts] = at::unique_dim(ids.masked_fill(m.logical_not(), pad_id), 0, true, true, false);
      at::Tensor um = uniq.ne(pad_id);
      out["scenario/logits"] = scenario_out(encode_texts(uniq, um)).index_select(0, inv);
    } else {
      // No context in this batch: an empty output that keeps the graph (a zero loss backpropagates).
      out["scenario/logits"] =
          torch::zeros({0, o.num_scenarios()}, item_emb->weight.options()) + scenario_out->weight.sum() * 0;
    }
    out["scenario/target"] = b.at("scenario").index_select(0, idx);
  }
  if (o.has_task(Head::Mlm) && b.has("mlm/input_ids")) {
    MTREC_PROFILE("mlm");
    at::Tensor hidden = text->encode(b.at("mlm/input_ids"), b.at("mlm/attention_mask"));
    const at::Tensor& sel = b.at("mlm/selected");
    out["mlm/logits"] = mlm(hidden.index({sel}), text->token_embedding_weight());
    out["mlm/targets"] = b.at("mlm/labels").index({sel});
  }
  if (user_rows) {
    const at::Tensor& scen = b.at("scenario");
    if (scen.numel()) {
      MTREC_PROFILE("host syncs");
      const int64_t lo = scen.min().item<int64_t>(), hi = scen.max().item<int64_t>();
      MTREC_CHECK(lo >= 0 && hi < o.num_scenarios(), "unified model: scenario ids must be in [0, ", o.num_scenarios(),
                  "), the batch has ", lo, "..", hi);
    }
    // The catalogue table (history items, next-item and match) reads the text cache; the
    // batch's own items are encoded fresh (with gradient when fine-tuning) for the ranking
    // towers, once per distinct item.
    at::Tensor table;
    {
      MTREC_PROFILE("item table");
      table = item_vectors();
    }
    at::Tensor keep = item_seen.index_select(0, items).to(table.scalar_type());
    if (training && o.id_dropout() > 0)  // the towers must also score from text alone (cold start)
      keep = keep * torch::bernoulli(torch::full({items.size(0)}, 1 - o.id_dropout(), table.options()));
    at::Tensor ivec = item_emb(items) * keep.unsqueeze(1);
    at::Tensor item_keep = keep;
    if (o.text() != TextMode::None) {
      auto [uniq, inv] = at::_unique(items, /*sorted=*/true, /*return_inverse=*/true);
      ivec = ivec + item_text_proj(text_vectors(true, uniq)).index_select(0, inv);
    }
    at::Tensor uvec;
    {
      MTREC_PROFILE("user vector");
      at::Tensor pv;
      if (profiles.valid()) {
        MTREC_PROFILE("profile encoder (wait)");
        pv = profiles.get();
      }
      uvec = user_vec(users, b.at("history"), table, training, pv);
    }
    if (ranking) {
      MTREC_PROFILE("experts and towers");
      std::vector<at::Tensor> h;
      cross(uvec, ivec, scen, &h);
      at::Tensor user_keep;
      if (o.factor_terms()) {  // the factor terms drop IDs as the representations do (cold start)
        user_keep = user_seen.index_select(0, users).to(table.scalar_type());
        if (training && o.id_dropout() > 0)
          user_keep = user_keep * torch::bernoulli(torch::full({users.size(0)}, 1 - o.id_dropout(), table.options()));
      }
      RankingOutputs r = ranking_heads(h, users, items, torch::ones_like(item_keep), user_keep, item_keep);
      if (r.rating.defined()) out["rating"] = r.rating, out["rating_l2"] = r.rating_l2;
      if (r.ctr_logit.defined()) out["ctr_logit"] = r.ctr_logit;
    }
    if (o.has_task(Head::NextItem)) {
      MTREC_PROFILE("next_item");
      at::Tensor idx = b.mask("next_item").defined() ? b.mask("next_item").nonzero().squeeze(1)
                                                     : torch::arange(users.size(0), users.options());
      out["next_item/hidden"] = next_proj(uvec.index_select(0, idx));
      out["next_item/target"] = items.index_select(0, idx);
      out["next_item/table"] = table;
    }
    if (o.has_task(Head::Match)) {
      MTREC_PROFILE("match");
      at::Tensor idx = b.mask("match").defined() ? b.mask("match").nonzero().squeeze(1)
                                                 : torch::arange(users.size(0), users.options());
      auto [mi, minv] = at::_unique(items.index_select(0, idx), true, true);
      at::Tensor qu = torch::nn::functional::normalize(match_user->forward(uvec.index_select(0, idx)),
                                                       torch::nn::functional::NormalizeFuncOptions().dim(1));
      at::Tensor qi = torch::nn::functional::normalize(match_item->forward(table.index_select(0, mi)),
                                                       torch::nn::functional::NormalizeFuncOptions().dim(1));
      out["match/logits"] = torch::matmul(qu, qi.t()) / o.match_temperature();
      out["match/target"] = minv;
    }
  }
  return out;
}

at::Tensor UnifiedModelImpl::user_vectors(const at::Tensor& users, const at::Tensor& history) {
  return user_vec(users, history, item_vectors(), false);
}
bool UnifiedModelImpl::has_profile_text() const { return options.text() != TextMode::None && user_tokens.size(0) > 0; }
at::Tensor UnifiedModelImpl::user_vectors(const at::Tensor& users, const at::Tensor& history, const at::Tensor& table,
                                          const at::Tensor& profile_ids, const at::Tensor& profile_mask) {
  at::Tensor u = user_vec(users, history, table, false);
  if (!profile_ids.defined() || profile_ids.numel() == 0) return u;
  MTREC_CHECK(has_profile_text(), "unified model: trained without user profile texts; a profile cannot be scored");
  MTREC_CHECK(profile_ids.size(0) == users.size(0), "user_vectors: ", profile_ids.size(0), " profile rows for ",
              users.size(0), " users");
  // Only unknown users with a real profile row take it (a known user's profile is its own).
  at::Tensor take = ((users < 0) & (profile_mask.sum(1) > 0)).to(u.scalar_type());
  return u + user_text_proj(encode_texts(profile_ids, profile_mask)) * take.unsqueeze(1);
}
std::pair<at::Tensor, at::Tensor> UnifiedModelImpl::rank_outputs(const at::Tensor& users, const at::Tensor& uvec,
                                                                 const at::Tensor& items, const at::Tensor& scenarios,
                                                                 const at::Tensor& table) {
  MTREC_CHECK(experts, "unified model: neither rating nor ctr is enabled");
  at::Tensor ivec = (table.defined() ? table : item_vectors()).index_select(0, items);
  std::vector<at::Tensor> h;
  cross(uvec, ivec, scenarios, &h);
  const at::Tensor uid = users.clamp_min(0);
  const at::Tensor user_keep = ((users >= 0) & user_seen.index_select(0, uid)).to(uvec.scalar_type());
  const at::Tensor item_keep = item_seen.index_select(0, items).to(uvec.scalar_type());
  RankingOutputs r = ranking_heads(h, uid, items, (users >= 0).to(uvec.scalar_type()), user_keep, item_keep);
  return {r.rating, r.ctr_logit.defined() ? torch::sigmoid(r.ctr_logit) : r.ctr_logit};
}
at::Tensor UnifiedModelImpl::catalogue_scores(Head head, const at::Tensor& users, const at::Tensor& uvec,
                                              const at::Tensor& scenarios, const at::Tensor& table_in) {
  MTREC_CHECK(head != Head::Scenario && head != Head::Mlm, "catalogue_scores: head '", head_name(head),
              "' does not score items (expected ctr|rating|next_item|match)");
  MTREC_CHECK(options.has_task(head), "catalogue_scores: head '", head_name(head), "' is not enabled in this model");
  const at::Tensor table = table_in.defined() ? table_in : item_vectors();
  if (head == Head::NextItem) return torch::matmul(next_item_queries(uvec), table.t());
  if (head == Head::Match) return torch::matmul(match_queries(uvec), match_table(table).t());
  // Rating and CTR score (user, item) pairs: every user against every item, user-major.
  const int64_t n = uvec.size(0), I = table.size(0);
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(uvec.device());
  const at::Tensor rep = torch::arange(n, i64).repeat_interleave(I);
  auto [r, p] = rank_outputs(users.index_select(0, rep), uvec.index_select(0, rep), torch::arange(I, i64).repeat({n}),
                             scenarios.index_select(0, rep), table);
  return (head == Head::Ctr ? p.select(1, 0) : r).view({n, I});
}
at::Tensor UnifiedModelImpl::next_item_queries(const at::Tensor& uvec) {
  MTREC_CHECK(next_proj, "unified model: next_item is not enabled");
  return next_proj(uvec);
}
at::Tensor UnifiedModelImpl::match_queries(const at::Tensor& uvec) {
  MTREC_CHECK(match_user, "unified model: match is not enabled");
  namespace F = torch::nn::functional;
  return F::normalize(match_user->forward(uvec), F::NormalizeFuncOptions().dim(1));
}
at::Tensor UnifiedModelImpl::match_table(const at::Tensor& table) {
  MTREC_CHECK(match_item, "unified model: match is not enabled");
  namespace F = torch::nn::functional;
  return F::normalize(match_item->forward(table), F::NormalizeFuncOptions().dim(1));
}
at::Tensor UnifiedModelImpl::next_item_scores(const at::Tensor& uvec) {
  return torch::matmul(next_item_queries(uvec), item_vectors().t());
}
at::Tensor UnifiedModelImpl::match_scores(const at::Tensor& uvec) {
  return torch::matmul(match_queries(uvec), match_table(item_vectors()).t());
}
at::Tensor UnifiedModelImpl::scenario_probs(const at::Tensor& ids, const at::Tensor& mask) {
  MTREC_CHECK(scenario_out, "unified model: the scenario classifier is not enabled");
  return torch::softmax(scenario_out(encode_texts(ids, mask)), 1);
}

void UnifiedModelImpl::set_seen(const std::vector<int32_t>& items, const std::vector<int32_t>& users) {
  torch::NoGradGuard g;
  item_seen.zero_(), user_seen.zero_();
  auto mark = [](at::Tensor& flags, const std::vector<int32_t>& ids) {
    if (ids.empty()) return;
    at::Tensor t = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64).to(flags.device());
    const int64_t lo = t.min().item<int64_t>(), hi = t.max().item<int64_t>();
    MTREC_CHECK(lo >= 0 && hi < flags.size(0), "unified model: seen ids ", lo, "..", hi, " outside [0, ", flags.size(0),
                ")");
    flags.index_fill_(0, t, true);
  };
  mark(item_seen, items);
  mark(user_seen, users);
}

std::vector<at::Tensor> UnifiedModelImpl::shared_parameters() {
  return experts ? experts->last_shared_parameters() : std::vector<at::Tensor>{};
}

void upgrade_unified_state(Checkpoint& ck, const UnifiedOptions& o) {
  auto& ts = ck.tensors;
  auto find = [&](const std::string& name) {
    return std::find_if(ts.begin(), ts.end(), [&](const auto& t) { return t.first == name; });
  };
  if (find("user_bias.weight") != ts.end()) {
    if (o.has_task(Head::Rating)) {
      // [factors | bias] per side, as BiasedMF keeps them; no factors without factor_terms.
      auto side = [&](const char* bias, const char* factors) {
        at::Tensor b = find(bias)->second;
        auto f = find(factors);
        return torch::cat({f != ts.end() ? f->second : b.new_zeros({b.size(0), 0}), b}, 1);
      };
      at::Tensor user = side("user_bias.weight", "mf_user.weight"), item = side("item_bias.weight", "mf_item.weight");
      ts.emplace_back("rating_mf.user_table.weight", user);
      ts.emplace_back("rating_mf.item_table.weight", item);
      ts.emplace_back("rating_mf.global_mean", torch::full({1}, o.global_mean()));
    }
    for (const char* old : {"user_bias.weight", "item_bias.weight", "mf_user.weight", "mf_item.weight"}) {
      auto it = find(old);
      if (it != ts.end()) ts.erase(it);
    }
  }
  upgrade_ctr_factor_names(ck, "ctr_user", "ctr_item", "ctr_item_bias", "ctr_factors.");
}

torch::nn::Module& UnifiedEngineModel::module() { return *model_; }
std::vector<std::string> UnifiedEngineModel::sparse_parameters() const {
  std::vector<std::string> names;
  if (!model_->options.sparse_ids()) return names;
  for (const auto& p : model_->named_parameters(true))
    for (const char* table : {"user_emb.", "rating_mf.", "ctr_factors."})
      if (p.key().rfind(table, 0) == 0) names.push_back(p.key());
  return names;
}
Outputs UnifiedEngineModel::forward(const Batch& batch) { return model_->forward(batch); }

}  // namespace mtrec
