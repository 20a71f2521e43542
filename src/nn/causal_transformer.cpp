#include "mtrec/nn/causal_transformer.h"

#include <torch/torch.h>

#include <cmath>

#include "mtrec/core/check.h"
#include "mtrec/nn/batched_matmul.h"

namespace mtrec::nn {

torch::Tensor causal_padding_mask(const torch::Tensor& valid) {
  MTREC_CHECK(valid.dim() == 2, "causal_padding_mask expects valid [B,L], got dim=", valid.dim());
  const int64_t L = valid.size(1);
  auto opts = torch::TensorOptions().dtype(torch::kBool).device(valid.device());
  torch::Tensor causal = torch::ones({L, L}, opts).tril();                // [L,L] key <= query
  torch::Tensor keys = valid.to(torch::kBool).unsqueeze(1).unsqueeze(1);  // [B,1,1,L]
  torch::Tensor self = torch::eye(L, opts);
  return (causal.logical_and(keys)).logical_or(self);  // [B,1,L,L]
}

CausalBlockImpl::CausalBlockImpl(CausalTransformerOptions options_) : options(std::move(options_)) { reset(); }

void CausalBlockImpl::reset() {
  const int64_t d = options.d_model();
  const int64_t f = options.ffn_dim() > 0 ? options.ffn_dim() : d;
  MTREC_CHECK(d > 0 && options.heads() > 0 && d % options.heads() == 0,
              "CausalTransformer: d_model must be a positive multiple of heads, got d_model=", d,
              " heads=", options.heads());
  MTREC_CHECK(options.dropout() >= 0 && options.dropout() < 1, "dropout must be in [0,1), got ", options.dropout());
  ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  qkv = register_module("qkv", torch::nn::Linear(d, 3 * d));
  out = register_module("out", torch::nn::Linear(d, d));
  ff1 = register_module("ff1", torch::nn::Linear(d, f));
  ff2 = register_module("ff2", torch::nn::Linear(f, d));
  drop = register_module("drop", Dropout(options.dropout()));
  torch::NoGradGuard ng;
  for (auto* lin : {&qkv, &out, &ff1, &ff2}) {
    torch::nn::init::xavier_uniform_((*lin)->weight);
    (*lin)->bias.zero_();
  }
}

torch::Tensor CausalBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& attn_mask) {
  const int64_t B = x.size(0), L = x.size(1), d = options.d_model(), H = options.heads(), dh = d / H;
  // Attention with plain ops (masked softmax): portable across LibTorch versions and devices.
  auto parts = qkv->forward(ln1->forward(x)).view({B, L, 3, H, dh}).permute({2, 0, 3, 1, 4});
  torch::Tensor q = parts[0], k = parts[1], v = parts[2];  // [B,H,L,dh]
  torch::Tensor att = batched_matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(dh)));
  att = att.masked_fill(attn_mask.logical_not(), -std::numeric_limits<float>::infinity());
  att = drop->forward(torch::softmax(att, -1));
  torch::Tensor y = batched_matmul(att, v).transpose(1, 2).reshape({B, L, d});
  torch::Tensor h = x + drop->forward(out->forward(y));
  torch::Tensor f = ff2->forward(drop->forward(torch::gelu(ff1->forward(ln2->forward(h)))));
  return h + drop->forward(f);
}

CausalTransformerImpl::CausalTransformerImpl(CausalTransformerOptions options_) : options(std::move(options_)) {
  reset();
}

void CausalTransformerImpl::reset() {
  MTREC_CHECK(options.layers() >= 1, "CausalTransformer needs layers >= 1, got ", options.layers());
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.layers(); ++i) blocks->push_back(CausalBlock(options));
  final_ln = register_module("final_ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.d_model()})));
}

torch::Tensor CausalTransformerImpl::forward(const torch::Tensor& x, const torch::Tensor& valid) {
  MTREC_CHECK(x.dim() == 3 && x.size(2) == options.d_model(), "CausalTransformer expects x [B,L,", options.d_model(),
              "], got ", x.sizes());
  MTREC_CHECK(valid.dim() == 2 && valid.size(0) == x.size(0) && valid.size(1) == x.size(1),
              "CausalTransformer: valid must be [B,L] = ", x.sizes().slice(0, 2), ", got ", valid.sizes());
  torch::Tensor mask = causal_padding_mask(valid);
  torch::Tensor keep = valid.to(x.dtype()).unsqueeze(-1);
  torch::Tensor h = x * keep;
  for (const auto& m : *blocks) h = m->as<CausalBlockImpl>()->forward(h, mask) * keep;
  return final_ln->forward(h) * keep;
}

}  // namespace mtrec::nn
