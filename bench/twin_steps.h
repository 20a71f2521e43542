#pragma once
// The training steps that bench/bench_twin.cpp times against their Python twins
// (bench/twin/*.py); bench/bench_allocator.cpp runs the first two with and without malloc
// tuning. The batches are deterministic formulas that the Python side computes identically, so
// both engines do the same arithmetic on the same shapes.
//
//   text encoder: TextEncoder d=256, 4 layers, 4 heads, ffn 1024, vocab 8000, seq 64, batch 64,
//                 dropout 0.1, mean pooling; row b has 32 + (b*7) % 33 real tokens; loss
//                 pooled.pow(2).mean() + hidden.mean(); AdamW(lr 1e-4, weight decay 0.01).
//   next item:    NextItemModel on ML-100K's shape (1682 items), d=64, 2 layers, 1 head,
//                 max_len 200, dropout 0.2 (quality_sequential's defaults), batch 64; row b holds
//                 min(200, 10 + (b*37) % 250) items, right-aligned; full-softmax loss, clip 5,
//                 AdamW(lr 5e-3).
//   joint:        the unified model's default joint training step (fit_joint's defaults, six
//                 tasks, text fine-tuned) on a goodbooks-sized world: 53,424 users, 10,000
//                 items, 3 scenarios, vocabulary 595 (what the synthetic world's tokenizer
//                 learns), text encoder d=64, 2 layers, 2 heads, max_len 32; item texts of
//                 15-27 tokens, profiles of 10-21. The batch of 512 copies the statistics of
//                 JointSource batches of bench_joint's world at its full 1.9M rows: 512 users
//                 (profiles), 480 items, 449 distinct histories (64 rows without one, the
//                 others 1-20 items, mean 6.9), 256 contexts of 3-17 tokens, 176 positives
//                 (CTR columns click, rating, wishlist; the rest impressions), 44 rated rows,
//                 154 next-item rows, 32 MLM texts (79 masked tokens). The step: forward, the
//                 library's joint losses (model/joint_tasks.h) under static weights (MLM 0.1),
//                 read-back, backward, clip 5, AdamW(lr 2e-3, weight decay 0.01; text.* at
//                 0.03x), as Trainer::step_batch runs them. The text-cache refresh (every 50
//                 steps) is left out on both sides.
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <vector>

#include "mtrec/core/head.h"
#include "mtrec/model/joint_tasks.h"
#include "mtrec/model/unified.h"
#include "mtrec/nn/text_encoder.h"
#include "mtrec/tasks/next_item.h"
#include "mtrec/train/optim.h"
#include "mtrec/train/weighting.h"

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

struct JointStepConfig {
  int64_t users = 53424, items = 10000, scenarios = 3, batch = 512, vocab = 595, text_dim = 64, text_layers = 2,
          text_heads = 2, text_max_len = 32, mlm_texts = 32;
  double lr = 2e-3, weight_decay = 0.01, clip = 5.0, mlm_lambda = 0.1, global_mean = 3.6;
  // UnifiedModelImpl::use_spare_core: off, the step computes on the intra-op threads alone (as
  // the twin does); on (the library's default), the batch's profiles are encoded on a spare core.
  bool spare_core = true;
};

namespace joint_detail {
// Token ids 0..4 are the specials (pad 0, mask 4), as the SentencePiece tokenizer numbers them.
inline int64_t token(const JointStepConfig& c, int64_t a) { return 5 + a % (c.vocab - 5); }
inline int64_t profile_len(int64_t u) {
  static const int64_t len[16] = {19, 20, 18, 19, 21, 10, 19, 20, 18, 19, 11, 20, 19, 21, 18, 19};  // mean 18.2
  return len[u % 16];
}
inline int64_t item_len(int64_t i) { return 15 + (i * 7) % 13; }  // 15..27, mean 21
inline int64_t context_len(int64_t k) {
  static const int64_t len[8] = {3, 6, 4, 6, 8, 3, 6, 9};
  return k == 100 ? 17 : len[k % 8];
}
inline int64_t history_len(int64_t b) {
  return b % 8 == 0 ? 0 : std::min<int64_t>(20, 1 + ((b * 37) % 21) * ((b * 11) % 21) / 16);
}
inline int64_t batch_item(const JointStepConfig& c, int64_t b) {
  return ((b % 16 == 15 ? b - 1 : b) * 2713 + 7) % c.items;  // 480 distinct of 512
}
}  // namespace joint_detail

/// Token rows of every item's and every user's text (model/unified.h's item_tokens, user_tokens).
inline std::pair<std::vector<std::vector<int64_t>>, std::vector<std::vector<int64_t>>> joint_text_rows(
    const JointStepConfig& c) {
  using namespace joint_detail;
  std::vector<std::vector<int64_t>> items(size_t(c.items)), users(size_t(c.users));
  for (int64_t i = 0; i < c.items; ++i)
    for (int64_t j = 0; j < item_len(i); ++j) items[size_t(i)].push_back(token(c, i * 1009 + j * 31));
  for (int64_t u = 0; u < c.users; ++u)
    for (int64_t j = 0; j < profile_len(u); ++j) users[size_t(u)].push_back(token(c, u * 733 + j * 37));
  return {items, users};
}

/// The joint batch (model/joint_data.h's fields) of the deterministic rows.
inline Batch joint_batch(const JointStepConfig& c) {
  using namespace joint_detail;
  const int64_t B = c.batch, M = c.mlm_texts;
  int64_t L = 1, Lc = 1;  // the batch's widths: its longest history (20) and context (17)
  for (int64_t b = 0; b < B; ++b) L = std::max(L, history_len(b)), Lc = std::max(Lc, context_len(b / 2));
  auto i64 = [](std::vector<int64_t> sizes) { return torch::zeros(sizes, torch::kInt64); };
  auto flag = [](std::vector<int64_t> sizes) { return torch::zeros(sizes, torch::kBool); };
  at::Tensor user = i64({B}), item = i64({B}), scen = i64({B}), hist = i64({B, L}), rating = torch::zeros({B}),
             click = torch::zeros({B, 3}), m_rating = flag({B}), m_next = flag({B}), m_match = flag({B}),
             ctx = i64({B, Lc}), ctx_mask = flag({B, Lc});
  {
    auto u = user.accessor<int64_t, 1>(), i = item.accessor<int64_t, 1>(), sc = scen.accessor<int64_t, 1>();
    auto h = hist.accessor<int64_t, 2>(), cx = ctx.accessor<int64_t, 2>();
    auto ra = rating.accessor<float, 1>();
    auto cl = click.accessor<float, 2>();
    auto mr = m_rating.accessor<bool, 1>(), mn = m_next.accessor<bool, 1>(), mm = m_match.accessor<bool, 1>();
    auto cm = ctx_mask.accessor<bool, 2>();
    for (int64_t b = 0; b < B; ++b) {
      // A third of the rows are positives (behaviour click, rating or wishlist), the rest
      // impressions; two rows share each context (a session's query or page).
      const int64_t r = b % 24, s = b % 16, n = history_len(b), k = b / 2;
      const bool positive = r < 8, rated = r == 1 || r == 5, wished = r == 6;
      u[b] = (b * 7919 + 13) % c.users;
      i[b] = batch_item(c, b);
      sc[b] = s < 9 ? 0 : s < 13 ? 1 : 2;
      for (int64_t j = 0; j < n; ++j) h[b][L - n + j] = 1 + (b * 1009 + j * 31) % c.items;
      ra[b] = rated ? float(1 + (b * 3) % 5) : 0.f;
      mr[b] = rated;
      cl[b][0] = positive, cl[b][1] = rated, cl[b][2] = wished;
      mn[b] = positive && n > 0;
      mm[b] = positive;
      for (int64_t j = 0; j < context_len(k); ++j) cx[b][j] = token(c, k * 131 + j * 17), cm[b][j] = true;
    }
  }
  int64_t Lm = 1;
  auto mlm_len = [](int64_t m) { return m % 6 == 0 ? item_len(m) : profile_len(m); };
  for (int64_t m = 0; m < M; ++m) Lm = std::max(Lm, mlm_len(m));
  at::Tensor ids = i64({M, Lm}), labels = torch::full({M, Lm}, -100, torch::kInt64), sel = flag({M, Lm}),
             att = flag({M, Lm});
  {
    auto id = ids.accessor<int64_t, 2>(), lb = labels.accessor<int64_t, 2>();
    auto se = sel.accessor<bool, 2>(), ak = att.accessor<bool, 2>();
    for (int64_t m = 0; m < M; ++m)
      for (int64_t j = 0; j < mlm_len(m); ++j) {
        const int64_t a = token(c, m * 389 + j * 23);
        const bool picked = j > 0 && (m * 5 + j * 3) % 7 == 2;  // about 1 token in 7, never the first
        id[m][j] = picked && (m + j) % 10 < 8 ? 4 : a, ak[m][j] = true, se[m][j] = picked;
        if (picked) lb[m][j] = a;
      }
  }
  Batch out;
  out.size = B;
  out.fields = {{"user", user},
                {"item", item},
                {"scenario", scen},
                {"history", hist},
                {"rating", rating},
                {"mask/rating", m_rating},
                {"click", click},
                {"mask/ctr", torch::ones({B}, torch::kBool)},
                {"mask/next_item", m_next},
                {"mask/match", m_match},
                {"context_ids", ctx},
                {"context_mask", ctx_mask},
                {"mask/scenario", torch::ones({B}, torch::kBool)},
                {"mlm/input_ids", ids},
                {"mlm/labels", labels},
                {"mlm/selected", sel},
                {"mlm/attention_mask", att}};
  return out;
}

/// The unified model of the joint step (its parameters are what both sides count).
inline mtrec::UnifiedModel make_joint_model(const JointStepConfig& c) {
  namespace mn = mtrec::nn;
  torch::manual_seed(1);
  mn::TextEncoder encoder(mn::TextEncoderOptions(c.vocab, c.text_dim)
                              .layers(c.text_layers)
                              .heads(c.text_heads)
                              .max_len(c.text_max_len)
                              .pooling(mn::Pooling::Mean)
                              .dropout(0.1)
                              .pad_id(0));
  auto [item_rows, user_rows] = joint_text_rows(c);
  // fit_joint's model: the defaults, every head, the data's three CTR columns. The refresh of
  // the text caches is pushed beyond any run (the twin leaves it out too).
  auto o = mtrec::UnifiedOptions(c.users, c.items, c.scenarios)
               .tasks(mtrec::all_heads())
               .ctr_columns(3)
               .global_mean(c.global_mean)
               .text_refresh_every(int64_t(1) << 40);
  return mtrec::UnifiedModel(o, encoder, item_rows, user_rows, 0);  // encodes the text caches once
}

inline int64_t parameter_count(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

/// The joint step: Trainer::step_batch's sequence on the library's objects (the engine model,
/// the joint tasks, the static loss weighting, gradient_norm/scale_gradients, AdamW with the
/// trainer's parameter groups), without its NaN guard, observers and schedule.
inline Step make_joint_step(const JointStepConfig& c, int64_t* parameters = nullptr) {
  auto model = make_joint_model(c);
  model->use_spare_core = c.spare_core;
  model->train();
  if (parameters) *parameters = parameter_count(*model);
  auto engine = std::make_shared<mtrec::UnifiedEngineModel>(model);
  auto tasks =
      std::make_shared<std::vector<std::unique_ptr<mtrec::Objective>>>(mtrec::make_joint_tasks(model->options));
  std::vector<std::string> names;
  std::vector<double> weights;
  for (const auto& t : *tasks) names.push_back(t->name()), weights.push_back(t->name() == "mlm" ? c.mlm_lambda : 1.0);
  auto weighting = std::make_shared<mtrec::LossWeighting>(names, weights, mtrec::LossWeightingOptions(), torch::kCPU);
  // The trainer's groups: every dense parameter, less those under an lr_scales() prefix, which
  // form a group each at that multiple of the lr.
  auto params = std::make_shared<std::vector<at::Tensor>>();
  std::vector<at::Tensor> rest, scaled;
  const auto scales = engine->lr_scales();
  for (auto& p : model->named_parameters(true)) {
    params->push_back(p.value());
    (p.key().rfind(scales.at(0).first, 0) == 0 ? scaled : rest).push_back(p.value());
  }
  std::vector<torch::optim::OptimizerParamGroup> groups{rest, scaled};
  auto opt =
      std::make_shared<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(c.lr).weight_decay(c.weight_decay));
  opt->param_groups()[1].options().set_lr(c.lr * scales.at(0).second);
  auto batch = std::make_shared<Batch>(joint_batch(c));
  const double clip = c.clip;
  return [engine, tasks, weighting, params, opt, batch, clip] {
    for (auto& p : *params) p.mutable_grad() = at::Tensor();  // the trainer's zero_grad
    mtrec::Outputs out = engine->forward(*batch);
    std::vector<at::Tensor> losses;
    for (const auto& t : *tasks) losses.push_back(t->loss(out, *batch).to(at::kFloat));
    at::Tensor total = weighting->joint_loss(losses);
    std::vector<at::Tensor> readback;  // the NaN guard's and the observers' one copy to the host
    for (const auto& l : losses) readback.push_back(l.detach());
    readback.push_back(total.detach());
    at::Tensor host = torch::stack(readback).to(c10::kCPU, at::kDouble);
    (void)host;
    total.backward();
    const double norm = mtrec::gradient_norm(*params);
    if (norm > clip) mtrec::scale_gradients(*params, clip / (norm + 1e-6));
    opt->step();
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
