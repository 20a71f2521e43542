#include "mtrec/nn/batched_matmul.h"

#include <torch/torch.h>

#include "mtrec/core/check.h"
#include "mtrec/nn/compat.h"

#if MTREC_HAVE_CBLAS
extern "C" {
#include <cblas.h>
}
#endif

namespace mtrec::nn {

#if MTREC_HAVE_CBLAS
namespace {

/// A [B0, B1, rows, cols] view: element (i, j) of matrix (x, y) at data + x*s0 + y*s1 + i*rs + j*cs.
struct Operand {
  at::Tensor keep;  // owns the storage (a contiguous copy when the strides do not fit)
  int64_t s0 = 0, s1 = 0, ld = 0;
  bool trans = false;  // stored column-major: BLAS reads it transposed
};

/// `t` as [B0, B1, rows, cols]; copies only when neither the row nor the column stride is unit.
Operand operand(at::Tensor t) {
  const int64_t rows = t.size(2), cols = t.size(3), rs = t.stride(2), cs = t.stride(3);
  Operand o;
  if ((cs == 1 || cols == 1) && rs >= std::max<int64_t>(1, cols)) {
    o.ld = rs;
  } else if ((rs == 1 || rows == 1) && cs >= std::max<int64_t>(1, rows)) {
    o.trans = true, o.ld = cs;
  } else {
    t = t.contiguous();
    o.ld = std::max<int64_t>(1, cols);
  }
  o.keep = t, o.s0 = t.stride(0), o.s1 = t.stride(1);
  return o;
}

/// c = a · b for 4-D operands (a [B0, B1, m, k], b [B0, B1, k, n]); c is a new contiguous tensor.
at::Tensor product(const at::Tensor& a4, const at::Tensor& b4) {
  const int64_t B0 = a4.size(0), B1 = a4.size(1), m = a4.size(2), k = a4.size(3), n = b4.size(3);
  at::Tensor c = at::empty({B0, B1, m, n}, a4.options().memory_format(c10::MemoryFormat::Contiguous));
  if (c.numel() == 0) return c;
  if (k == 0) return c.zero_();
  const Operand A = operand(a4), B = operand(b4);
  const auto ta = A.trans ? CblasTrans : CblasNoTrans, tb = B.trans ? CblasTrans : CblasNoTrans;
  const int64_t ldc = std::max<int64_t>(1, n);
  auto run = [&](auto* pa, auto* pb, auto* pc, auto gemm) {
    for (int64_t x = 0; x < B0; ++x)
      for (int64_t y = 0; y < B1; ++y)
        gemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), 1, pa + x * A.s0 + y * A.s1, int(A.ld),
             pb + x * B.s0 + y * B.s1, int(B.ld), 0, pc + (x * B1 + y) * m * n, int(ldc));
  };
  if (c.scalar_type() == at::kFloat)
    run(A.keep.data_ptr<float>(), B.keep.data_ptr<float>(), c.data_ptr<float>(), cblas_sgemm);
  else
    run(A.keep.data_ptr<double>(), B.keep.data_ptr<double>(), c.data_ptr<double>(), cblas_dgemm);
  return c;
}

struct BatchedMatmul : torch::autograd::Function<BatchedMatmul> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& a, const at::Tensor& b) {
    ctx->save_for_backward({a, b});
    return product(a, b);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &a = saved[0], &b = saved[1], &g = grad[0];
    at::Tensor ga, gb;
    if (ctx->needs_input_grad(0)) ga = product(g, b.transpose(2, 3));  // dA = dC · Bᵀ
    if (ctx->needs_input_grad(1)) gb = product(a.transpose(2, 3), g);  // dB = Aᵀ · dC
    return {ga, gb};
  }
};

}  // namespace

bool has_cpu_batched_matmul() { return true; }
#else
bool has_cpu_batched_matmul() { return false; }
#endif

at::Tensor batched_matmul(const at::Tensor& a, const at::Tensor& b) {
  MTREC_CHECK(a.dim() >= 2 && b.dim() >= 2, "batched_matmul: operands must have >= 2 dimensions, got ", a.sizes(),
              " and ", b.sizes());
#if MTREC_HAVE_CBLAS
  const int64_t d = a.dim();
  const bool direct = d == b.dim() && d >= 3 && d <= 4 && a.device().is_cpu() && b.device().is_cpu() &&
                      !cpu_autocast_enabled() && a.scalar_type() == b.scalar_type() &&
                      (a.scalar_type() == at::kFloat || a.scalar_type() == at::kDouble) &&
                      a.sizes().slice(0, d - 2) == b.sizes().slice(0, d - 2) && a.size(d - 1) == b.size(d - 2) &&
                      a.size(d - 2) < (1 << 30) && a.size(d - 1) < (1 << 30) && b.size(d - 1) < (1 << 30);
  if (direct) {
    at::Tensor a4 = d == 3 ? a.unsqueeze(0) : a, b4 = d == 3 ? b.unsqueeze(0) : b;
    at::Tensor c = BatchedMatmul::apply(a4, b4);
    return d == 3 ? c.squeeze(0) : c;
  }
#endif
  return at::matmul(a, b);
}

}  // namespace mtrec::nn
