#pragma once
// A causal (left-to-right) pre-LN transformer encoder for sequences of embeddings, as used by
// SASRec-style next-item models. Position t attends to positions <= t that are not padding;
// padding rows come out as zeros.
//   mtrec::CausalTransformer enc(mtrec::CausalTransformerOptions(64).layers(2).heads(1).dropout(0.2));
//   torch::Tensor h = enc->forward(x /*[B,L,d]*/, valid /*[B,L] bool, true = real item*/);
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "mtrec/core/options.h"
#include "mtrec/nn/dropout.h"

namespace mtrec::nn {

#define MTREC_CAUSAL_TRANSFORMER_OPTIONS(X) \
  X(int64_t, d_model, 0)                    \
  X(int64_t, layers, 2)                     \
  X(int64_t, heads, 1)                      \
  /* 0: d_model (the SASRec setting) */     \
  X(int64_t, ffn_dim, 0)                    \
  X(double, dropout, 0.2)

struct CausalTransformerOptions {
  explicit CausalTransformerOptions(int64_t d_model) : d_model_(d_model) {}
  MTREC_OPTIONS(MTREC_CAUSAL_TRANSFORMER_OPTIONS)
};

/// One pre-LN block: x + Drop(Attn(LN(x))), then x + Drop(FFN(LN(x))).
class CausalBlockImpl : public torch::nn::Module {
 public:
  explicit CausalBlockImpl(CausalTransformerOptions options);
  void reset();
  /// x [B,L,d]; attn_mask [B,1,L,L] bool, true where attention is allowed.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& attn_mask);

  CausalTransformerOptions options;
  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  torch::nn::Linear qkv{nullptr}, out{nullptr}, ff1{nullptr}, ff2{nullptr};
  Dropout drop{nullptr};
};
TORCH_MODULE(CausalBlock);

class CausalTransformerImpl : public torch::nn::Module {
 public:
  explicit CausalTransformerImpl(CausalTransformerOptions options);
  void reset();
  /// x [B,L,d], valid [B,L] bool (false = padding). Returns [B,L,d] after the final LayerNorm,
  /// with padding rows zeroed.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& valid);

  CausalTransformerOptions options;
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm final_ln{nullptr};
};
TORCH_MODULE(CausalTransformer);

/// The attention mask for `valid` [B,L]: causal, keys restricted to real items, and each
/// position always allowed to see itself (so padding queries never get an all-masked row,
/// which would produce NaN). Returns [B,1,L,L] bool.
torch::Tensor causal_padding_mask(const torch::Tensor& valid);

}  // namespace mtrec::nn
