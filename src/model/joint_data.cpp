#include "mtrec/model/joint_data.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "mtrec/core/check.h"
#include "mtrec/core/random.h"
#include "mtrec/data/split.h"
#include "mtrec/data/labels.h"
#include "mtrec/tasks/next_item.h"
#include "mtrec/text/tokenizer.h"

namespace mtrec {
namespace {

/// Which rows of `x` a label view of tasks/labels.h keeps. The view runs on a copy whose user
/// column holds row numbers, so that its rule stays written in one place.
template <typename View>
std::vector<uint8_t> rows_kept(const Interactions& x, View&& view) {
  MTREC_CHECK(x.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()), "joint data: ", x.size(),
              " rows are more than an int32 row number holds");
  Interactions numbered;  // the columns a view reads (behaviour, rating), not the others' bytes
  numbered.has_rating = x.has_rating;
  numbered.user.resize(x.size());
  for (size_t r = 0; r < x.size(); ++r) numbered.user[r] = static_cast<int32_t>(r);
  numbered.item.assign(x.size(), 0);
  numbered.scenario.assign(x.size(), 0);
  numbered.behavior = x.behavior;
  numbered.rating = x.rating;
  std::vector<uint8_t> kept(x.size(), 0);
  for (int32_t r : view(numbered).user) kept[static_cast<size_t>(r)] = 1;
  return kept;
}

/// Per user, the rows of `x` in time order (user_sequences' seeded ties), or in row order
/// without timestamps.
std::vector<std::vector<size_t>> time_order(const Interactions& x, int32_t num_users, uint64_t seed) {
  if (x.has_timestamp) return user_sequences(x, num_users, seed);
  std::vector<std::vector<size_t>> seq(static_cast<size_t>(num_users));
  for (size_t r = 0; r < x.size(); ++r) {
    const int32_t u = x.user[r];
    MTREC_CHECK(u >= 0 && u < num_users, "interaction ", r, " has user id ", u, " outside [0, ", num_users, ")");
    seq[static_cast<size_t>(u)].push_back(r);
  }
  return seq;
}

std::vector<uint8_t> positive_rows(const Dataset& ds, const Interactions& x, float min_rating) {
  return rows_kept(x, [&](const Interactions& y) { return implicit_positives(ds, y, min_rating); });
}

const std::vector<int32_t> kNoHistory;

}  // namespace

// ---------------------------------------------------------------------------------------------
// UserHistories

UserHistories::UserHistories(const Dataset& ds, const Interactions& x, int32_t num_users, uint64_t seed,
                             float min_rating) {
  x.check_consistent();
  MTREC_CHECK(num_users >= 0, "UserHistories: num_users must be >= 0, got ", num_users);
  const auto positive = positive_rows(ds, x, min_rating);
  const auto seq = time_order(x, num_users, seed);
  items_.resize(static_cast<size_t>(num_users));
  for (size_t u = 0; u < seq.size(); ++u)
    for (size_t r : seq[u])
      if (positive[r]) items_[u].push_back(x.item[r]);
}

const std::vector<int32_t>& UserHistories::items(int32_t user) const {
  MTREC_CHECK(user >= 0 && user < num_users(), "UserHistories: user ", user, " outside [0, ", num_users(), ")");
  return items_[static_cast<size_t>(user)];
}

at::Tensor UserHistories::pack(const std::vector<int32_t>& users, int64_t max_len) const {
  std::vector<const std::vector<int32_t>*> h;
  h.reserve(users.size());
  for (int32_t u : users) h.push_back(u == -1 ? &kNoHistory : &items(u));
  return pack_histories(h, max_len);
}

// ---------------------------------------------------------------------------------------------
// JointSource

JointSource::JointSource(const Dataset& ds, const Interactions& train, JointDataOptions options,
                         std::vector<std::vector<int64_t>> context_rows, std::vector<std::vector<int64_t>> mlm_rows,
                         int64_t pad_id, std::optional<MlmOptions> mlm)
    : options_(options),
      num_users_(ds.num_users()),
      num_items_(ds.num_items()),
      num_scenarios_(std::max<int64_t>(1, ds.scenarios.size())),
      sampler_(options.ctr_negatives() > 0 ? implicit_positives(ds, train, 0) : Interactions(), ds.num_users(),
               ds.num_items(), NegativeSampler::Kind::Uniform, options.seed()),
      pad_id_(pad_id),
      epoch_seed_(options.seed()) {
  const auto& o = options_;
  MTREC_CHECK(o.max_history() >= 1, "joint data: max_history must be >= 1, got ", o.max_history());
  MTREC_CHECK(o.ctr_negatives() >= 0, "joint data: ctr_negatives must be >= 0, got ", o.ctr_negatives());
  MTREC_CHECK(std::isfinite(o.ctr_min_rating()) && o.ctr_min_rating() >= 0,
              "joint data: ctr_min_rating must be finite and >= 0, got ", o.ctr_min_rating());
  MTREC_CHECK(o.mlm_texts() >= 0, "joint data: mlm_texts must be >= 0, got ", o.mlm_texts());
  train.check_consistent();
  const size_t n = train.size();
  for (size_t r = 0; r < n; ++r) {
    MTREC_CHECK(train.user[r] >= 0 && train.user[r] < num_users_, "joint data: training row ", r, " has user id ",
                train.user[r], " outside the data set's [0, ", num_users_, ")");
    MTREC_CHECK(train.item[r] >= 0 && train.item[r] < num_items_, "joint data: training row ", r, " has item id ",
                train.item[r], " outside the data set's [0, ", num_items_, ")");
    MTREC_CHECK(train.scenario[r] >= 0 && train.scenario[r] < num_scenarios_, "joint data: training row ", r,
                " has scenario id ", train.scenario[r], " outside the data set's [0, ", num_scenarios_, ")");
  }
  user_ = train.user;
  item_ = train.item;
  scenario_ = train.scenario;

  // Scenario classifier inputs: only when there are both contexts and their tokens.
  context_.assign(n, -1);
  if (!context_rows.empty() && train.has_context) {
    for (size_t r = 0; r < n; ++r) {
      const int32_t c = train.context[r];
      MTREC_CHECK(c >= -1 && c < static_cast<int64_t>(context_rows.size()), "joint data: training row ", r,
                  " has context id ", c, " outside the ", context_rows.size(), " tokenised contexts");
      context_[r] = c;
    }
    context_rows_ = std::move(context_rows);
  }
  if (o.mlm_texts() > 0 && !mlm_rows.empty()) {
    MTREC_CHECK(mlm.has_value(), "joint data: mlm_texts is ", o.mlm_texts(), " but no MLM options were given");
    mlm->validate();
    for (size_t t = 0; t < mlm_rows.size(); ++t)
      for (int64_t id : mlm_rows[t])
        MTREC_CHECK(id >= 0 && id < mlm->vocab_size(), "joint data: MLM text ", t, " has token id ", id,
                    " outside [0, ", mlm->vocab_size(), ")");
    mlm_rows_ = std::move(mlm_rows);
    mlm_ = std::move(mlm);
  }

  // Labels, each by the rule of its view in tasks/labels.h.
  positive_ = positive_rows(ds, train, o.ctr_min_rating());
  // Engaged rows (any behaviour but an impression, any star) are the interactions of the
  // sequence, next-item and match tasks (protocols S and D); the threshold only labels clicks.
  engaged_ = o.ctr_min_rating() > 0 ? positive_rows(ds, train, 0) : positive_;
  has_star_ = train.has_rating ? rows_kept(train, [&](const Interactions& y) { return explicit_ratings(ds, y); })
                               : std::vector<uint8_t>(n, 0);
  rating_.assign(n, 0.0f);
  for (size_t r = 0; r < n; ++r)
    if (has_star_[r]) rating_[r] = train.rating[r];
  // A non-positive row is a CTR negative when it is an impression; otherwise it was dropped for
  // its rating (rating-only data with ctr_min_rating) and carries no CTR label.
  const int32_t impression = ds.behaviors.find("impression");
  ctr_labelled_.resize(n);
  for (size_t r = 0; r < n; ++r)
    ctr_labelled_[r] = positive_[r] || (impression >= 0 && train.behavior[r] == impression);
  ctr_columns_ = {"click"};
  std::vector<int16_t> column_of(static_cast<size_t>(std::max(1, ds.behaviors.size())), 0);
  int positive_behaviours = 0;
  for (int32_t b = 0; b < ds.behaviors.size(); ++b) positive_behaviours += b != impression;
  if (positive_behaviours > 1)
    for (int32_t b = 0; b < ds.behaviors.size(); ++b)
      if (b != impression && ds.behaviors.raw(b) != "click") {
        column_of[static_cast<size_t>(b)] = static_cast<int16_t>(ctr_columns_.size());
        ctr_columns_.push_back(ds.behaviors.raw(b));
      }
  ctr_column_.assign(n, 0);
  for (size_t r = 0; r < n; ++r) {
    const int16_t b = train.behavior[r];
    if (positive_[r] && b >= 0 && static_cast<size_t>(b) < column_of.size())
      ctr_column_[r] = column_of[static_cast<size_t>(b)];
  }

  // Histories: per user, the positives in time order; each row remembers how many came before.
  const auto seq = time_order(train, static_cast<int32_t>(num_users_), o.seed());
  histories_.resize(static_cast<size_t>(num_users_));
  history_end_.assign(n, 0);
  for (size_t u = 0; u < seq.size(); ++u)
    for (size_t r : seq[u]) {
      history_end_[r] = static_cast<int32_t>(histories_[u].size());
      if (engaged_[r]) histories_[u].push_back(item_[r]);
    }

  for (size_t r = 0; r < n; ++r)
    if (positive_[r]) positive_rows_.push_back(static_cast<int64_t>(r));
  if (o.ctr_negatives() > 0)
    for (int64_t r : positive_rows_)
      if (static_cast<int64_t>(sampler_.positives(user_[static_cast<size_t>(r)]).size()) < num_items_)
        neg_source_.insert(neg_source_.end(), static_cast<size_t>(o.ctr_negatives()), r);
  draw_negatives(o.seed());
}

void JointSource::draw_negatives(uint64_t seed) {
  if (neg_source_.empty()) return;
  sampler_.reseed(derive_seed(seed, "joint-negatives"));
  negatives_.clear();
  negatives_.reserve(neg_source_.size());
  const auto k = static_cast<size_t>(options_.ctr_negatives());
  for (size_t j = 0; j < neg_source_.size(); j += k) {
    const auto items = sampler_.sample(user_[static_cast<size_t>(neg_source_[j])], options_.ctr_negatives());
    negatives_.insert(negatives_.end(), items.begin(), items.end());
  }
}

void JointSource::begin_epoch(int, uint64_t seed) {
  epoch_seed_ = seed;
  draw_negatives(seed);
}

int64_t JointSource::num_examples() const { return static_cast<int64_t>(user_.size() + neg_source_.size()); }

Batch JointSource::make_batch(const std::vector<int64_t>& rows, const c10::Device& device) const {
  MTREC_CHECK(!rows.empty(), "JointSource: empty batch");
  const auto B = static_cast<int64_t>(rows.size());
  const int64_t n = static_cast<int64_t>(user_.size()), total = num_examples();
  const auto C = static_cast<int64_t>(ctr_columns_.size());
  std::vector<int64_t> users(rows.size()), items(rows.size()), scenarios(rows.size());
  at::Tensor rating = torch::zeros({B}, torch::kFloat), click = torch::zeros({B, C}, torch::kFloat);
  auto mask = [&] { return torch::zeros({B}, torch::kBool); };
  at::Tensor m_rating = mask(), m_ctr = mask(), m_next = mask(), m_match = mask(), m_scen = mask();
  auto ra = rating.accessor<float, 1>();
  auto ca = click.accessor<float, 2>();
  auto mr = m_rating.accessor<bool, 1>(), mc = m_ctr.accessor<bool, 1>(), mn = m_next.accessor<bool, 1>(),
       mm = m_match.accessor<bool, 1>(), ms = m_scen.accessor<bool, 1>();
  std::vector<std::vector<int32_t>> hist(rows.size());
  std::vector<std::vector<int64_t>> ctx;
  const bool with_context = !context_rows_.empty();
  if (with_context) ctx.resize(rows.size());
  int64_t longest = 1;
  for (size_t b = 0; b < rows.size(); ++b) {
    const int64_t e = rows[b];
    MTREC_CHECK(e >= 0 && e < total, "JointSource: example ", e, " outside [0, ", total, ")");
    const bool negative = e >= n;
    const auto r = static_cast<size_t>(negative ? neg_source_[static_cast<size_t>(e - n)] : e);
    users[b] = user_[r];
    items[b] = negative ? negatives_[static_cast<size_t>(e - n)] : item_[r];
    scenarios[b] = scenario_[r];
    const auto& h = histories_[static_cast<size_t>(user_[r])];
    const int32_t end = history_end_[r],
                  begin = std::max<int32_t>(0, end - static_cast<int32_t>(options_.max_history()));
    hist[b].assign(h.begin() + begin, h.begin() + end);
    longest = std::max<int64_t>(longest, end - begin);
    if (negative) {  // click 0 in every column, no other label
      mc[static_cast<int64_t>(b)] = true;
      continue;
    }
    const auto i = static_cast<int64_t>(b);
    ra[i] = rating_[r];
    mr[i] = has_star_[r] != 0;
    mc[i] = ctr_labelled_[r] != 0;
    if (positive_[r]) {
      ca[i][0] = 1;
      if (ctr_column_[r] > 0) ca[i][ctr_column_[r]] = 1;
    }
    if (engaged_[r]) {
      mm[i] = true;
      mn[i] = end > 0;
    }
    if (with_context && context_[r] >= 0) {
      ctx[b] = context_rows_[static_cast<size_t>(context_[r])];
      ms[i] = !ctx[b].empty();
    }
  }
  std::vector<const std::vector<int32_t>*> hp;
  hp.reserve(hist.size());
  for (const auto& h : hist) hp.push_back(&h);

  Batch out;
  out.size = B;
  auto& f = out.fields;
  f["user"] = torch::tensor(users, torch::kLong).to(device);
  f["item"] = torch::tensor(items, torch::kLong).to(device);
  f["scenario"] = torch::tensor(scenarios, torch::kLong).to(device);
  f["history"] = pack_histories(hp, longest).to(device);
  f["rating"] = rating.to(device);
  f["mask/rating"] = m_rating.to(device);
  f["click"] = click.to(device);
  f["mask/ctr"] = m_ctr.to(device);
  f["mask/next_item"] = m_next.to(device);
  f["mask/match"] = m_match.to(device);
  if (with_context) {
    size_t lc = 1;  // rows without a context are all padding; never a zero-width tensor
    for (const auto& c : ctx) lc = std::max(lc, c.size());
    BatchEncoding enc = mtrec::make_batch(ctx, pad_id_, static_cast<int64_t>(lc));
    f["context_ids"] = enc.input_ids.to(device);
    f["context_mask"] = enc.attention_mask.to(torch::kBool).to(device);
    f["mask/scenario"] = m_scen.to(device);
  }
  if (mlm_) {
    // The batch's first example names it within the epoch (as MlmSource does): one generator
    // draws which texts and their masking.
    auto gen =
        at::make_generator<at::CPUGeneratorImpl>(derive_seed(epoch_seed_, "joint-mlm-" + std::to_string(rows.front())));
    const auto N = static_cast<int64_t>(mlm_rows_.size()), M = options_.mlm_texts();
    at::Tensor pick =
        M <= N ? at::randperm(N, gen, torch::kLong).slice(0, 0, M) : at::randint(N, {M}, gen, torch::kLong);
    std::vector<std::vector<int64_t>> chunk;
    chunk.reserve(static_cast<size_t>(M));
    auto pa = pick.accessor<int64_t, 1>();
    for (int64_t k = 0; k < M; ++k) chunk.push_back(mlm_rows_[static_cast<size_t>(pa[k])]);
    size_t lm = 1;
    for (const auto& c : chunk) lm = std::max(lm, c.size());
    BatchEncoding enc = mtrec::make_batch(chunk, pad_id_, static_cast<int64_t>(lm));
    at::Tensor attention = enc.attention_mask.to(torch::kBool);
    // Padding is never a prediction target, whether or not the caller listed it as special.
    MlmMasking m = mlm_mask(enc.input_ids, attention & enc.input_ids.ne(pad_id_), *mlm_, gen);
    f["mlm/input_ids"] = m.input_ids.to(device);
    f["mlm/labels"] = m.labels.to(device);
    f["mlm/selected"] = m.selected.to(device);
    f["mlm/attention_mask"] = attention.to(device);
  }
  return out;
}

}  // namespace mtrec
