#pragma once
// The transformer text backbone: token + learned position embeddings, N self-attention layers
// (pre- or post-LayerNorm), pooled output (CLS or masked mean), optional projection.
//
//   mtrec::nn::TextEncoder enc(mtrec::nn::TextEncoderOptions(vocab, 256).layers(4).heads(4)
//                                  .pooling(mtrec::nn::Pooling::Mean).out_dim(64));
//   auto out = enc->forward(ids, mask);     // ids [B,L] int64, mask [B,L] bool (true = token)
//   out.hidden;  // [B, L, 256]
//   out.pooled;  // [B, 64]
//   mtrec::nn::save_text_encoder(enc, "encoder.pt");            // atomic
//   auto again = mtrec::nn::load_text_encoder("encoder.pt");     // options travel in the file
//
// Padding never changes the result: padded keys are masked out of attention, mean pooling
// averages real tokens only, and positions are absolute, so appending pad tokens leaves the
// pooled output of the real ones unchanged.
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>

#include "mtrec/core/options.h"

namespace mtrec::nn {

enum class Pooling { Cls, Mean };
/// "cls" or "mean"; throws mtrec::Error otherwise.
Pooling parse_pooling(const std::string& name);
const char* pooling_name(Pooling p);

#define MTREC_TEXT_ENCODER_OPTIONS(X)                                                                   \
  X(int64_t, vocab_size, 0)                                                                             \
  X(int64_t, dim, 0)                                                                                    \
  X(int64_t, layers, 4)                                                                                 \
  X(int64_t, heads, 4)                                                                                  \
  /* Feed-forward width; 0 means 4 * dim. */                                                            \
  X(int64_t, ffn_dim, 0)                                                                                \
  X(int64_t, max_len, 128)                                                                              \
  X(double, dropout, 0.1)                                                                               \
  X(Pooling, pooling, Pooling::Cls)                                                                     \
  /* Projection of the pooled vector to the recommendation dimension; 0 = none (pooled is [B, dim]). */ \
  X(int64_t, out_dim, 0)                                                                                \
  /* Pre-LN (stable from scratch, final LayerNorm) or post-LN (BERT/MiniLM layout, LayerNorm */         \
  /* after the embeddings and after each residual). */                                                  \
  X(bool, pre_layer_norm, true)                                                                         \
  X(int64_t, pad_id, 0)                                                                                 \
  /* Token-type (segment) embedding rows; 0 = none. BERT checkpoints carry 2. */                        \
  X(int64_t, type_vocab_size, 0)                                                                        \
  /* LayerNorm epsilon (BERT uses 1e-12). */                                                            \
  X(double, layer_norm_eps, 1e-5)

struct TextEncoderOptions {
  TextEncoderOptions(int64_t vocab_size, int64_t dim) : vocab_size_(vocab_size), dim_(dim) {}
  MTREC_OPTIONS(MTREC_TEXT_ENCODER_OPTIONS)

 public:  // TORCH_ARG leaves the access private
  int64_t effective_ffn_dim() const { return ffn_dim_ > 0 ? ffn_dim_ : 4 * dim_; }
  int64_t output_dim() const { return out_dim_ > 0 ? out_dim_ : dim_; }
  /// Throws mtrec::Error naming the offending value.
  void validate() const;
};

/// One transformer layer: multi-head self-attention and a GELU feed-forward, each with
/// dropout and a residual, LayerNorm before (pre-LN) or after (post-LN) the residual.
class TransformerLayerImpl : public torch::nn::Module {
 public:
  explicit TransformerLayerImpl(const TextEncoderOptions& options);
  void reset();
  /// x [B, L, D], mask [B, L] bool (true = real token) or undefined.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask);

  TextEncoderOptions options;
  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr}, attn_out{nullptr};
  torch::nn::Linear ffn_in{nullptr}, ffn_out{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};

 private:
  at::Tensor self_attention(const at::Tensor& x, const at::Tensor& mask);
};
TORCH_MODULE(TransformerLayer);

struct TextEncoderOutput {
  at::Tensor hidden;  // [B, L, dim]
  at::Tensor pooled;  // [B, output_dim()]
};

class TextEncoderImpl : public torch::nn::Module {
 public:
  explicit TextEncoderImpl(TextEncoderOptions options);
  void reset();
  /// ids [B, L] int64 in [0, vocab), L <= max_len; mask [B, L] bool, true = real token
  /// (undefined: every position is real); token_types [B, L] int64 or undefined (all 0).
  TextEncoderOutput forward(const at::Tensor& ids, const at::Tensor& mask = {}, const at::Tensor& token_types = {});
  /// The final hidden states only (what an MLM head reads).
  at::Tensor encode(const at::Tensor& ids, const at::Tensor& mask = {}, const at::Tensor& token_types = {});
  /// CLS or masked-mean pooling of `hidden`, then the projection.
  at::Tensor pool(const at::Tensor& hidden, const at::Tensor& mask);
  /// The token embedding matrix [vocab, dim] (tied to the MLM decoder).
  const at::Tensor& token_embedding_weight() const { return token_embedding->weight; }

  TextEncoderOptions options;
  torch::nn::Embedding token_embedding{nullptr}, position_embedding{nullptr}, type_embedding{nullptr};
  torch::nn::LayerNorm embedding_norm{nullptr}, final_norm{nullptr};
  torch::nn::ModuleList layers{nullptr};
  torch::nn::Linear projection{nullptr};
};
TORCH_MODULE(TextEncoder);

/// Writes options and parameters to `path` atomically (temporary file, then rename).
void save_text_encoder(TextEncoderImpl& encoder, const std::string& path);
/// Rebuilds the encoder from the options stored in `path` and loads its parameters onto
/// `device`; throws mtrec::Error naming the file when it is not a text-encoder checkpoint.
TextEncoder load_text_encoder(const std::string& path, const c10::Device& device = c10::Device(c10::kCPU));

}  // namespace mtrec::nn
