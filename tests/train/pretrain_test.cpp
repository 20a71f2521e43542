// MLM pretraining through the library (train/pretrain.h): it learns a corpus with sequential
// structure far beyond the unigram baseline, and an interrupted run resumes bit-identically.
#include "mtrec/train/pretrain.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>

#include "mtrec/core/check.h"
#include "test_torch.h"
#include "test_util.h"

namespace mtrec {
namespace {

// [PAD] [UNK] [CLS] [SEP] [MASK] then 24 words w0..w23.
WordPieceTokenizer word_tokenizer() {
  std::vector<std::string> vocab{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (int w = 0; w < 24; ++w) vocab.push_back("w" + std::to_string(w));
  return WordPieceTokenizer(vocab);
}

// Every text is one of 6 fixed random "sentences" over the 24 words, cut at a random length: a
// masked word follows from its context, while the unigram distribution is close to uniform.
std::vector<std::string> template_texts(int n, int max_words, uint64_t seed) {
  std::mt19937_64 fixed(2024);
  std::uniform_int_distribution<int> word(0, 23);
  std::vector<std::vector<int>> templates(6);
  for (auto& t : templates)
    for (int k = 0; k < max_words; ++k) t.push_back(word(fixed));
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> pick(0, 5), len(max_words / 2, max_words);
  std::vector<std::string> texts;
  for (int i = 0; i < n; ++i) {
    const auto& t = templates[pick(rng)];
    std::string s;
    for (int k = 0, m = len(rng); k < m; ++k) s += (k ? " w" : "w") + std::to_string(t[k]);
    texts.push_back(s);
  }
  return texts;
}

nn::TextEncoder small_encoder(const Tokenizer& tok, int64_t max_len, double dropout) {
  torch::manual_seed(12);
  return nn::TextEncoder(nn::TextEncoderOptions(tok.vocab_size(), 32)
                             .layers(2)
                             .heads(2)
                             .ffn_dim(64)
                             .max_len(max_len)
                             .dropout(dropout)
                             .pad_id(tok.pad_id()));
}

TEST(MlmPretrain, LearnsSequentialPatternBeyondUnigramBaseline) {
  const auto tok = word_tokenizer();
  const int64_t L = 14;  // [CLS] + up to 13 words
  auto enc = small_encoder(tok, L, 0.0);
  const auto texts = template_texts(600, 13, 1);
  MlmPretrainResult r =
      pretrain_mlm(enc, tok, texts, TrainerOptions().epochs(8).batch_size(32).lr(3e-3).seed(5).device("cpu"));
  EXPECT_EQ(r.texts, 600);
  ASSERT_EQ(r.epochs.size(), 8u);
  EXPECT_EQ(r.summary.state.step, 8 * 19);
  EXPECT_LT(r.epochs.back().loss, 0.4 * r.epochs.front().loss);
  EXPECT_GT(r.epochs.back().masked_tokens, 600);

  // Held-out texts, eval mode: masked-token accuracy against the unigram-frequency baseline
  // (always predict the most frequent target).
  enc->eval();
  r.head->eval();
  torch::NoGradGuard no_grad;
  BatchEncoding b = tok.encode_batch(template_texts(512, 13, 99), L);
  at::Tensor mask = b.attention_mask.to(torch::kBool);
  const auto sp = tok.special_ids();
  auto options = MlmOptions(tok.vocab_size(), sp.mask).special_ids({sp.pad, sp.unk, sp.cls, sp.sep, sp.mask});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  auto m = mlm_mask(b.input_ids, mask, options, gen);
  at::Tensor hidden = enc->encode(m.input_ids, mask).index({m.selected});
  at::Tensor targets = m.labels.index({m.selected});
  auto res = mlm_result(r.head(hidden, enc->token_embedding_weight()), targets);
  const double baseline = torch::bincount(targets).max().item<double>() / double(targets.numel());
  EXPECT_GT(res.masked, 500);
  EXPECT_LT(baseline, 0.16);
  std::printf("masked-token accuracy %.3f, unigram baseline %.3f, loss %.3f -> %.3f (pretrain_mlm)\n", res.accuracy,
              baseline, r.epochs.front().loss, r.epochs.back().loss);
  EXPECT_GT(res.accuracy, 0.6) << "baseline " << baseline;
  EXPECT_GT(res.accuracy, baseline + 0.5);
}

TEST(MlmPretrain, RejectsMismatchedVocabularyAndEmptyCorpus) {
  const auto tok = word_tokenizer();
  nn::TextEncoder other(nn::TextEncoderOptions(tok.vocab_size() + 1, 8).layers(1).heads(2).max_len(8));
  const auto opts = TrainerOptions().epochs(1).device("cpu");
  EXPECT_THROW(pretrain_mlm(other, tok, {"w1 w2"}, opts), Error);
  auto enc = small_encoder(tok, 8, 0.0);
  EXPECT_THROW(pretrain_mlm(enc, tok, {}, opts), Error);
}

// An interrupted run (a crash after a mid-epoch checkpoint) resumed from RUN/pretrain/last.ckpt
// ends with exactly the parameters of the uninterrupted one: the masks are drawn from the
// epoch's seed, dropout from the generator the checkpoint carries.
TEST(MlmPretrain, ResumeFromAMidEpochCheckpointIsBitIdentical) {
  const auto tok = word_tokenizer();
  const auto texts = template_texts(100, 9, 3);
  const auto opts = TrainerOptions()
                        .epochs(3)
                        .batch_size(16)
                        .lr(3e-3)
                        .weight_decay(0.01)
                        .schedule("cosine")
                        .warmup_steps(3)
                        .seed(8)
                        .device("cpu");
  auto params = [](nn::TextEncoder& enc, const MlmPretrainResult& r) {
    std::vector<at::Tensor> v;
    for (auto& p : enc->parameters()) v.push_back(p.detach().clone());
    for (auto& p : r.head->parameters()) v.push_back(p.detach().clone());
    return v;
  };
  auto want_enc = small_encoder(tok, 10, 0.2);
  auto want = pretrain_mlm(want_enc, tok, texts, opts);
  test::TempDir dir;
  const auto run = RunOptions().out_dir(dir.path("run")).checkpoint_every(3);
  {
    auto enc = small_encoder(tok, 10, 0.2);
    EXPECT_THROW(pretrain_mlm(enc, tok, texts, opts, {},
                              RunOptions(run).observer(
                                  std::make_shared<test::CrashAtStep>(11)) /* epoch 2 (7 steps an epoch) */),
                 std::runtime_error);
  }
  {
    auto j = nlohmann::json::parse(load_checkpoint(dir.path("run/pretrain/last.ckpt")).trainer_json);
    EXPECT_EQ(j.at("step"), 9);  // mid-epoch: the resume starts inside epoch 2
    EXPECT_EQ(j.at("batch"), 2);
  }
  auto enc = small_encoder(tok, 10, 0.2);
  auto got = pretrain_mlm(enc, tok, texts, opts, {}, RunOptions(run).resume(dir.path("run/pretrain/last.ckpt")));
  auto a = params(enc, got), b = params(want_enc, want);
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) EXPECT_TRUE(torch::equal(a[k], b[k])) << "parameter " << k;
  EXPECT_EQ(got.summary.state.step, want.summary.state.step);
}

}  // namespace
}  // namespace mtrec
