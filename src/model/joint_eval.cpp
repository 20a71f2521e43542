#include "mtrec/model/joint_eval.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "mtrec/core/check.h"
#include "mtrec/data/sampler.h"
#include "mtrec/eval/evaluator.h"
#include "mtrec/eval/metrics.h"
#include "mtrec/model/joint_data.h"
#include "mtrec/data/labels.h"
#include "mtrec/text/tokenizer.h"

namespace mtrec {

std::string JointReport::to_json() const {
  nlohmann::json j = {{"overall", overall}, {"per_scenario", per_scenario}, {"cold", cold}};
  return j.dump();
}

namespace {

/// NaN-free JSON numbers: a metric without data is left out.
void put(Metrics& m, const std::string& name, double v) {
  if (std::isfinite(v)) m[name] = v;
}

at::Tensor ids_tensor(const std::vector<int32_t>& v, const c10::Device& device) {
  return torch::tensor(std::vector<int64_t>(v.begin(), v.end()), torch::kInt64).to(device);
}

struct Context {
  UnifiedModel& model;
  const Dataset& ds;
  c10::Device device;
  at::Tensor user_vec;  // [U, d]: every user from its `known` history
};

/// CTR-labelled rows of `eval`: (user, item, scenario, label columns) and the scenario names.
struct CtrRows {
  std::vector<int32_t> user, item, scenario;
  std::vector<std::vector<float>> labels;  // [column][row]
};

CtrRows ctr_rows(const Dataset& ds, const Interactions& known, const Interactions& eval, const JointEvalOptions& o) {
  CtrRows r;
  r.labels.resize(o.ctr_columns().size());
  // The rules of JointSource: impressions are the negatives when the data has them; otherwise
  // the positives (rated >= ctr_min_rating) against sampled items the user has no row for.
  const int32_t imp = ds.behaviors.find("impression");
  auto add = [&](int32_t u, int32_t i, int32_t s, int16_t beh, bool pos) {
    r.user.push_back(u), r.item.push_back(i), r.scenario.push_back(s);
    r.labels[0].push_back(pos ? 1.f : 0.f);
    for (size_t c = 1; c < o.ctr_columns().size(); ++c)
      r.labels[c].push_back(pos && ds.behaviors.raw(beh) == o.ctr_columns()[c] ? 1.f : 0.f);
  };
  if (imp >= 0) {
    for (size_t j = 0; j < eval.size(); ++j)
      add(eval.user[j], eval.item[j], eval.scenario[j], eval.behavior[j], eval.behavior[j] != imp);
    return r;
  }
  Interactions pos = implicit_positives(ds, eval, o.ctr_min_rating());
  for (size_t j = 0; j < pos.size(); ++j) add(pos.user[j], pos.item[j], pos.scenario[j], pos.behavior[j], true);
  if (o.ctr_negatives() > 0) {
    // Negatives: items the user has no row for, in `known` or `eval` (protocol C's pool).
    Interactions all = known;
    for (size_t j = 0; j < eval.size(); ++j)
      all.push_back(eval.user[j], eval.item[j], eval.has_rating ? eval.rating[j] : 1.f,
                    eval.has_timestamp ? eval.timestamp[j] : 0, eval.scenario[j], eval.behavior[j]);
    NegativeSampler neg(all, ds.num_users(), ds.num_items(), NegativeSampler::Kind::Uniform, o.seed());
    for (size_t j = 0; j < pos.size(); ++j)
      for (int32_t i : neg.sample(pos.user[j], o.ctr_negatives())) add(pos.user[j], i, pos.scenario[j], 0, false);
  }
  return r;
}

/// Rating and CTR outputs of the model for rows (chunked).
std::pair<std::vector<float>, std::vector<std::vector<float>>> rank_rows(Context& c, const std::vector<int32_t>& u,
                                                                         const std::vector<int32_t>& i,
                                                                         const std::vector<int32_t>& s, int64_t bs) {
  std::vector<float> rating;
  std::vector<std::vector<float>> ctr;
  for (size_t a = 0; a < u.size(); a += size_t(bs)) {
    const size_t b = std::min(u.size(), a + size_t(bs));
    std::vector<int32_t> uu(u.begin() + long(a), u.begin() + long(b)), ii(i.begin() + long(a), i.begin() + long(b)),
        ss(s.begin() + long(a), s.begin() + long(b));
    at::Tensor ut = ids_tensor(uu, c.device);
    auto [r, p] =
        c.model->rank_outputs(ut, c.user_vec.index_select(0, ut), ids_tensor(ii, c.device), ids_tensor(ss, c.device));
    if (r.defined()) {
      r = r.to(torch::kFloat).cpu().contiguous();
      rating.insert(rating.end(), r.data_ptr<float>(), r.data_ptr<float>() + r.numel());
    }
    if (p.defined()) {
      p = p.to(torch::kFloat).cpu().t().contiguous();
      ctr.resize(size_t(p.size(0)));
      for (int64_t col = 0; col < p.size(0); ++col) {
        const float* d = p[col].data_ptr<float>();
        ctr[size_t(col)].insert(ctr[size_t(col)].end(), d, d + p.size(1));
      }
    }
  }
  return {rating, ctr};
}

// Sharded evaluation (JointEvalOptions::sharded) deals out the chunks the model runs on one
// process (256 users, batch_size rows) round-robin, so that every output is computed in the very
// batch it is computed in on one process: the reduced metrics equal one process's exactly.

/// Whether this process runs chunk `k`.
bool own(const JointEvalOptions& o, size_t k) { return o.shards() <= 1 || int(k % size_t(o.shards())) == o.shard(); }

/// Sums `v` over the shards (a no-op on one process).
void reduce(const JointEvalOptions& o, std::vector<double>& v) {
  if (o.shards() > 1) o.reduce()(v);
}

/// Sums a float tensor over the shards.
at::Tensor reduce(const JointEvalOptions& o, const at::Tensor& t) {
  if (o.shards() <= 1) return t;
  at::Tensor host = t.to(torch::kDouble).cpu().contiguous();
  std::vector<double> v(host.data_ptr<double>(), host.data_ptr<double>() + host.numel());
  reduce(o, v);
  return torch::tensor(v, torch::kDouble).view(t.sizes()).to(t.options());
}

/// rank_rows for every row: each shard runs its chunks of rows, the others' outputs are summed in
/// over zeros, so every shard ends with all of them.
std::pair<std::vector<float>, std::vector<std::vector<float>>> rank_rows(Context& c, const std::vector<int32_t>& u,
                                                                         const std::vector<int32_t>& i,
                                                                         const std::vector<int32_t>& s,
                                                                         const JointEvalOptions& o) {
  if (o.shards() <= 1) return rank_rows(c, u, i, s, o.batch_size());
  const auto& mo = c.model->options;
  const size_t n = u.size(), has_r = mo.has_task(Head::Rating) ? 1 : 0, bs = size_t(o.batch_size());
  const size_t cols = mo.has_task(Head::Ctr) ? size_t(mo.ctr_columns()) : 0;
  std::vector<double> all((has_r + cols) * n, 0.0);
  for (size_t a = 0, k = 0; a < n; a += bs, ++k) {
    if (!own(o, k)) continue;
    const size_t b = std::min(n, a + bs);
    auto [r, p] = rank_rows(c, std::vector<int32_t>(u.begin() + long(a), u.begin() + long(b)),
                            std::vector<int32_t>(i.begin() + long(a), i.begin() + long(b)),
                            std::vector<int32_t>(s.begin() + long(a), s.begin() + long(b)), o.batch_size());
    for (size_t j = a; j < b; ++j) {
      if (has_r) all[j] = r[j - a];
      for (size_t col = 0; col < cols; ++col) all[(has_r + col) * n + j] = p[col][j - a];
    }
  }
  reduce(o, all);
  std::vector<float> rating;
  std::vector<std::vector<float>> ctr(cols);
  if (has_r) rating.assign(all.begin(), all.begin() + long(n));
  for (size_t col = 0; col < cols; ++col)
    ctr[col].assign(all.begin() + long((has_r + col) * n), all.begin() + long((has_r + col + 1) * n));
  return {rating, ctr};
}

template <class Pred>
std::vector<size_t> rows_where(size_t n, Pred pred) {
  std::vector<size_t> r;
  for (size_t j = 0; j < n; ++j)
    if (pred(j)) r.push_back(j);
  return r;
}

template <class T>
std::vector<T> pick(const std::vector<T>& v, const std::vector<size_t>& rows) {
  std::vector<T> out;
  out.reserve(rows.size());
  for (size_t r : rows) out.push_back(v[r]);
  return out;
}

Metrics ctr_metric_set(const CtrRows& r, const std::vector<std::vector<float>>& p, const std::vector<size_t>& rows,
                       const std::vector<std::string>& columns) {
  Metrics m;
  if (rows.empty() || p.empty()) return m;
  auto prob = pick(p[0], rows), label = pick(r.labels[0], rows);
  put(m, "auc", auc(prob, label));
  put(m, "gauc", gauc(prob, label, pick(r.user, rows)));
  put(m, "logloss", logloss(prob, label));
  m["count"] = double(rows.size());
  for (size_t c = 1; c < columns.size() && c < p.size(); ++c)
    put(m, "auc/" + columns[c], auc(pick(p[c], rows), pick(r.labels[c], rows)));
  return m;
}

}  // namespace

at::Tensor score_catalogue(UnifiedModel& model, const Dataset& ds, const Interactions& known,
                           const std::vector<int32_t>& users, int32_t scenario, Head head, uint64_t seed) {
  torch::NoGradGuard g;
  model->eval();
  const c10::Device device = model->item_emb->weight.device();
  UserHistories hist(ds, known, ds.num_users(), seed, 0);
  const int64_t I = model->options.num_items();
  MTREC_CHECK(scenario >= 0 && scenario < model->options.num_scenarios(), "score_catalogue: scenario ", scenario,
              " outside [0, ", model->options.num_scenarios(), ")");
  // Users per chunk: about 256k (user, item) pairs through the experts at a time.
  const size_t step = std::max<size_t>(1, size_t(262144 / std::max<int64_t>(1, I)));
  std::vector<at::Tensor> rows;
  const at::Tensor table = model->item_vectors();  // once, not per chunk
  for (size_t a = 0; a < users.size(); a += step) {
    std::vector<int32_t> uu(users.begin() + long(a), users.begin() + long(std::min(users.size(), a + step)));
    at::Tensor ut = ids_tensor(uu, device);
    at::Tensor uv = model->user_vectors(ut, hist.pack(uu, model->options.max_history()).to(device), table, {}, {});
    at::Tensor scen = torch::full({int64_t(uu.size())}, int64_t(scenario), torch::kInt64).to(device);
    rows.push_back(model->catalogue_scores(head, ut, uv, scen, table).cpu());
  }
  return rows.empty() ? torch::zeros({0, I}) : torch::cat(rows, 0).to(torch::kFloat);
}

Interactions cold_targets(const Dataset& ds, const Interactions& eval, const std::vector<char>& cold_item) {
  Interactions pos = implicit_positives(ds, eval, 0);
  std::map<int32_t, size_t> first;  // user -> row
  for (size_t j = 0; j < pos.size(); ++j) {
    if (!cold_item.at(size_t(pos.item[j]))) continue;
    auto [it, fresh] = first.try_emplace(pos.user[j], j);
    if (!fresh && pos.has_timestamp && pos.timestamp[j] < pos.timestamp[it->second]) it->second = j;
  }
  std::vector<size_t> rows;
  for (const auto& [u, j] : first) rows.push_back(j);
  return pos.subset(rows);
}

ScoreFn within_items(std::vector<char> allowed, ScoreFn fn) {
  return [allowed = std::move(allowed), fn = std::move(fn)](int32_t u, const std::vector<int32_t>& items,
                                                            std::vector<float>& out) {
    fn(u, items, out);
    for (size_t j = 0; j < items.size(); ++j)
      if (!allowed[size_t(items[j])]) out[j] = -std::numeric_limits<float>::infinity();
  };
}

JointReport evaluate_joint(UnifiedModel& model, const Dataset& ds, const Interactions& known, const Interactions& eval,
                           const JointEvalOptions& o) {
  torch::NoGradGuard g;
  model->eval();
  model->refresh_text_cache();
  const auto& mo = model->options;
  const c10::Device device = model->item_emb->weight.device();
  const int32_t U = ds.num_users(), I = ds.num_items();
  MTREC_CHECK(U == mo.num_users() && I == mo.num_items(), "evaluate_joint: the data has ", U, " users and ", I,
              " items, the model ", mo.num_users(), " and ", mo.num_items());
  JointReport rep;
  auto scen_name = [&](int32_t s) { return s < ds.scenarios.size() ? ds.scenarios.raw(s) : std::to_string(s); };
  const at::Tensor seen_items = model->item_seen.cpu();
  auto cold = [&](int32_t i) { return !seen_items[i].item<bool>(); };

  // Every user's vector from its `known` history, once.
  // Histories and ranking targets are every engaged row (impressions aside, any star): the
  // interactions of protocols S and D; the CTR positive threshold only labels clicks.
  UserHistories hist(ds, known, U, o.seed(), 0);
  Context c{model, ds, device, {}};
  {
    // Sharded: this shard's chunks of users, then every shard has every vector (summed over zeros).
    auto chunk = [&](int32_t a) {
      std::vector<int32_t> uu;
      for (int32_t u = a; u < std::min(U, a + 256); ++u) uu.push_back(u);
      return model->user_vectors(ids_tensor(uu, device), hist.pack(uu, mo.max_history()).to(device));
    };
    std::vector<at::Tensor> parts;
    int64_t width = -1;
    for (int32_t a = 0, k = 0; a < U; a += 256, ++k) {
      parts.push_back(own(o, size_t(k)) ? chunk(a) : at::Tensor());
      if (parts.back().defined()) width = parts.back().size(1);
    }
    if (width < 0) width = chunk(0).size(1);  // more shards than chunks: this one only needs the width
    for (int32_t a = 0, k = 0; a < U; a += 256, ++k)
      if (!parts[size_t(k)].defined())
        parts[size_t(k)] = torch::zeros({std::min(U, a + 256) - a, width}, torch::TensorOptions().device(device));
    c.user_vec = reduce(o, torch::cat(parts, 0));
  }
  std::vector<char> cold_item(static_cast<size_t>(I));
  for (int32_t i = 0; i < I; ++i) cold_item[size_t(i)] = cold(i);

  if (mo.has_task(Head::Rating) && eval.has_rating) {
    Interactions r = explicit_ratings(ds, eval);
    std::vector<int32_t> s(r.scenario.begin(), r.scenario.end());
    auto pred = rank_rows(c, r.user, r.item, s, o).first;
    for (auto& p : pred) p = std::clamp(p, o.rating_min(), o.rating_max());
    auto metric = [&](const std::vector<size_t>& rows) {
      Metrics m;
      if (rows.empty()) return m;
      put(m, "rmse", rmse(pick(pred, rows), pick(r.rating, rows)));
      put(m, "mae", mae(pick(pred, rows), pick(r.rating, rows)));
      m["count"] = double(rows.size());
      return m;
    };
    rep.overall["rating"] = metric(rows_where(r.size(), [](size_t) { return true; }));
    for (int32_t sc = 0; sc < std::max<int32_t>(1, ds.scenarios.size()) && ds.scenarios.size() > 1; ++sc)
      rep.per_scenario[scen_name(sc)]["rating"] = metric(rows_where(r.size(), [&](size_t j) { return s[j] == sc; }));
  }

  if (mo.has_task(Head::Ctr)) {
    CtrRows r = ctr_rows(ds, known, eval, o);
    auto p = rank_rows(c, r.user, r.item, r.scenario, o).second;
    rep.overall["ctr"] = ctr_metric_set(r, p, rows_where(r.user.size(), [](size_t) { return true; }), o.ctr_columns());
    if (ds.scenarios.size() > 1)
      for (int32_t sc = 0; sc < ds.scenarios.size(); ++sc)
        rep.per_scenario[scen_name(sc)]["ctr"] = ctr_metric_set(
            r, p, rows_where(r.user.size(), [&](size_t j) { return r.scenario[j] == sc; }), o.ctr_columns());
    auto cold_rows = rows_where(r.user.size(), [&](size_t j) { return cold_item[size_t(r.item[j])] != 0; });
    if (!cold_rows.empty()) rep.cold["ctr"] = ctr_metric_set(r, p, cold_rows, o.ctr_columns());
  }

  // Ranking heads: the first positive of each user in `eval` is the target.
  const Interactions cold_tg = cold_targets(ds, eval, cold_item);
  for (Head head : {Head::NextItem, Head::Match}) {
    if (!mo.has_task(head)) continue;
    Interactions pos = implicit_positives(ds, eval, 0);
    std::vector<int64_t> first(size_t(U), -1);
    for (size_t j = 0; j < pos.size(); ++j) {
      int64_t& f = first[size_t(pos.user[j])];
      const bool earlier = f < 0 || (pos.has_timestamp && pos.timestamp[j] < pos.timestamp[size_t(f)]);
      if (earlier) f = int64_t(j);
    }
    std::vector<size_t> trows;
    std::vector<int32_t> tusers;
    for (int32_t u = 0; u < U; ++u)
      if (first[size_t(u)] >= 0) trows.push_back(size_t(first[size_t(u)])), tusers.push_back(u);
    if (trows.empty()) continue;
    Interactions targets = pos.subset(trows);
    // Scores of every target user against the catalogue, then a lookup for the evaluator. A
    // user's shard is that of its place among the target users (chunks of 256).
    std::vector<int32_t> scored;
    std::vector<int64_t> place(size_t(U), -1);
    for (size_t k = 0; k < tusers.size(); ++k) {
      place[size_t(tusers[k])] = int64_t(k);
      if (own(o, k / 256)) scored.push_back(tusers[k]);
    }
    std::vector<float> scores(scored.size() * size_t(I));
    std::vector<int64_t> row_of(size_t(U), -1);
    for (size_t a = 0; a < scored.size(); a += 256) {
      const size_t b = std::min(scored.size(), a + 256);
      at::Tensor ut = ids_tensor(std::vector<int32_t>(scored.begin() + long(a), scored.begin() + long(b)), device);
      at::Tensor uv = c.user_vec.index_select(0, ut);
      at::Tensor s = (head == Head::NextItem ? model->next_item_scores(uv) : model->match_scores(uv))
                         .to(torch::kFloat)
                         .cpu()
                         .contiguous();
      std::copy(s.data_ptr<float>(), s.data_ptr<float>() + s.numel(), scores.begin() + long(a * size_t(I)));
    }
    for (size_t k = 0; k < scored.size(); ++k) row_of[size_t(scored[k])] = int64_t(k);
    ScoreFn fn = [&](int32_t u, const std::vector<int32_t>& cand, std::vector<float>& out) {
      out.resize(cand.size());
      const float* row = scores.data() + size_t(row_of[size_t(u)]) * size_t(I);
      for (size_t j = 0; j < cand.size(); ++j) out[j] = row[cand[j]];
    };
    // Candidates: every item the user has not engaged with (an item only shown is a candidate).
    RankingEvaluator ev(implicit_positives(ds, known, 0), U, I, RankingOptions().ks({10}).seed(o.seed()));
    // HR and NDCG are means over users: each shard's sums over its users, summed.
    auto metric = [&](const Interactions& tg, const std::vector<size_t>& rows, const ScoreFn& f) {
      Metrics m;
      if (rows.empty()) return m;
      std::vector<size_t> mine;
      for (size_t j : rows)
        if (own(o, size_t(place[size_t(tg.user[j])]) / 256)) mine.push_back(j);
      std::vector<double> sums(3, 0.0);
      if (!mine.empty()) {
        RankingReport rr = ev.evaluate(tg.subset(mine), f);
        sums = {rr.at("HR@10") * double(rr.users), rr.at("NDCG@10") * double(rr.users), double(rr.users)};
      }
      reduce(o, sums);
      if (sums[2] == 0) return m;
      m["HR@10"] = sums[0] / sums[2];
      m["NDCG@10"] = sums[1] / sums[2];
      m["users"] = sums[2];
      return m;
    };
    rep.overall[head_name(head)] = metric(targets, rows_where(targets.size(), [](size_t) { return true; }), fn);
    if (ds.scenarios.size() > 1)
      for (int32_t sc = 0; sc < ds.scenarios.size(); ++sc)
        rep.per_scenario[scen_name(sc)][head_name(head)] =
            metric(targets, rows_where(targets.size(), [&](size_t j) { return targets.scenario[j] == sc; }), fn);
    if (cold_tg.size() > 0)
      rep.cold[head_name(head)] =
          metric(cold_tg, rows_where(cold_tg.size(), [](size_t) { return true; }), within_items(cold_item, fn));
  }

  if (mo.has_task(Head::Scenario) && eval.has_context && !o.context_rows().empty()) {
    std::vector<int64_t> count(size_t(std::max<int32_t>(1, ds.scenarios.size())), 0);
    for (size_t j = 0; j < known.size(); ++j) ++count[size_t(known.scenario[j])];
    const int32_t majority = int32_t(std::max_element(count.begin(), count.end()) - count.begin());
    // As in training: rows whose context has no token carry no scenario label.
    std::vector<size_t> rows = rows_where(eval.size(), [&](size_t j) {
      const int32_t c = eval.context[j];
      MTREC_CHECK(c < int32_t(o.context_rows().size()), "evaluate_joint: context id ", c, " outside the ",
                  o.context_rows().size(), " tokenised contexts");
      return c >= 0 && !o.context_rows()[size_t(c)].empty();
    });
    int64_t correct = 0, majority_correct = 0;
    for (size_t a = 0; a < rows.size(); a += size_t(o.batch_size())) {
      if (!own(o, a / size_t(o.batch_size()))) continue;
      const size_t b = std::min(rows.size(), a + size_t(o.batch_size()));
      std::vector<std::vector<int64_t>> toks;
      for (size_t k = a; k < b; ++k) {
        toks.push_back(o.context_rows()[size_t(eval.context[rows[k]])]);
      }
      BatchEncoding enc = make_batch(toks, model->pad_id);
      at::Tensor p = model->scenario_probs(enc.input_ids.to(device), enc.attention_mask.to(device).to(torch::kBool));
      at::Tensor pred = p.argmax(1).cpu();
      for (size_t k = a; k < b; ++k) {
        const int32_t truth = eval.scenario[rows[k]];
        correct += pred[int64_t(k - a)].item<int64_t>() == truth;
        majority_correct += truth == majority;
      }
    }
    std::vector<double> sums{double(correct), double(majority_correct)};
    reduce(o, sums);
    if (!rows.empty())
      rep.overall["scenario"] = {{"accuracy", sums[0] / double(rows.size())},
                                 {"majority_accuracy", sums[1] / double(rows.size())},
                                 {"count", double(rows.size())}};
  }
  return rep;
}

}  // namespace mtrec
