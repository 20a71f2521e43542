// MLM: masking statistics of a seeded draw, and learning a corpus with sequential structure
// well beyond the unigram baseline.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cctype>
#include <map>
#include <sstream>

#include "mtrec/core/check.h"
#include "mtrec/data/synthetic.h"
#include "mtrec/nn/text_encoder.h"
#include "mtrec/tasks/mlm.h"

namespace mtrec {
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

// A small repetitive corpus: every row is one of 6 fixed random "sentences" over 24 regular
// tokens, cut at a random length. A masked token follows from its context (which sentence,
// which position), while its unigram distribution is close to uniform (baseline ~1/24).
std::pair<at::Tensor, at::Tensor> template_batch(int64_t B, int64_t L, torch::Generator& gen) {
  static const at::Tensor templates = [] {
    auto g = at::make_generator<at::CPUGeneratorImpl>(2024);
    return torch::randint(kFirstRegular, kFirstRegular + 24, {6, 64}, g, torch::kInt64);
  }();
  auto pick = torch::randint(templates.size(0), {B}, gen, torch::kInt64);
  auto body = templates.index({pick}).slice(1, 0, L - 1);
  auto ids = torch::cat({torch::full({B, 1}, kCls, torch::kInt64), body}, 1);
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
  for (int step = 0; step < 150; ++step) {
    auto [ids, mask] = template_batch(32, L, data_gen);
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
  auto [ids, mask] = template_batch(512, L, data_gen);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  auto masking = mlm_mask(ids, mask & ids.ne(kPad), mlm->options, gen);
  auto r = mlm->loss(*enc, masking, mask);
  auto targets = masking.labels.index({masking.selected});
  const double baseline = torch::bincount(targets).max().item<double>() / double(targets.numel());
  EXPECT_GT(r.masked, 500);
  EXPECT_LT(baseline, 0.16);
  EXPECT_GT(r.accuracy, 0.6) << "baseline " << baseline;
  std::printf("masked-token accuracy %.3f, unigram baseline %.3f, loss %.3f -> %.3f\n", r.accuracy, baseline, first,
              last);
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

// Items of the synthetic world: brief MLM pretraining on their text must make nearest
// neighbours (cosine of mean-pooled embeddings) share the generator's main topic more often.
// Words are tokenised by whitespace here: the point is the encoder, not the tokenizer.
double nearest_neighbour_topic_agreement(const at::Tensor& emb, const std::vector<int32_t>& topic) {
  auto x = torch::nn::functional::normalize(emb, torch::nn::functional::NormalizeFuncOptions().dim(1));
  auto sim = torch::matmul(x, x.t());
  sim.fill_diagonal_(-2.0);
  auto nn = sim.argmax(1);
  int64_t agree = 0;
  for (int64_t i = 0; i < nn.size(0); ++i) agree += topic[i] == topic[nn[i].item<int64_t>()];
  return double(agree) / double(nn.size(0));
}

TEST(Mlm, PretrainingSeparatesSyntheticTopics) {
  auto world = generate_world(SyntheticOptions().users(20).items(300).topics(8).interactions(500).seed(3));
  const auto& items = world.data.item_text;
  std::map<std::string, int64_t> vocab;
  const int64_t L = 28;
  std::vector<std::vector<int64_t>> rows;
  for (int32_t i = 0; i < items.size(); ++i) {
    std::string text = items.text(i);
    for (char& ch : text) ch = std::isalnum(static_cast<unsigned char>(ch)) ? char(std::tolower(ch)) : ' ';
    std::istringstream words(text);
    std::vector<int64_t> row{kCls};
    for (std::string w; words >> w && int64_t(row.size()) < L;) {
      row.push_back(vocab.emplace(w, kFirstRegular + int64_t(vocab.size())).first->second);
    }
    rows.push_back(row);
  }
  const int64_t n = int64_t(rows.size()), V = kFirstRegular + int64_t(vocab.size());
  auto ids = torch::full({n, L}, kPad, torch::kInt64);
  for (int64_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < rows[i].size(); ++j) ids[i][int64_t(j)] = rows[i][j];
  }
  auto mask = ids.ne(kPad);

  // One seed decides little (over seeds 21-28 the agreement after training ranged .66-.97, with
  // LibTorch's dropout as with ours): the mean over three.
  double before = 0, after = 0;
  for (int seed : {21, 22, 23}) {
    torch::manual_seed(seed);
    nn::TextEncoder enc(nn::TextEncoderOptions(V, 32).layers(2).heads(2).ffn_dim(64).max_len(L).dropout(0.1).pooling(
        nn::Pooling::Mean));
    MlmTask mlm(MlmOptions(V, kMask).special_ids({0, 1, 2, 3, 4}).seed(9), 32);
    auto embed = [&] {
      torch::NoGradGuard no_grad;
      enc->eval();
      auto e = enc->forward(ids, mask).pooled;
      enc->train();
      return e;
    };
    before += nearest_neighbour_topic_agreement(embed(), world.truth.item_main_topic) / 3;
    std::vector<at::Tensor> params = enc->parameters();
    for (auto& p : mlm->parameters()) params.push_back(p);
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(3e-3).weight_decay(0.0));
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(4);
    for (int step = 0; step < 120; ++step) {
      auto rows_idx = torch::randint(n, {32}, gen, torch::kInt64);
      auto r = mlm->forward(*enc, ids.index({rows_idx}), mask.index({rows_idx}));
      opt.zero_grad();
      r.loss.backward();
      opt.step();
    }
    after += nearest_neighbour_topic_agreement(embed(), world.truth.item_main_topic) / 3;
  }
  std::printf("topic agreement (mean of 3 seeds) before %.3f after %.3f\n", before, after);
  EXPECT_GT(before, 0.15);  // words are topic-specific: some signal even untrained
  EXPECT_LT(before, 0.6);
  EXPECT_GT(after, 0.75);
  EXPECT_GT(after, before + 0.3);
}

}  // namespace
}  // namespace mtrec
