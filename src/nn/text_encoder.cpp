#include "mtrec/nn/text_encoder.h"

#include <torch/torch.h>

#include <sstream>

#include "mtrec/core/check.h"
#include "mtrec/core/io.h"
#include "mtrec/nn/compat.h"
#include "mtrec/nn/dropout.h"

namespace mtrec::nn {

Pooling parse_pooling(const std::string& name) {
  if (name == "cls") return Pooling::Cls;
  if (name == "mean") return Pooling::Mean;
  MTREC_CHECK(false, "unknown pooling '", name, "' (expected cls or mean)");
  return Pooling::Cls;
}

const char* pooling_name(Pooling p) { return p == Pooling::Cls ? "cls" : "mean"; }

void TextEncoderOptions::validate() const {
  MTREC_CHECK(vocab_size_ > 0, "TextEncoderOptions: vocab_size must be > 0, got ", vocab_size_);
  MTREC_CHECK(dim_ > 0, "TextEncoderOptions: dim must be > 0, got ", dim_);
  MTREC_CHECK(layers_ >= 0, "TextEncoderOptions: layers must be >= 0, got ", layers_);
  MTREC_CHECK(heads_ > 0 && dim_ % heads_ == 0, "TextEncoderOptions: dim ", dim_,
              " must be a positive multiple of heads ", heads_);
  MTREC_CHECK(ffn_dim_ >= 0, "TextEncoderOptions: ffn_dim must be >= 0, got ", ffn_dim_);
  MTREC_CHECK(max_len_ > 0, "TextEncoderOptions: max_len must be > 0, got ", max_len_);
  MTREC_CHECK(dropout_ >= 0 && dropout_ < 1, "TextEncoderOptions: dropout must be in [0, 1), got ", dropout_);
  MTREC_CHECK(out_dim_ >= 0, "TextEncoderOptions: out_dim must be >= 0, got ", out_dim_);
  MTREC_CHECK(pad_id_ >= 0 && pad_id_ < vocab_size_, "TextEncoderOptions: pad_id ", pad_id_,
              " outside the vocabulary [0, ", vocab_size_, ")");
  MTREC_CHECK(type_vocab_size_ >= 0, "TextEncoderOptions: type_vocab_size must be >= 0, got ", type_vocab_size_);
  MTREC_CHECK(layer_norm_eps_ > 0, "TextEncoderOptions: layer_norm_eps must be > 0, got ", layer_norm_eps_);
}

// ---------------------------------------------------------------------------------------------
TransformerLayerImpl::TransformerLayerImpl(const TextEncoderOptions& opts) : options(opts) { reset(); }

void TransformerLayerImpl::reset() {
  const int64_t d = options.dim(), f = options.effective_ffn_dim();
  query = register_module("query", torch::nn::Linear(d, d));
  key = register_module("key", torch::nn::Linear(d, d));
  value = register_module("value", torch::nn::Linear(d, d));
  attn_out = register_module("attn_out", torch::nn::Linear(d, d));
  ffn_in = register_module("ffn_in", torch::nn::Linear(d, f));
  ffn_out = register_module("ffn_out", torch::nn::Linear(f, d));
  auto ln = torch::nn::LayerNormOptions({d}).eps(options.layer_norm_eps());
  norm1 = register_module("norm1", torch::nn::LayerNorm(ln));
  norm2 = register_module("norm2", torch::nn::LayerNorm(ln));
}

at::Tensor TransformerLayerImpl::self_attention(const at::Tensor& x, const at::Tensor& mask) {
  const int64_t b = x.size(0), l = x.size(1), h = options.heads(), dh = options.dim() / h;
  auto split = [&](const at::Tensor& t) { return t.view({b, l, h, dh}).transpose(1, 2); };  // [B,H,L,Dh]
  at::Tensor ctx = attention(split(query(x)), split(key(x)), split(value(x)), mask, options.dropout(), is_training());
  return attn_out(ctx.transpose(1, 2).reshape({b, l, options.dim()}));
}

at::Tensor TransformerLayerImpl::forward(const at::Tensor& x, const at::Tensor& mask) {
  const double p = options.dropout();
  const bool train = is_training();
  auto ffn = [&](const at::Tensor& t) { return ffn_out(apply_dropout(torch::gelu(ffn_in(t)), p, train)); };
  if (options.pre_layer_norm()) {
    at::Tensor y = x + apply_dropout(self_attention(norm1(x), mask), p, train);
    return y + apply_dropout(ffn(norm2(y)), p, train);
  }
  at::Tensor y = norm1(x + apply_dropout(self_attention(x, mask), p, train));
  return norm2(y + apply_dropout(ffn(y), p, train));
}

// ---------------------------------------------------------------------------------------------
TextEncoderImpl::TextEncoderImpl(TextEncoderOptions opts) : options(std::move(opts)) {
  options.validate();
  reset();
}

void TextEncoderImpl::reset() {
  const int64_t d = options.dim();
  token_embedding = register_module("token_embedding", torch::nn::Embedding(options.vocab_size(), d));
  position_embedding = register_module("position_embedding", torch::nn::Embedding(options.max_len(), d));
  // Small init as in BERT: N(0, 0.02) keeps the residual stream well scaled from the start.
  torch::NoGradGuard no_grad;
  token_embedding->weight.normal_(0, 0.02);
  position_embedding->weight.normal_(0, 0.02);
  if (options.type_vocab_size() > 0) {
    type_embedding = register_module("type_embedding", torch::nn::Embedding(options.type_vocab_size(), d));
    type_embedding->weight.normal_(0, 0.02);
  }
  auto ln = torch::nn::LayerNormOptions({d}).eps(options.layer_norm_eps());
  if (options.pre_layer_norm()) {
    final_norm = register_module("final_norm", torch::nn::LayerNorm(ln));
  } else {
    embedding_norm = register_module("embedding_norm", torch::nn::LayerNorm(ln));
  }
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.layers(); ++i) layers->push_back(TransformerLayer(options));
  if (options.out_dim() > 0) projection = register_module("projection", torch::nn::Linear(d, options.out_dim()));
}

at::Tensor TextEncoderImpl::encode(const at::Tensor& ids, const at::Tensor& mask, const at::Tensor& token_types) {
  MTREC_CHECK(ids.dim() == 2 && ids.scalar_type() == torch::kInt64, "TextEncoder: ids must be [B, L] int64, got ",
              ids.sizes(), " ", ids.scalar_type());
  const int64_t l = ids.size(1);
  MTREC_CHECK(l >= 1 && l <= options.max_len(), "TextEncoder: sequence length ", l,
              " outside [1, max_len=", options.max_len(), "]");
  if (mask.defined()) {
    MTREC_CHECK(mask.sizes() == ids.sizes() && mask.scalar_type() == torch::kBool, "TextEncoder: mask must be bool ",
                ids.sizes(), ", got ", mask.sizes(), " ", mask.scalar_type());
  }
  at::Tensor positions = torch::arange(l, ids.options());
  at::Tensor x = token_embedding(ids) + position_embedding(positions).unsqueeze(0);
  if (type_embedding) {
    x = x + type_embedding(token_types.defined() ? token_types : torch::zeros_like(ids));
  } else {
    MTREC_CHECK(!token_types.defined(), "TextEncoder: token_types given but type_vocab_size is 0");
  }
  if (embedding_norm) x = embedding_norm(x);
  x = apply_dropout(x, options.dropout(), is_training());
  for (const auto& layer : *layers) x = layer->as<TransformerLayer>()->forward(x, mask);
  if (final_norm) x = final_norm(x);
  return x;
}

at::Tensor TextEncoderImpl::pool(const at::Tensor& hidden, const at::Tensor& mask) {
  at::Tensor pooled;
  if (options.pooling() == Pooling::Cls || !mask.defined()) {
    pooled = options.pooling() == Pooling::Cls ? hidden.select(1, 0) : hidden.mean(1);
  } else {
    at::Tensor w = mask.to(hidden.scalar_type()).unsqueeze(-1);  // [B, L, 1]
    // clamp: an all-padding row pools to zeros instead of 0/0.
    pooled = (hidden * w).sum(1) / w.sum(1).clamp_min(1.0);
  }
  return projection ? projection(pooled) : pooled;
}

TextEncoderOutput TextEncoderImpl::forward(const at::Tensor& ids, const at::Tensor& mask,
                                           const at::Tensor& token_types) {
  at::Tensor hidden = encode(ids, mask, token_types);
  return {hidden, pool(hidden, mask)};
}

// ---------------------------------------------------------------------------------------------
namespace {
constexpr int64_t kFormatVersion = 1;
}

void save_text_encoder(TextEncoderImpl& encoder, const std::string& path) {
  const auto& o = encoder.options;
  torch::serialize::OutputArchive archive;
  archive.write("mtrec_text_encoder.ints", torch::tensor(std::vector<int64_t>{
                                               kFormatVersion, o.vocab_size(), o.dim(), o.layers(), o.heads(),
                                               o.ffn_dim(), o.max_len(), static_cast<int64_t>(o.pooling()), o.out_dim(),
                                               o.pre_layer_norm() ? 1 : 0, o.pad_id(), o.type_vocab_size()}));
  archive.write("mtrec_text_encoder.reals",
                torch::tensor(std::vector<double>{o.dropout(), o.layer_norm_eps()}, torch::kFloat64));
  torch::serialize::OutputArchive params;
  encoder.save(params);
  archive.write("encoder", params);
  std::ostringstream bytes;
  archive.save_to(bytes);
  write_file_atomic(path, bytes.str());
}

TextEncoder load_text_encoder(const std::string& path, const c10::Device& device) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path, torch::kCPU);
  } catch (const c10::Error& e) {
    MTREC_CHECK(false, "cannot read text-encoder checkpoint '", path, "': ", e.what_without_backtrace());
  }
  at::Tensor ints, reals;
  MTREC_CHECK(archive.try_read("mtrec_text_encoder.ints", ints) && archive.try_read("mtrec_text_encoder.reals", reals),
              "'", path, "' is not an mtrec text-encoder checkpoint (no options record)");
  MTREC_CHECK(ints.numel() == 12 && ints[0].item<int64_t>() == kFormatVersion, "'", path,
              "': unsupported text-encoder checkpoint format");
  auto i = [&](int k) { return ints[k].item<int64_t>(); };
  TextEncoderOptions o(i(1), i(2));
  o.layers(i(3))
      .heads(i(4))
      .ffn_dim(i(5))
      .max_len(i(6))
      .pooling(static_cast<Pooling>(i(7)))
      .out_dim(i(8))
      .pre_layer_norm(i(9) != 0)
      .pad_id(i(10))
      .type_vocab_size(i(11))
      .dropout(reals[0].item<double>())
      .layer_norm_eps(reals[1].item<double>());
  TextEncoder encoder(o);
  torch::serialize::InputArchive params;
  MTREC_CHECK(archive.try_read("encoder", params), "'", path, "': no encoder parameters");
  try {
    encoder->load(params);
  } catch (const c10::Error& e) {
    MTREC_CHECK(false, "'", path, "': parameters do not match the stored options: ", e.what_without_backtrace());
  }
  encoder->to(device);
  return encoder;
}

}  // namespace mtrec::nn
