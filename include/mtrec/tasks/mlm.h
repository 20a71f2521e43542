#pragma once
// Masked-language-model pretraining of the text encoder (BERT masking), as a loss object the
// joint trainer adds as lambda * L_mlm.
//
//   mtrec::MlmTask mlm(mtrec::MlmOptions(vocab, /*mask_id=*/4).special_ids({0, 1, 2, 3, 4})
//                                 .seed(7), encoder->options.dim());
//   auto r = mlm->forward(*encoder, ids, mask);   // r.loss (scalar), r.accuracy, r.masked
//   (task_loss + lambda * r.loss).backward();
//
// Masking: each real, non-special token is selected with probability mask_prob (0.15); a
// selected token becomes [MASK] with probability 0.8, a uniformly random non-special token
// with 0.1, and stays itself with 0.1. The loss is the cross-entropy on the selected tokens
// only. Draws come from the task's own seeded CPU generator, so they are the same on every
// device and run.
//
// On the training engine (train/trainer.h; train/pretrain.h's pretrain_mlm runs it): MlmSource
// (tokenised texts, masked as they are batched), MlmEngineModel (encoder + head -> logits at the
// selected positions) and MlmObjective (the cross-entropy, with masked-token accuracy counts).
#include <ATen/core/Generator.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/data/batch.h"
#include "mtrec/nn/text_encoder.h"
#include "mtrec/tasks/task.h"

namespace mtrec {

#define MTREC_MLM_OPTIONS(X)                                                                     \
  X(int64_t, vocab_size, 0)                                                                      \
  X(int64_t, mask_id, 0)                                                                         \
  /* Ids never selected and never drawn as random replacements (pad, cls, sep, unk, mask...). */ \
  X(std::vector<int64_t>, special_ids, {})                                                       \
  X(double, mask_prob, 0.15)                                                                     \
  X(double, replace_with_mask, 0.8)                                                              \
  X(double, replace_with_random, 0.1)                                                            \
  X(uint64_t, seed, 42)

struct MlmOptions {
  MlmOptions(int64_t vocab_size, int64_t mask_id) : vocab_size_(vocab_size), mask_id_(mask_id) {}
  MTREC_OPTIONS(MTREC_MLM_OPTIONS)

 public:  // TORCH_ARG leaves the access private
  void validate() const;
};

/// One masked draw: the corrupted input, the labels (-100 where not predicted) and the
/// selection, all on the device of `ids`.
struct MlmMasking {
  at::Tensor input_ids;  // [B, L] int64
  at::Tensor labels;     // [B, L] int64, original id at selected positions, -100 elsewhere
  at::Tensor selected;   // [B, L] bool
};

/// Draws the BERT masking of `ids` ([B, L] int64) where `mask` ([B, L] bool, true = real token;
/// undefined = all real) with `generator` (a CPU generator).
MlmMasking mlm_mask(const at::Tensor& ids, const at::Tensor& mask, const MlmOptions& options, at::Generator& generator);

/// The MLM prediction head: dense + GELU + LayerNorm, then a decoder tied to the token
/// embedding plus a per-token bias (as BERT's cls.predictions).
class MlmHeadImpl : public torch::nn::Module {
 public:
  MlmHeadImpl(int64_t dim, int64_t vocab_size, double layer_norm_eps = 1e-5);
  void reset();
  /// hidden [..., dim], embedding [vocab, dim] -> logits [..., vocab].
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& embedding);

  int64_t dim, vocab_size;
  double layer_norm_eps;
  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  at::Tensor bias;
};
TORCH_MODULE(MlmHead);

struct MlmResult {
  at::Tensor loss;      // scalar, differentiable (0 when nothing was selected)
  double accuracy = 0;  // share of selected tokens predicted exactly
  int64_t masked = 0;   // number of selected tokens
};

/// Loss, accuracy and count of logits [N, vocab] against targets [N] (reduced-precision logits
/// are upcast to fp32 for the log-softmax; N = 0 gives a zero loss that keeps the graph).
MlmResult mlm_result(const at::Tensor& logits, const at::Tensor& targets);

class MlmTaskImpl : public torch::nn::Module {
 public:
  MlmTaskImpl(MlmOptions options, int64_t dim, double layer_norm_eps = 1e-5);
  void reset();
  /// Masks `ids`, runs `encoder` on the corrupted input, returns the loss on the selected tokens.
  MlmResult forward(nn::TextEncoderImpl& encoder, const at::Tensor& ids, const at::Tensor& mask = {});
  /// The loss for a given masking (deterministic; used by forward and by tests).
  MlmResult loss(nn::TextEncoderImpl& encoder, const MlmMasking& masking, const at::Tensor& mask);
  /// Logits [N, vocab] at the N selected positions of `masking` and their targets [N]: only
  /// the selected positions are decoded (the vocabulary projection is the costly part).
  std::pair<at::Tensor, at::Tensor> selected_logits(nn::TextEncoderImpl& encoder, const MlmMasking& masking,
                                                    const at::Tensor& mask);

  MlmOptions options;
  int64_t dim;
  double layer_norm_eps;
  MlmHead head{nullptr};
  at::Generator generator;
};
TORCH_MODULE(MlmTask);

// ---------------------------------------------------------------------------------------------
// The training engine's view.

/// Tokenised texts (rows of real tokens, as Tokenizer::encode_rows makes them) as MLM examples.
/// make_batch pads the rows and draws their masking (padding never selected) from a CPU
/// generator seeded by the epoch's seed and the batch's first row, so an epoch's masks depend
/// on nothing else and a resumed run sees the same ones. Fields: "input_ids" (corrupted) and
/// "labels" [B, L] int64, "attention_mask" and "selected" [B, L] bool.
class MlmSource : public BatchSource {
 public:
  MlmSource(std::vector<std::vector<int64_t>> rows, int64_t pad_id, MlmOptions options);
  void begin_epoch(int epoch, uint64_t seed) override { seed_ = seed; }
  int64_t num_examples() const override { return static_cast<int64_t>(rows_.size()); }
  Batch make_batch(const std::vector<int64_t>& rows, const c10::Device& device) const override;

 private:
  std::vector<std::vector<int64_t>> rows_;
  int64_t pad_id_;
  MlmOptions options_;
  uint64_t seed_ = 0;
};

/// The encoder and the MLM head under one module ("encoder.*", "mlm.*"), what the engine trains
/// and checkpoints.
class MlmPretrainModuleImpl : public torch::nn::Module {
 public:
  MlmPretrainModuleImpl(nn::TextEncoder encoder, MlmTask mlm);
  nn::TextEncoder encoder{nullptr};
  MlmTask mlm{nullptr};
};
TORCH_MODULE(MlmPretrainModule);

/// The engine's Model: outputs "mlm/logits" [N, vocab] and "mlm/targets" [N] at the batch's
/// selected positions.
class MlmEngineModel : public Model {
 public:
  MlmEngineModel(nn::TextEncoder encoder, MlmTask mlm) : module_(std::move(encoder), std::move(mlm)) {}
  torch::nn::Module& module() override { return *module_; }
  Outputs forward(const Batch& batch) override;
  MlmPretrainModule& pretrain_module() { return module_; }

 private:
  MlmPretrainModule module_;
};

/// The MLM task: cross-entropy on the selected tokens. It also counts, since the last
/// take_counts(), the selected tokens, those predicted exactly and the token-weighted loss sum.
class MlmObjective : public Objective {
 public:
  struct Counts {
    int64_t masked = 0, correct = 0;
    double loss_sum = 0;  // Σ loss·masked
  };
  std::string name() const override { return "mlm"; }
  at::Tensor loss(const Outputs& outputs, const Batch& batch) override;
  Counts take_counts();

 private:
  Counts counts_;
};

}  // namespace mtrec
