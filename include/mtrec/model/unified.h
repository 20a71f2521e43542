#pragma once
// The unified model: one text backbone, ID embeddings, a sequence encoder and shared experts
// under every recommendation task and every scenario, trained by one joint loss
// L = Σ_t w_t·L_t + λ·L_mlm on the training engine (train/trainer.h).
//
//   mtrec::UnifiedModel m(mtrec::UnifiedOptions(users, items, scenarios).dim(64)
//                             .arch(mtrec::nn::ExpertArch::Mmoe).scenario_arch(mtrec::nn::ScenarioArch::Star),
//                         encoder, item_token_rows, user_token_rows, tokenizer.pad_id());
//   mtrec::UnifiedEngineModel engine(m);            // the engine's Model
//   Trainer(engine, joint_source, joint_tasks(...), opts).train();   // model/joint_tasks.h
//
// Representations (d = dim):
//  - item i: ID embedding (zero for items never trained on, and dropped for a share of the
//    training examples so the towers learn to score from text alone: cold start) plus a
//    projection of the TextEncoder's pooled vector of the item's text. With text "finetune"
//    the encoder runs once per distinct item of the batch, with gradient, for the rating and
//    CTR towers; the catalogue table (history items, next-item and match) reads a cache of
//    every item's text vector, re-encoded in eval mode every text_refresh_every training steps
//    (so the retrieval heads always compare items encoded alike). With "frozen" the
//    recommendation losses never reach the encoder (MLM and the scenario classifier still
//    train it) and every item comes from the cache.
//  - user u: ID embedding + projected profile text (when the user has one; without gradient, so
//    the profile's projection is trained but the encoder learns from item texts, contexts and
//    MLM: in training the batch's profiles are encoded afresh each step, in eval mode, on a
//    second thread when a core is spare, and evaluation reads the cache) + the causal
//    sequence encoder's last state over the user's recent items (computed once per distinct
//    history of the batch, in chunks of similar length).
// Towers:
//  - rating and CTR read [user, item, user⊙item, scenario embedding] through the scenario
//    layer (STAR / PEPNet, nn/scenario.h) and the shared experts (shared-bottom / MMoE / PLE,
//    nn/experts.h), and add their single-task heads' collaborative-filtering parts, the same
//    modules the heads are made of: rating = tower + the rating head's BiasedMF (μ + b_u + b_i
//    + ⟨p_u, q_i⟩, tasks/rating.h; its loss the head's, with the per-example L2 rating_l2);
//    CTR (one logit per label column: "click", then one per positive behaviour) = tower + the
//    CTR head's CtrFactors (⟨u, i⟩ + b_i, tasks/ctr.h). So both see a stable per-user factor
//    (the user vector is mostly the sequence state). Without factor_terms the BiasedMF has no
//    factors (μ + b_u + b_i) and CTR none. Unknown, unseen and dropped IDs leave the factors out.
//  - next-item: a projection of the user vector scores the catalogue table (softmax).
//  - match (the DMF objective): cosine of a user tower and an item tower over in-batch items.
//  - scenario classifier: the pooled TextEncoder output of the request's context text.
//  - MLM: a head with the decoder tied to the encoder's token embedding.
#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/nn/causal_transformer.h"
#include "mtrec/nn/checkpoint.h"
#include "mtrec/nn/experts.h"
#include "mtrec/nn/scenario.h"
#include "mtrec/nn/text_encoder.h"
#include "mtrec/tasks/ctr.h"
#include "mtrec/core/head.h"
#include "mtrec/tasks/mlm.h"
#include "mtrec/tasks/rating.h"
#include "mtrec/tasks/task.h"

namespace mtrec {

enum class TextMode { None, Frozen, Finetune };
/// "none" | "frozen" | "finetune"; throws mtrec::Error otherwise.
TextMode parse_text_mode(const std::string& name);
const char* text_mode_name(TextMode m);

/// The unified model's options, each field declared once (core/options.h). The defaults are
/// what `mtrec train` and fit_joint use (JointTrainOptions contains these options).
#define MTREC_UNIFIED_OPTIONS(X)                                                                                    \
  X(int64_t, num_users, 0)                                                                                          \
  X(int64_t, num_items, 0)                                                                                          \
  X(int64_t, num_scenarios, 1)                                                                                      \
  X(int64_t, dim, 64)                                                                                               \
  /* Enabled heads (core/head.h).  */                                                                               \
  X(std::vector<Head>, tasks, (std::vector<Head>{Head::Rating, Head::Ctr, Head::NextItem, Head::Match, Head::Mlm})) \
  X(int64_t, ctr_columns, 1)                                                                                        \
  X(TextMode, text, TextMode::Finetune)                                                                             \
  /* Training steps between text-cache refreshes. */                                                                \
  X(int64_t, text_refresh_every, 50)                                                                                \
  /* 0: training encodes the batch's user profiles afresh each step (eval mode, no gradient); N > 0: it */          \
  /* reads the profile-text cache, refreshed every N steps (50 was the default before issue 18; 500 cost */         \
  /* next-item NDCG@10 -.0057 [-.0107, -.0007] on protocol M: stale vectors; docs/unified.md). */                   \
  X(int64_t, profile_refresh_every, 0)                                                                              \
  /* With text finetune: of a batch's distinct items, at most this many (drawn at random) carry a fresh */          \
  /* encoding's gradient, and every item reads the cache (0: all fresh, with gradient). 64 cut the */               \
  /* encoder from 274 to 41 ms a goodbooks-sized step, but ML-100K RMSE +.032 (docs/unified.md). */                 \
  X(int64_t, text_finetune_items, 0)                                                                                \
  /* Scenario classifier: at most this many of a batch's rows with a context (drawn at random) per */               \
  /* step (0: all); each distinct context text is one encoder pass. */                                              \
  X(int64_t, scenario_rows, 0)                                                                                      \
  /* The ID tables looked up by row (user IDs, the heads' factor tables) have sparse gradients, */                  \
  /* updated by the engine's lazy Adam instead of dense AdamW over every row: 19% more examples/s at */             \
  /* goodbooks size, but ML-100K CTR AUC -.0017 [-.0030, -.0003] over 3 seeds (docs/unified.md). */                 \
  X(bool, sparse_ids, false)                                                                                        \
  /* The encoder's learning rate as a multiple of the model's: fine-tuned gently, so that the */                    \
  /* cached text vectors the catalogue table reads stay close to the fresh ones. */                                 \
  X(double, text_lr_scale, 0.03)                                                                                    \
  /* Recent items the sequence encoder reads (its cost grows with it). */                                           \
  X(int64_t, max_history, 20)                                                                                       \
  X(int64_t, seq_layers, 1)                                                                                         \
  X(int64_t, seq_heads, 1)                                                                                          \
  X(nn::ExpertArch, arch, nn::ExpertArch::Mmoe)                                                                     \
  X(int64_t, experts, 4)                                                                                            \
  X(int64_t, task_experts, 1)                                                                                       \
  X(int64_t, levels, 1)                                                                                             \
  X(std::vector<int64_t>, expert_hidden, (std::vector<int64_t>{128, 64}))                                           \
  X(nn::ScenarioArch, scenario_arch, nn::ScenarioArch::Star)                                                        \
  X(double, dropout, 0.1)                                                                                           \
  /* Share of training examples whose item (and user) ID embedding is dropped. */                                   \
  X(double, id_dropout, 0.1)                                                                                        \
  X(double, match_temperature, 0.1)                                                                                 \
  /* next_item: 0 = full softmax over the catalogue; K > 0 = sampled softmax over K uniform */                      \
  /* negatives shared by the batch, logQ-corrected (large catalogues). */                                           \
  X(int64_t, next_item_negatives, 0)                                                                                \
  /* rating: mu (fit_joint sets it to the training mean). */                                                        \
  X(double, global_mean, 3.5)                                                                                       \
  /* rating: lambda of the rating head's per-example L2 on its BiasedMF rows (tasks/rating.h); */                   \
  /* 0.05: ML-100K RMSE -.0097 [-.0133, -.0061] against 0 over 5 seeds, the rest unchanged (docs/models.md) */      \
  X(double, rating_l2, 0.05)                                                                                        \
  /* The heads' collaborative-filtering terms beside the deep towers, each on ID factors of its own: */             \
  /* rating + <p_u, q_i> (the rating head's biased MF), CTR + <u, i> + b_i (the CTR head's dot and */               \
  /* item bias). Checkpoints from before it load with it off. */                                                    \
  X(bool, factor_terms, true)                                                                                       \
  /* The user vector is ID embedding + sequence state; the state leaves a LayerNorm (norm ~sqrt(d)) */              \
  /* while the ID starts at norm ~0.4: on, the ID embedding passes a LayerNorm of its own, so both */               \
  /* parts have the same scale. Checkpoints from before it load with it off. */                                     \
  X(bool, user_id_norm, false)

struct UnifiedOptions {
  /// The data's sizes are set by fit_joint (or here); the rest are the architecture.
  UnifiedOptions() = default;
  UnifiedOptions(int64_t num_users, int64_t num_items, int64_t num_scenarios) {
    num_users_ = num_users, num_items_ = num_items, num_scenarios_ = num_scenarios;
  }
  MTREC_OPTIONS(MTREC_UNIFIED_OPTIONS)

 public:  // TORCH_ARG leaves the access private
  bool has_task(Head head) const;
  /// The ranking heads routed through the experts (rating, ctr: those enabled), in order.
  std::vector<Head> expert_tasks() const;
  void validate() const;
};

/// The options as JSON (text) and back, e.g. for a checkpoint; unknown keys are rejected.
std::string unified_options_to_json(const UnifiedOptions& o);
UnifiedOptions unified_options_from_json(const std::string& json);

class UnifiedModelImpl : public torch::nn::Module {
 public:
  /// `encoder`: the shared TextEncoder (pretrained or fresh; null only with text none).
  /// item_tokens[i] / user_tokens[u]: real tokens of entity text (Tokenizer::encode_rows, [CLS]
  /// first; an empty row means no text; user_tokens may be empty: no profile texts).
  UnifiedModelImpl(UnifiedOptions options, nn::TextEncoder encoder,
                   const std::vector<std::vector<int64_t>>& item_tokens,
                   const std::vector<std::vector<int64_t>>& user_tokens, int64_t pad_id);
  void reset();

  /// Every enabled task's outputs for a joint batch (model/joint_data.h's fields): "rating"
  /// [B] + "rating_l2" [B] (the BiasedMF rows' squared norms), "ctr_logit" [B, C], "next_item/hidden" [N, d] +
  /// "next_item/target" [N] + "next_item/table" [I, d], "match/logits" [N, K] + "match/target" [N], "scenario/logits"
  /// [N, S] + "scenario/target" [N], "mlm/logits" + "mlm/targets". Rows a task's mask leaves out are not computed for
  /// the selecting tasks (next_item, match, scenario) and are masked by the others.
  Outputs forward(const Batch& batch);

  // ---- Scoring (eval mode; what evaluation and serving use) ----
  /// User vectors [N, d] from ids (-1: unknown user, ID and profile left out) and history
  /// tokens [N, L] (item+1, right-aligned; may be all padding).
  at::Tensor user_vectors(const at::Tensor& users, const at::Tensor& history);
  /// The same against a precomputed item table (item_vectors()), and for unknown users (-1)
  /// with a profile text: profile_ids / profile_mask [N, Lp] (rows of known users and empty
  /// rows are ignored). Serving precomputes the table once per model.
  at::Tensor user_vectors(const at::Tensor& users, const at::Tensor& history, const at::Tensor& table,
                          const at::Tensor& profile_ids, const at::Tensor& profile_mask);
  /// Whether user profile texts were trained (an unknown user's profile can be scored).
  bool has_profile_text() const;
  /// The catalogue's item vectors [I, d] (ID embedding of trained items + text from the cache).
  at::Tensor item_vectors();
  /// Rating predictions [N] and CTR probabilities [N, C] (undefined when the task is off) for
  /// rows of (user id or -1, its user vector, item, scenario); `table`: item_vectors(), or
  /// undefined to compute it.
  std::pair<at::Tensor, at::Tensor> rank_outputs(const at::Tensor& users, const at::Tensor& user_vec,
                                                 const at::Tensor& items, const at::Tensor& scenarios,
                                                 const at::Tensor& table = {});
  /// Every catalogue item's score [N, I] by `head` for N users: rating (the prediction,
  /// unclamped), ctr (the click probability, first label column), next_item (logits), match
  /// (cosines). `users`: ids or -1, `user_vec` their user vectors, `scenarios` [N] their
  /// scenarios (rating and ctr); `table`: item_vectors(), or undefined to compute it.
  at::Tensor catalogue_scores(Head head, const at::Tensor& users, const at::Tensor& user_vec,
                              const at::Tensor& scenarios, const at::Tensor& table = {});
  /// Next-item logits [N, I] and match cosines [N, I] of user vectors against the catalogue.
  at::Tensor next_item_scores(const at::Tensor& user_vec);
  at::Tensor match_scores(const at::Tensor& user_vec);
  /// The two retrieval heads as inner products, for an index: next_item_scores =
  /// next_item_queries(u) · table^T; match_scores = match_queries(u) · match_table(table)^T.
  at::Tensor next_item_queries(const at::Tensor& user_vec);
  at::Tensor match_queries(const at::Tensor& user_vec);
  at::Tensor match_table(const at::Tensor& table);
  /// Scenario probabilities [N, S] of context token rows [N, L] (mask: true = real token).
  at::Tensor scenario_probs(const at::Tensor& ids, const at::Tensor& mask);

  /// Marks the items (and users) that training saw: the others have no ID embedding.
  void set_seen(const std::vector<int32_t>& items, const std::vector<int32_t>& users);
  /// Re-encodes every item and profile text into the cache (no gradient).
  void refresh_text_cache();
  /// The parameters GradNorm differentiates: the experts' last shared layer (rating and CTR
  /// pass through it; the retrieval towers and the classifier do not, and are not balanced).
  std::vector<at::Tensor> shared_parameters();

  UnifiedOptions options;
  /// Training on CPU with a spare core (core/device.h): a second thread encodes the batch's
  /// profiles (profile_refresh_every 0) while this one encodes the items, and cache refreshes
  /// are split between two threads. The results are the same either way (tests turn it off to
  /// compare).
  bool use_spare_core = true;
  int64_t pad_id = 0;
  nn::TextEncoder text{nullptr};
  MlmHead mlm{nullptr};
  torch::nn::Embedding user_emb{nullptr}, item_emb{nullptr};
  torch::nn::LayerNorm user_id_ln{nullptr};  // with user_id_norm
  torch::nn::Embedding scenario_emb{nullptr}, position_emb{nullptr};
  // The heads' collaborative-filtering parts: the rating head's BiasedMF (with rating; factors
  // only with factor_terms) and the CTR head's CtrFactors (with ctr and factor_terms).
  BiasedMF rating_mf{nullptr};
  CtrFactors ctr_factors{nullptr};
  torch::nn::Linear item_text_proj{nullptr}, user_text_proj{nullptr}, next_proj{nullptr}, rating_out{nullptr},
      ctr_out{nullptr}, scenario_out{nullptr};
  torch::nn::Sequential match_user{nullptr}, match_item{nullptr};
  nn::CausalTransformer sequence{nullptr};
  nn::ScenarioLayer scenario_layer{nullptr};
  nn::Experts experts{nullptr};
  // Buffers: tokenised texts, text caches, seen flags, the training-step counter.
  at::Tensor item_tokens, item_token_mask, user_tokens, user_token_mask, user_has_text;
  at::Tensor item_text_cache, user_text_cache, item_seen, user_seen, train_steps;

 private:
  /// Pooled vectors of token rows by `encoder` (`text` when null); `split`: without gradient and
  /// in eval mode, a second thread encodes every other chunk.
  at::Tensor encode_texts(const at::Tensor& tokens, const at::Tensor& mask, nn::TextEncoderImpl* encoder = nullptr,
                          bool split = false);
  /// An eval-mode encoder sharing `text`'s parameters, for the profiles' thread (built once,
  /// without drawing from the generator; re-aliased each step).
  nn::TextEncoderImpl& profile_encoder();
  nn::TextEncoder profile_encoder_{nullptr};
  /// Re-encodes the item and/or the profile texts into their caches (no gradient).
  void refresh_caches(bool items, bool users);
  /// Text vectors of `ids` (unique) of items or users: items fresh with gradient in finetune
  /// training, else from the cache.
  at::Tensor text_vectors(bool items, const at::Tensor& ids);
  /// `profiles`: the text vectors of the users' sorted distinct ids, when already encoded.
  at::Tensor user_vec(const at::Tensor& users, const at::Tensor& history, const at::Tensor& table, bool drop_ids,
                      const at::Tensor& profiles = {});
  at::Tensor cross(const at::Tensor& user_vec, const at::Tensor& item_vec, const at::Tensor& scenarios,
                   std::vector<at::Tensor>* per_task);
  struct RankingOutputs {
    at::Tensor rating, rating_l2, ctr_logit;  // undefined when the task is off
  };
  /// The rating and CTR outputs from the experts' per-task outputs `h`: the towers plus the
  /// heads' parts, b_u weighted by bias_keep (0: unknown user) and the factor terms of (users,
  /// items) by user_keep · item_keep (0: unknown, unseen or dropped IDs).
  RankingOutputs ranking_heads(const std::vector<at::Tensor>& h, const at::Tensor& users, const at::Tensor& items,
                               const at::Tensor& bias_keep, const at::Tensor& user_keep, const at::Tensor& item_keep);
};
TORCH_MODULE(UnifiedModel);

/// Brings the tensors of a unified model saved before its heads' parts were the heads' modules
/// (user_bias, item_bias, mf_user, mf_item; ctr_user, ctr_item, ctr_item_bias) to the current
/// names (rating_mf's [factors | bias] tables and μ; ctr_factors.*): the same parameters, so the
/// model scores as it did (its golden pairs check that). A no-op for a current checkpoint.
void upgrade_unified_state(Checkpoint& checkpoint, const UnifiedOptions& options);

/// The engine's view of a UnifiedModel.
class UnifiedEngineModel : public Model {
 public:
  explicit UnifiedEngineModel(UnifiedModel model) : model_(std::move(model)) {}
  torch::nn::Module& module() override;
  Outputs forward(const Batch& batch) override;
  std::vector<at::Tensor> shared_parameters() override { return model_->shared_parameters(); }
  std::vector<std::string> sparse_parameters() const override;
  std::vector<std::pair<std::string, double>> lr_scales() const override {
    return {{"text.", model_->options.text_lr_scale()}};
  }
  UnifiedModel& model() { return model_; }

 private:
  UnifiedModel model_;
};

}  // namespace mtrec
