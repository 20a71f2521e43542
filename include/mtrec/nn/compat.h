#pragma once
// The one place for code that depends on the LibTorch version (keyed on TORCH_VERSION_MAJOR /
// TORCH_VERSION_MINOR). Everything else in mtrec calls these shims.
//
//   // q, k, v: [B, H, L, Dh]; key_mask: [B, L] bool, true = real token (takes part)
//   at::Tensor out = mtrec::nn::attention(q, k, v, key_mask, /*dropout_p=*/0.1, is_training());
//   { mtrec::nn::AutocastGuard amp(device, at::kBFloat16); loss = model(x); }  // mixed precision
//
// On LibTorch >= 2.0 attention() runs at::scaled_dot_product_attention (fused flash /
// memory-efficient kernels); on 1.13 it runs attention_reference(), the exact
// softmax(QK^T/sqrt(d) + mask) V. A query whose sequence has no real key at all (an all-padding
// row) yields zeros in both paths, never NaN.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/Device.h>
#include <torch/version.h>

#include "mtrec/nn/batched_matmul.h"
#include "mtrec/nn/dropout.h"

#include <cmath>
#include <limits>

#define MTREC_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

#if MTREC_TORCH_AT_LEAST(2, 0)
#define MTREC_HAS_SDPA 1
#else
#define MTREC_HAS_SDPA 0
#endif

namespace mtrec::nn {

/// True when attention() uses LibTorch's fused scaled_dot_product_attention.
constexpr bool has_fused_attention() { return MTREC_HAS_SDPA != 0; }

namespace detail {
/// Checks shapes and returns the key mask made safe for all-padding rows (every key of such a
/// row is let through so softmax stays finite; the caller zeroes those rows afterwards) and the
/// per-sequence "has any real key" flag [B]. An undefined mask means no padding.
inline void check_attention_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                   const at::Tensor& key_mask) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention: q, k, v must be [B, H, L, Dh], got q ",
              q.sizes(), " k ", k.sizes(), " v ", v.sizes());
  TORCH_CHECK(k.sizes() == v.sizes() && q.size(0) == k.size(0) && q.size(1) == k.size(1) && q.size(3) == k.size(3),
              "attention: incompatible q ", q.sizes(), " k ", k.sizes(), " v ", v.sizes());
  if (key_mask.defined()) {
    TORCH_CHECK(key_mask.scalar_type() == at::kBool, "attention: key_mask must be bool, got ", key_mask.scalar_type());
    TORCH_CHECK(key_mask.dim() == 2 && key_mask.size(0) == k.size(0) && key_mask.size(1) == k.size(2),
                "attention: key_mask must be [B, Lk] = [", k.size(0), ", ", k.size(2), "], got ", key_mask.sizes());
  }
}
}  // namespace detail

/// Exact attention: softmax(q k^T / sqrt(Dh) masked to real keys) v, with dropout on the
/// attention weights when training. Always available (the oracle of the fused path).
inline at::Tensor attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& key_mask, double dropout_p, bool training) {
  detail::check_attention_inputs(q, k, v, key_mask);
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor scores = batched_matmul(q, k.transpose(-2, -1)) * scale;  // [B, H, Lq, Lk]
  at::Tensor any_key;
  if (key_mask.defined()) {
    any_key = key_mask.any(1);  // [B]
    at::Tensor keep = key_mask.logical_or(any_key.logical_not().unsqueeze(1));
    // -inf on padded keys; an all-padding row keeps every key (finite softmax), zeroed below.
    scores = scores.masked_fill(keep.logical_not().view({keep.size(0), 1, 1, keep.size(1)}),
                                -std::numeric_limits<double>::infinity());
  }
  at::Tensor weights = at::softmax(scores, -1);
  if (training && dropout_p > 0) weights = apply_dropout(weights, dropout_p, true);
  at::Tensor out = batched_matmul(weights, v);
  if (any_key.defined()) out = out.masked_fill(any_key.logical_not().view({-1, 1, 1, 1}), 0);
  return out;
}

/// Fast attention: LibTorch's fused kernel where it exists, attention_reference() otherwise.
inline at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& key_mask,
                            double dropout_p, bool training) {
#if MTREC_HAS_SDPA
  detail::check_attention_inputs(q, k, v, key_mask);
  const double p = training ? dropout_p : 0.0;
  if (!key_mask.defined()) return at::scaled_dot_product_attention(q, k, v, {}, p, false);
  at::Tensor any_key = key_mask.any(1);
  // SDPA's boolean attn_mask: true = the key takes part (the opposite of nn.MultiheadAttention's
  // key_padding_mask). All-padding rows get every key, then zeros, as in the reference.
  at::Tensor keep = key_mask.logical_or(any_key.logical_not().unsqueeze(1));
  at::Tensor out = at::scaled_dot_product_attention(q, k, v, keep.view({keep.size(0), 1, 1, keep.size(1)}), p, false);
  return out.masked_fill(any_key.logical_not().view({-1, 1, 1, 1}), 0);
#else
  return attention_reference(q, k, v, key_mask, dropout_p, training);
#endif
}

/// Whether autocast is on for CPU tensors (the per-device API since 2.4).
inline bool cpu_autocast_enabled() {
#if MTREC_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(c10::DeviceType::CPU);
#else
  return at::autocast::is_cpu_enabled();
#endif
}

/// RAII mixed precision on `device` (CUDA or CPU) with `dtype` (kBFloat16 or kHalf), as
/// Python's torch.autocast: eligible ops (matmul, linear) run in `dtype`, reductions in fp32.
/// Restores the previous state on destruction. Disabled (no-op) when `enabled` is false.
class AutocastGuard {
 public:
  AutocastGuard(c10::Device device, at::ScalarType dtype, bool enabled = true)
      : type_(device.type()), enabled_(enabled) {
    TORCH_CHECK(type_ == c10::DeviceType::CUDA || type_ == c10::DeviceType::CPU,
                "AutocastGuard: only CPU and CUDA are supported, got ", device);
    if (!enabled_) return;
    prev_enabled_ = get_enabled();
    prev_dtype_ = get_dtype();
    set(true, dtype);
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    set(prev_enabled_, prev_dtype_);
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
#if MTREC_TORCH_AT_LEAST(2, 4)
  // 2.4 made autocast state per device type and deprecated the per-backend functions.
  bool get_enabled() const { return at::autocast::is_autocast_enabled(type_); }
  at::ScalarType get_dtype() const { return at::autocast::get_autocast_dtype(type_); }
  void set(bool on, at::ScalarType dtype) {
    at::autocast::set_autocast_enabled(type_, on);
    at::autocast::set_autocast_dtype(type_, dtype);
  }
#else
  bool get_enabled() const {
    return type_ == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
  }
  at::ScalarType get_dtype() const {
    return type_ == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                          : at::autocast::get_autocast_cpu_dtype();
  }
  void set(bool on, at::ScalarType dtype) {
    if (type_ == c10::DeviceType::CUDA) {
      at::autocast::set_enabled(on);
      at::autocast::set_autocast_gpu_dtype(dtype);
    } else {
      at::autocast::set_cpu_enabled(on);
      at::autocast::set_autocast_cpu_dtype(dtype);
    }
  }
#endif
  c10::DeviceType type_;
  bool enabled_;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kFloat;
};

}  // namespace mtrec::nn
