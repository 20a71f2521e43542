#pragma once
// Batched matrix products of many small matrices (attention's q·kᵀ and weights·v) on the CPU:
// at::matmul copies non-contiguous operands (the heads' transposed views) and at::bmm calls the
// BLAS once per matrix through the dispatcher (about 5 µs each, 4.5 ms for 900 products of
// 32×32×32, where the product itself is 0.6 ms). batched_matmul reads any strided operand whose
// matrices have a unit row or column stride as it is, calls cblas_sgemm/dgemm directly per
// matrix, and has its own backward (the same kernel on transposed views). Other devices,
// dtypes, broadcasting shapes, and builds without CBLAS use at::matmul.
//
//   at::Tensor scores = mtrec::nn::batched_matmul(q, k.transpose(-2, -1));   // [B, H, L, L]
#include <ATen/core/Tensor.h>

namespace mtrec::nn {

/// a [..., m, k] · b [..., k, n] -> [..., m, n] (contiguous), the leading dimensions (at most
/// two) equal in a and b; differentiable in both.
at::Tensor batched_matmul(const at::Tensor& a, const at::Tensor& b);

/// Whether batched_matmul has its direct CPU kernel (built with CBLAS).
bool has_cpu_batched_matmul();

}  // namespace mtrec::nn
