#pragma once
// Masked-language-model pretraining of the text encoder (BERT masking), as a loss object the
// joint trainer adds as lambda * L_mlm.
//
//   mtrec::tasks::MlmTask mlm(mtrec::tasks::MlmOptions(vocab, /*mask_id=*/4).special_ids({0, 1, 2, 3, 4})
//                                 .seed(7), encoder->options.dim());
//   auto r = mlm->forward(*encoder, ids, mask);   // r.loss (scalar), r.accuracy, r.masked
//   (task_loss + lambda * r.loss).backward();
//
// Masking: each real, non-special token is selected with probability mask_prob (0.15); a
// selected token becomes [MASK] with probability 0.8, a uniformly random non-special token
// with 0.1, and stays itself with 0.1. The loss is the cross-entropy on the selected tokens
// only. Draws come from the task's own seeded CPU generator, so they are the same on every
// device and run.
#include <ATen/core/Generator.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

#include "mtrec/nn/text_encoder.h"

namespace mtrec::tasks {

struct MlmOptions {
  MlmOptions(int64_t vocab_size, int64_t mask_id) : vocab_size_(vocab_size), mask_id_(mask_id) {}
  TORCH_ARG(int64_t, vocab_size);
  TORCH_ARG(int64_t, mask_id);
  /// Ids never selected and never drawn as random replacements (pad, cls, sep, unk, mask...).
  TORCH_ARG(std::vector<int64_t>, special_ids);
  TORCH_ARG(double, mask_prob) = 0.15;
  TORCH_ARG(double, replace_with_mask) = 0.8;
  TORCH_ARG(double, replace_with_random) = 0.1;
  TORCH_ARG(uint64_t, seed) = 42;
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
MlmMasking mlm_mask(const at::Tensor& ids, const at::Tensor& mask, const MlmOptions& options,
                    at::Generator& generator);

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

class MlmTaskImpl : public torch::nn::Module {
 public:
  MlmTaskImpl(MlmOptions options, int64_t dim, double layer_norm_eps = 1e-5);
  void reset();
  /// Masks `ids`, runs `encoder` on the corrupted input, returns the loss on the selected tokens.
  MlmResult forward(nn::TextEncoderImpl& encoder, const at::Tensor& ids, const at::Tensor& mask = {});
  /// The loss for a given masking (deterministic; used by forward and by tests).
  MlmResult loss(nn::TextEncoderImpl& encoder, const MlmMasking& masking, const at::Tensor& mask);

  MlmOptions options;
  int64_t dim;
  double layer_norm_eps;
  MlmHead head{nullptr};
  at::Generator generator;
};
TORCH_MODULE(MlmTask);

}  // namespace mtrec::tasks
