#pragma once
// The two training steps that bench/bench_twin.cpp times against their Python twins
// (bench/twin/*.py) and bench/bench_allocator.cpp runs with and without malloc tuning. The
// batches are deterministic formulas that the Python side computes identically, so both engines
// do the same arithmetic on the same shapes.
//
//   text encoder: TextEncoder d=256, 4 layers, 4 heads, ffn 1024, vocab 8000, seq 64, batch 64,
//                 dropout 0.1, mean pooling; row b has 32 + (b*7) % 33 real tokens; loss
//                 pooled.pow(2).mean() + hidden.mean(); AdamW(lr 1e-4, weight decay 0.01).
//   next item:    NextItemModel on ML-100K's shape (1682 items), d=64, 2 layers, 1 head,
//                 max_len 200, dropout 0.2 (quality_sequential's defaults), batch 64; row b holds
//                 min(200, 10 + (b*37) % 250) items, right-aligned; full-softmax loss, clip 5,
//                 AdamW(lr 5e-3).
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <vector>

#include "mtrec/nn/text_encoder.h"
#include "mtrec/tasks/next_item.h"

namespace mtrec::bench {

struct TextStepConfig {
  int64_t dim = 256, layers = 4, heads = 4, seq = 64, batch = 64, vocab = 8000;
  double dropout = 0.1, lr = 1e-4, weight_decay = 0.01;
};

struct NextStepConfig {
  int64_t num_items = 1682, d = 64, layers = 2, heads = 1, max_len = 200, batch = 64;
  double dropout = 0.2, lr = 5e-3, clip = 5.0;
};

/// One training step, ready to run repeatedly (the model and optimiser live inside).
using Step = std::function<void()>;

inline Step make_text_encoder_step(const TextStepConfig& c) {
  torch::manual_seed(1);
  auto enc = std::make_shared<mtrec::nn::TextEncoder>(mtrec::nn::TextEncoderOptions(c.vocab, c.dim)
                                                          .layers(c.layers)
                                                          .heads(c.heads)
                                                          .max_len(c.seq)
                                                          .dropout(c.dropout)
                                                          .pooling(mtrec::nn::Pooling::Mean));
  (*enc)->train();
  torch::Tensor ids = torch::empty({c.batch, c.seq}, torch::kInt64),
                mask = torch::zeros({c.batch, c.seq}, torch::kBool);
  {
    auto a = ids.accessor<int64_t, 2>();
    auto m = mask.accessor<bool, 2>();
    for (int64_t b = 0; b < c.batch; ++b) {
      const int64_t n = std::min<int64_t>(c.seq, c.seq / 2 + (b * 7) % (c.seq / 2 + 1));
      for (int64_t j = 0; j < c.seq; ++j) {
        a[b][j] = j < n ? 5 + (b * 1009 + j * 31) % (c.vocab - 5) : 0;
        m[b][j] = j < n;
      }
    }
  }
  auto opt = std::make_shared<torch::optim::AdamW>((*enc)->parameters(),
                                                   torch::optim::AdamWOptions(c.lr).weight_decay(c.weight_decay));
  return [enc, opt, ids, mask] {
    opt->zero_grad();
    auto out = (*enc)->forward(ids, mask);
    torch::Tensor loss = out.pooled.pow(2).mean() + out.hidden.mean();
    loss.backward();
    opt->step();
  };
}

/// tokens and next-item targets [B, max_len] of the deterministic batch (0 = padding).
inline std::pair<torch::Tensor, torch::Tensor> next_item_batch(const NextStepConfig& c) {
  torch::Tensor tok = torch::zeros({c.batch, c.max_len}, torch::kInt64), tgt = torch::zeros_like(tok);
  auto t = tok.accessor<int64_t, 2>(), g = tgt.accessor<int64_t, 2>();
  for (int64_t b = 0; b < c.batch; ++b) {
    const int64_t n = std::min<int64_t>(c.max_len, 10 + (b * 37) % 250);
    for (int64_t j = 0; j < n; ++j) {
      t[b][c.max_len - n + j] = 1 + (b * 1009 + j * 31) % c.num_items;
      g[b][c.max_len - n + j] = 1 + (b * 1009 + (j + 1) * 31) % c.num_items;
    }
  }
  return {tok, tgt};
}

inline Step make_next_item_step(const NextStepConfig& c) {
  torch::manual_seed(1);
  auto model = std::make_shared<mtrec::NextItemModel>(mtrec::NextItemOptions(c.num_items)
                                                          .d_model(c.d)
                                                          .layers(c.layers)
                                                          .heads(c.heads)
                                                          .max_len(c.max_len)
                                                          .dropout(c.dropout));
  (*model)->train();
  auto [tok, tgt] = next_item_batch(c);
  auto opt = std::make_shared<torch::optim::AdamW>((*model)->parameters(), torch::optim::AdamWOptions(c.lr));
  auto loss_sum = std::make_shared<torch::Tensor>(torch::zeros({}, torch::kDouble));
  const double clip = c.clip;
  return [model, opt, tok = tok, tgt = tgt, loss_sum, clip] {
    opt->zero_grad();
    torch::Tensor loss = (*model)->full_softmax_loss(tok, tgt);
    loss.backward();
    torch::nn::utils::clip_grad_norm_((*model)->parameters(), clip);
    opt->step();
    *loss_sum += loss.detach().to(torch::kDouble);  // as the next-item task accumulates its loss
  };
}

/// Runs `warmup` untimed steps, then `steps` timed ones; returns the milliseconds of each.
inline std::vector<double> time_steps(const Step& step, int warmup, int steps) {
  std::vector<double> ms;
  for (int s = 0; s < warmup + steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    const auto t1 = std::chrono::steady_clock::now();
    if (s >= warmup) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return ms;
}

inline double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace mtrec::bench
