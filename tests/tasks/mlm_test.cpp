// MLM: masking statistics of a seeded draw, and learning a corpus with sequential structure
// well beyond the unigram baseline.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "mtrec/core/check.h"
#include "mtrec/nn/text_encoder.h"
#include "mtrec/tasks/mlm.h"

namespace mtrec::tasks {
namespace {

constexpr int64_t kPad = 0, kCls = 2, kMask = 4, kFirstRegular = 5;

TEST(Mlm, MaskingFollowsBertProportionsAndSparesSpecials) {
  const int64_t vocab = 50, B = 400, L = 50;
  auto opts = MlmOptions(vocab, kMask).special_ids({0, 1, 2, 3, 4});
  torch::manual_seed(11);
  auto ids = torch::randint(kFirstRegular, vocab, {B, L}, torch::kInt64);
  ids.select(1, 0).fill_(kCls);
  auto mask = torch::ones({B, L}, torch::kBool);
  mask.slice(1, 40).slice(0, 0, B / 2) = false;  // half the rows end in padding
  ids.masked_fill_(mask.logical_not(), kPad);
  ids[7][9] = 1;  // an [UNK] inside the text

  auto gen = at::make_generator<at::CPUGeneratorImpl>(123);
  auto m = mlm_mask(ids, mask, opts, gen);
  auto eligible = mask & ids.ge(kFirstRegular);
  const double n_eligible = eligible.sum().item<double>();
  const double n_sel = m.selected.sum().item<double>();
  EXPECT_FALSE((m.selected & eligible.logical_not()).any().item<bool>()) << "a special or pad token was selected";
  EXPECT_NEAR(n_sel / n_eligible, 0.15, 0.01);
  auto sel_in = m.input_ids.index({m.selected}), sel_orig = ids.index({m.selected});
  const double as_mask = sel_in.eq(kMask).sum().item<double>() / n_sel;
  const double changed = (sel_in.ne(kMask) & sel_in.ne(sel_orig)).sum().item<double>() / n_sel;
  const double kept = sel_in.eq(sel_orig).sum().item<double>() / n_sel;
  const double regular = vocab - kFirstRegular;
  EXPECT_NEAR(as_mask, 0.8, 0.02);
  EXPECT_NEAR(changed, 0.1 * (regular - 1) / regular, 0.015);  // a random draw can hit the original
  EXPECT_NEAR(kept, 0.1 + 0.1 / regular, 0.015);
  EXPECT_TRUE(sel_in.ge(kFirstRegular).logical_or(sel_in.eq(kMask)).all().item<bool>()) << "random special drawn";
  // Unselected tokens are untouched and carry no label.
  auto rest = m.selected.logical_not();
  EXPECT_TRUE(torch::equal(m.input_ids.index({rest}), ids.index({rest})));
  EXPECT_TRUE(m.labels.index({rest}).eq(-100).all().item<bool>());
  EXPECT_TRUE(torch::equal(m.labels.index({m.selected}), sel_orig));
  // Same seed, same draw; another seed, another draw.
  auto gen2 = at::make_generator<at::CPUGeneratorImpl>(123), gen3 = at::make_generator<at::CPUGeneratorImpl>(124);
  EXPECT_TRUE(torch::equal(mlm_mask(ids, mask, opts, gen2).input_ids, m.input_ids));
  EXPECT_FALSE(torch::equal(mlm_mask(ids, mask, opts, gen3).selected, m.selected));
  EXPECT_THROW(MlmOptions(vocab, vocab).validate(), Error);
  EXPECT_THROW(MlmOptions(vocab, kMask).replace_with_mask(0.95).validate(), Error);
}

// Rows are [CLS] s, s+k, s+2k, ... (mod 24) with a per-row start s and step k in {1, 2}: a masked
// token follows from its neighbours, while its unigram distribution is uniform (baseline 1/24).
std::pair<at::Tensor, at::Tensor> progression_batch(int64_t B, int64_t L, torch::Generator& gen) {
  const int64_t regular = 24;
  auto start = torch::randint(regular, {B, 1}, gen, torch::kInt64);
  auto step = torch::randint(1, 3, {B, 1}, gen, torch::kInt64);
  auto pos = torch::arange(L - 1, torch::kInt64).unsqueeze(0);
  auto body = (start + step * pos).remainder(regular) + kFirstRegular;
  auto ids = torch::cat({torch::full({B, 1}, kCls, torch::kInt64), body}, 1);
  // Variable lengths: the tail of some rows is padding.
  auto lengths = torch::randint(L / 2, L + 1, {B, 1}, gen, torch::kInt64);
  auto mask = torch::arange(L, torch::kInt64).unsqueeze(0) < lengths;
  return {ids.masked_fill(mask.logical_not(), kPad), mask};
}

TEST(Mlm, LearnsSequentialPatternBeyondUnigramBaseline) {
  torch::manual_seed(12);
  const int64_t vocab = kFirstRegular + 24, L = 14;
  nn::TextEncoder enc(nn::TextEncoderOptions(vocab, 32).layers(2).heads(2).ffn_dim(64).max_len(L).dropout(0.0));
  MlmTask mlm(MlmOptions(vocab, kMask).special_ids({0, 1, 2, 3, 4}).seed(5), 32);
  std::vector<at::Tensor> params = enc->parameters();
  for (auto& p : mlm->parameters()) params.push_back(p);
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(3e-3).weight_decay(0.0));
  torch::Generator data_gen = at::make_generator<at::CPUGeneratorImpl>(99);
  std::vector<double> losses;
  for (int step = 0; step < 300; ++step) {
    auto [ids, mask] = progression_batch(32, L, data_gen);
    auto r = mlm->forward(*enc, ids, mask);
    opt.zero_grad();
    r.loss.backward();
    opt.step();
    losses.push_back(r.loss.item<double>());
  }
  auto mean = [&](size_t from, size_t to) {
    double s = 0;
    for (size_t i = from; i < to; ++i) s += losses[i];
    return s / double(to - from);
  };
  const double first = mean(0, 20), last = mean(losses.size() - 20, losses.size());
  EXPECT_LT(last, 0.4 * first) << "first " << first << " last " << last;

  // Held-out data, eval mode: masked-token accuracy against the unigram-frequency baseline
  // (always predict the most frequent target).
  enc->eval();
  mlm->eval();
  torch::NoGradGuard no_grad;
  auto [ids, mask] = progression_batch(512, L, data_gen);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  auto masking = mlm_mask(ids, mask & ids.ne(kPad), mlm->options, gen);
  auto r = mlm->loss(*enc, masking, mask);
  auto targets = masking.labels.index({masking.selected});
  const double baseline = torch::bincount(targets).max().item<double>() / double(targets.numel());
  EXPECT_GT(r.masked, 800);
  EXPECT_LT(baseline, 0.08);
  EXPECT_GT(r.accuracy, 0.6) << "baseline " << baseline;
  EXPECT_GT(r.accuracy, baseline + 0.5);
}

TEST(Mlm, NothingSelectedGivesZeroLossThatStillBackpropagates) {
  torch::manual_seed(13);
  nn::TextEncoder enc(nn::TextEncoderOptions(10, 8).layers(1).heads(2).max_len(4));
  MlmTask mlm(MlmOptions(10, kMask).special_ids({0, 1, 2, 3, 4}), 8);
  auto ids = torch::full({2, 4}, kCls, torch::kInt64);  // only specials: nothing to predict
  auto r = mlm->forward(*enc, ids, torch::ones({2, 4}, torch::kBool));
  EXPECT_EQ(r.masked, 0);
  EXPECT_EQ(r.loss.item<double>(), 0.0);
  r.loss.backward();
  EXPECT_THROW(mlm->forward(*nn::TextEncoder(nn::TextEncoderOptions(11, 8).layers(1).heads(2)), ids), Error);
}

}  // namespace
}  // namespace mtrec::tasks
