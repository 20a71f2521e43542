#pragma once
// One way to load every model kind: a checkpoint written by `mtrec train` (`--out`, or a run
// directory's best.ckpt / last.ckpt) of any task becomes a ScoringModel that evaluation and the
// Recommender score through, whatever the kind.
//
//   mtrec::Checkpoint ck = mtrec::load_checkpoint("R/select/best.ckpt");
//   std::cout << mtrec::describe_checkpoint(ck) << '\n';  // "a training checkpoint (task rating, ...)"
//   std::unique_ptr<mtrec::ScoringModel> m = mtrec::load_scoring_model(ck, "cpu");  // golden pairs verified
//   std::vector<float> s = m->score_items({user}, {m->serving().histories[user]}, {0});  // [1 x items]
//
// A checkpoint carries, beside the parameters, what serving needs (ServingData): each user's
// history of engaged items (what a known user is scored from and what "seen" excludes) and the
// item catalogue (titles, fields to filter on). Training checkpoints hold the model's
// configuration under "model" of their config; the loaders here and the kinds' own
// from_checkpoint functions read both forms (model_config, nn/checkpoint.h).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mtrec/data/schema.h"
#include "mtrec/nn/checkpoint.h"

namespace mtrec {

class KnnModel;

/// What serving needs beside the parameters.
struct ServingData {
  /// Per user (dense id), the engaged items in time order (seeded tie order): the rows the model
  /// was fitted on. A known user's history and the items excluded as seen.
  std::vector<std::vector<int32_t>> histories;
  TextCatalog item_catalog;  // titles and fields, by dense item id
};

/// The engaged rows of `known` (impressions aside, any rating) per user, in the time order
/// user_sequences gives them (ties by `seed`), and the data set's item catalogue.
ServingData make_serving_data(const Dataset& ds, const Interactions& known, uint64_t seed);
/// The serving data as checkpoint tensors ("serve/history_offsets", "serve/history_items",
/// "serve/item_catalog").
std::vector<std::pair<std::string, at::Tensor>> serving_tensors(const ServingData& data);
/// Appends serving_tensors(data) to `checkpoint`, replacing tensors of the same names.
void add_serving_data(Checkpoint& checkpoint, const ServingData& data);
/// The checkpoint's serving data: histories sized to its users (empty ones when it stores none)
/// and its catalogue (empty when none). Throws mtrec::Error naming the file when the stored
/// histories do not fit its id maps.
ServingData read_serving_data(const Checkpoint& checkpoint);

/// A loaded model of any kind as evaluation and serving see it: full-catalogue scores of users
/// given their histories. Thread-safe (scoring never changes the model).
class ScoringModel {
 public:
  virtual ~ScoringModel() = default;
  /// The checkpoint's task: rating | ctr | dmf | next-item | knn | joint.
  virtual std::string kind() const = 0;
  /// The head it scores with (a rating, a click probability, a next-item logit, ...).
  virtual std::string head() const = 0;
  int64_t num_users() const { return num_users_; }
  int64_t num_items() const { return num_items_; }
  /// Scores of every item ([n x num_items], row-major) for users[r] (dense id; -1: a new user
  /// known by history alone, where anonymous() says the kind can), histories[r] (item ids,
  /// oldest first: the stored history plus recent items) in scenario scenarios[r].
  virtual std::vector<float> score_items(const std::vector<int32_t>& users,
                                         const std::vector<std::vector<int32_t>>& histories,
                                         const std::vector<int32_t>& scenarios) const = 0;
  /// Whether a user unknown to the model can be scored from a history alone.
  virtual bool anonymous() const { return false; }
  /// [num_items x d] item vectors whose cosine says which items are alike (similar items,
  /// explanations), float on the CPU; undefined when the kind has none (KNN).
  virtual at::Tensor item_space() const { return {}; }
  /// What serving needs, read from the checkpoint.
  const ServingData& serving() const { return serving_; }
  ServingData& serving() { return serving_; }

 protected:
  int64_t num_users_ = 0, num_items_ = 0;
  ServingData serving_;
};

/// KNN (cf/knn.h) in the one container: its binary form as the uint8 tensor "knn", its options
/// as config, golden (user, item) -> prediction pairs. `implicit`: fitted on positives only.
Checkpoint knn_checkpoint(const KnnModel& model, const IdMap& users, const IdMap& items, bool implicit);
/// The KNN model of a "knn" checkpoint, golden pairs verified.
KnnModel knn_from_checkpoint(const Checkpoint& checkpoint);

/// A learned slate policy (policy/learn.h) in the one container, task "policy": logits
/// <user[u] + scenario[s], item[i]> + bias[i] (float tensors [U, d], [S, d], [I, d], [I]), with
/// golden pairs; served as a one-head model whose head is "policy".
Checkpoint policy_checkpoint(const at::Tensor& user, const at::Tensor& scenario, const at::Tensor& item,
                             const at::Tensor& bias, const IdMap& users, const IdMap& items, const IdMap& scenarios);
/// The logits of every item for (user u, scenario s) of such a policy, on the CPU.
std::vector<float> policy_logits(const at::Tensor& user, const at::Tensor& scenario, const at::Tensor& item,
                                 const at::Tensor& bias, int64_t u, int64_t s);

/// kind -> loader: the registry of model kinds. Every kind `mtrec train` writes is registered;
/// register_model_kind adds (or replaces) one.
using ModelLoader = std::function<std::unique_ptr<ScoringModel>(const Checkpoint&, const std::string& device)>;
void register_model_kind(const std::string& kind, ModelLoader loader);
/// The registered kinds, sorted.
std::vector<std::string> model_kinds();
/// The checkpoint's model (export or training checkpoint) on `device`, golden pairs verified,
/// serving data read. Throws mtrec::Error naming the file and what it holds when no registered
/// kind loads it.
std::unique_ptr<ScoringModel> load_scoring_model(const Checkpoint& checkpoint, const std::string& device = "cpu");

}  // namespace mtrec
