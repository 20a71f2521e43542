#include "mtrec/tasks/mlm.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "mtrec/core/check.h"
#include "mtrec/core/random.h"
#include "mtrec/text/tokenizer.h"

namespace mtrec {

void MlmOptions::validate() const {
  MTREC_CHECK(vocab_size_ > 1, "MlmOptions: vocab_size must be > 1, got ", vocab_size_);
  MTREC_CHECK(mask_id_ >= 0 && mask_id_ < vocab_size_, "MlmOptions: mask_id ", mask_id_, " outside [0, ", vocab_size_,
              ")");
  MTREC_CHECK(mask_prob_ > 0 && mask_prob_ <= 1, "MlmOptions: mask_prob must be in (0, 1], got ", mask_prob_);
  MTREC_CHECK(replace_with_mask_ >= 0 && replace_with_random_ >= 0 && replace_with_mask_ + replace_with_random_ <= 1,
              "MlmOptions: replace_with_mask ", replace_with_mask_, " + replace_with_random ", replace_with_random_,
              " must be a split of [0, 1]");
  for (int64_t s : special_ids_) {
    MTREC_CHECK(s >= 0 && s < vocab_size_, "MlmOptions: special id ", s, " outside [0, ", vocab_size_, ")");
  }
  MTREC_CHECK(static_cast<int64_t>(special_ids_.size()) < vocab_size_,
              "MlmOptions: every id is special; nothing left to predict");
}

MlmMasking mlm_mask(const at::Tensor& ids, const at::Tensor& mask, const MlmOptions& o, at::Generator& gen) {
  MTREC_CHECK(ids.dim() == 2 && ids.scalar_type() == torch::kInt64, "mlm_mask: ids must be [B, L] int64, got ",
              ids.sizes(), " ", ids.scalar_type());
  MTREC_CHECK(!mask.defined() || mask.sizes() == ids.sizes(), "mlm_mask: mask ", mask.sizes(), " != ids ", ids.sizes());
  const auto device = ids.device();
  at::Tensor cpu_ids = ids.to(torch::kCPU);
  at::Tensor eligible =
      mask.defined() ? mask.to(torch::kCPU).to(torch::kBool) : torch::ones_like(cpu_ids, torch::kBool);
  // Non-special ids, for the eligibility test and as the pool of random replacements.
  at::Tensor is_special = torch::zeros({o.vocab_size()}, torch::kBool);
  for (int64_t s : o.special_ids()) is_special[s] = true;
  eligible = eligible & is_special.index({cpu_ids}).logical_not();
  at::Tensor regular = is_special.logical_not().nonzero().squeeze(1);  // [V_regular]

  auto u = [&](at::IntArrayRef size) { return torch::rand(size, gen, torch::kFloat64); };
  at::Tensor selected = (u(cpu_ids.sizes()) < o.mask_prob()) & eligible;
  at::Tensor action = u(cpu_ids.sizes());
  at::Tensor to_mask = selected & (action < o.replace_with_mask());
  at::Tensor to_random =
      selected & (action >= o.replace_with_mask()) & (action < o.replace_with_mask() + o.replace_with_random());
  at::Tensor random_ids = regular.index({torch::randint(regular.size(0), cpu_ids.sizes(), gen, torch::kInt64)});

  at::Tensor input = torch::where(to_mask, torch::full_like(cpu_ids, o.mask_id()), cpu_ids);
  input = torch::where(to_random, random_ids, input);
  at::Tensor labels = torch::where(selected, cpu_ids, torch::full_like(cpu_ids, -100));
  return {input.to(device), labels.to(device), selected.to(device)};
}

// ---------------------------------------------------------------------------------------------
MlmHeadImpl::MlmHeadImpl(int64_t dim_, int64_t vocab_size_, double eps)
    : dim(dim_), vocab_size(vocab_size_), layer_norm_eps(eps) {
  reset();
}

void MlmHeadImpl::reset() {
  dense = register_module("dense", torch::nn::Linear(dim, dim));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(layer_norm_eps)));
  bias = register_parameter("bias", torch::zeros({vocab_size}));
}

at::Tensor MlmHeadImpl::forward(const at::Tensor& hidden, const at::Tensor& embedding) {
  MTREC_CHECK(embedding.dim() == 2 && embedding.size(0) == vocab_size && embedding.size(1) == dim,
              "MlmHead: embedding must be [", vocab_size, ", ", dim, "], got ", embedding.sizes());
  at::Tensor t = norm(torch::gelu(dense(hidden)));
  return torch::matmul(t, embedding.t()) + bias;
}

// ---------------------------------------------------------------------------------------------
MlmTaskImpl::MlmTaskImpl(MlmOptions opts, int64_t dim_, double eps)
    : options(std::move(opts)),
      dim(dim_),
      layer_norm_eps(eps),
      generator(at::make_generator<at::CPUGeneratorImpl>(derive_seed(options.seed(), "mlm"))) {
  options.validate();
  reset();
}

void MlmTaskImpl::reset() { head = register_module("head", MlmHead(dim, options.vocab_size(), layer_norm_eps)); }

MlmResult mlm_result(const at::Tensor& logits_in, const at::Tensor& targets) {
  MlmResult r;
  r.masked = targets.numel();
  if (r.masked == 0) {
    r.loss = logits_in.sum() * 0.0;  // keeps the graph so a joint loss can still call backward()
    return r;
  }
  // Reduced-precision logits (autocast) are upcast: the log-softmax over the vocabulary needs fp32.
  at::Tensor logits = logits_in.scalar_type() != torch::kFloat64 ? logits_in.to(torch::kFloat32) : logits_in;
  r.loss = torch::nn::functional::cross_entropy(logits, targets);
  r.accuracy = logits.argmax(-1).eq(targets).to(torch::kFloat64).mean().item<double>();
  return r;
}

std::pair<at::Tensor, at::Tensor> MlmTaskImpl::selected_logits(nn::TextEncoderImpl& encoder, const MlmMasking& m,
                                                               const at::Tensor& mask) {
  MTREC_CHECK(encoder.options.vocab_size() == options.vocab_size(), "MlmTask: encoder vocabulary ",
              encoder.options.vocab_size(), " != MLM vocabulary ", options.vocab_size());
  at::Tensor hidden = encoder.encode(m.input_ids, mask);
  at::Tensor picked = hidden.index({m.selected});  // [N, dim]
  at::Tensor targets = m.labels.index({m.selected});
  return {head(picked, encoder.token_embedding_weight()), targets};
}

MlmResult MlmTaskImpl::loss(nn::TextEncoderImpl& encoder, const MlmMasking& m, const at::Tensor& mask) {
  auto [logits, targets] = selected_logits(encoder, m, mask);
  return mlm_result(logits, targets);
}

MlmResult MlmTaskImpl::forward(nn::TextEncoderImpl& encoder, const at::Tensor& ids, const at::Tensor& mask) {
  // Padding is never a prediction target, whether or not the caller listed it as special.
  at::Tensor eligible = ids.ne(encoder.options.pad_id());
  if (mask.defined()) eligible = eligible & mask;
  return loss(encoder, mlm_mask(ids, eligible, options, generator), mask);
}

// ---------------------------------------------------------------------------------------------
MlmSource::MlmSource(std::vector<std::vector<int64_t>> rows, int64_t pad_id, MlmOptions options)
    : rows_(std::move(rows)), pad_id_(pad_id), options_(std::move(options)) {
  options_.validate();
  MTREC_CHECK(!rows_.empty(), "MLM pretraining: no texts");
  for (const auto& r : rows_)
    for (int64_t id : r)
      MTREC_CHECK(id >= 0 && id < options_.vocab_size(), "MLM pretraining: token id ", id, " outside [0, ",
                  options_.vocab_size(), ")");
}

Batch MlmSource::make_batch(const std::vector<int64_t>& rows, const c10::Device& device) const {
  MTREC_CHECK(!rows.empty(), "MlmSource: empty batch");
  std::vector<std::vector<int64_t>> chunk;
  chunk.reserve(rows.size());
  for (int64_t r : rows) chunk.push_back(rows_.at(r));
  BatchEncoding enc = mtrec::make_batch(chunk, pad_id_);
  at::Tensor mask = enc.attention_mask.to(torch::kBool);
  // Padding is never a prediction target, whether or not the caller listed it as special.
  at::Tensor eligible = mask & enc.input_ids.ne(pad_id_);
  // Rows of an epoch are a permutation: the first row names the batch within it.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(derive_seed(seed_, "mlm-batch-" + std::to_string(rows.front())));
  MlmMasking m = mlm_mask(enc.input_ids, eligible, options_, gen);
  Batch b;
  b.size = static_cast<int64_t>(rows.size());
  b.fields["input_ids"] = m.input_ids.to(device);
  b.fields["labels"] = m.labels.to(device);
  b.fields["selected"] = m.selected.to(device);
  b.fields["attention_mask"] = mask.to(device);
  return b;
}

MlmPretrainModuleImpl::MlmPretrainModuleImpl(nn::TextEncoder encoder_, MlmTask mlm_) {
  MTREC_CHECK(encoder_->options.vocab_size() == mlm_->options.vocab_size(), "MLM pretraining: encoder vocabulary ",
              encoder_->options.vocab_size(), " != MLM vocabulary ", mlm_->options.vocab_size());
  encoder = register_module("encoder", std::move(encoder_));
  mlm = register_module("mlm", std::move(mlm_));
}

Outputs MlmEngineModel::forward(const Batch& b) {
  MlmMasking m{b.at("input_ids"), b.at("labels"), b.at("selected")};
  auto [logits, targets] = module_->mlm->selected_logits(*module_->encoder, m, b.at("attention_mask"));
  return {{"mlm/logits", logits}, {"mlm/targets", targets}};
}

at::Tensor MlmObjective::loss(const Outputs& out, const Batch&) {
  const auto& logits = out.at("mlm/logits");
  const auto& targets = out.at("mlm/targets");
  MlmResult r = mlm_result(logits, targets);
  if (r.masked > 0) {
    counts_.masked += r.masked;
    counts_.correct += static_cast<int64_t>(std::llround(r.accuracy * static_cast<double>(r.masked)));
    counts_.loss_sum += r.loss.item<double>() * static_cast<double>(r.masked);
  }
  return r.loss;
}

MlmObjective::Counts MlmObjective::take_counts() {
  Counts c = counts_;
  counts_ = Counts();
  return c;
}

}  // namespace mtrec
