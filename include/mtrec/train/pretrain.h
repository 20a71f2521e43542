#pragma once
// Masked-language-model pretraining of a text encoder on a catalogue's texts, on the training
// engine (train/trainer.h): the texts are tokenised once, batched and masked on the batcher's
// thread (tasks/mlm.h's MlmSource, BERT masking seeded per epoch), and the encoder plus an MLM
// head (tied decoder) are trained by the Trainer, so checkpoints, resume, schedules, clipping,
// bf16 and the observers are the same as every other task's.
//
//   std::vector<std::string> texts = mtrec::catalogue_texts(ds);   // item and user texts
//   auto tok = mtrec::SentencePieceTokenizer::train(texts, mtrec::SentencePieceTrainOptions().vocab_size(4000));
//   mtrec::nn::TextEncoder enc(mtrec::nn::TextEncoderOptions(tok.vocab_size(), 128).max_len(64).pad_id(tok.pad_id()));
//   mtrec::MlmPretrainResult r = mtrec::pretrain_mlm(enc, tok, texts,
//       mtrec::TrainerOptions().epochs(3).batch_size(64).lr(1e-3).weight_decay(0.01),
//       mtrec::MlmPretrainOptions().mask_prob(0.15), mtrec::RunOptions().out_dir("runs/pretrain"));
//   mtrec::nn::save_text_encoder(*enc, "encoder.pt");
#include <torch/arg.h>
#include <cstdint>
#include <string>
#include <vector>

#include "mtrec/core/options.h"
#include "mtrec/data/schema.h"
#include "mtrec/nn/text_encoder.h"
#include "mtrec/tasks/mlm.h"
#include "mtrec/text/tokenizer.h"
#include "mtrec/train/run.h"
#include "mtrec/train/trainer.h"

namespace mtrec {

#define MTREC_MLM_PRETRAIN_OPTIONS(X)                              \
  /* share of real, non-special tokens selected */                 \
  X(double, mask_prob, 0.15)                                       \
  /* of the selected: -> [MASK] */                                 \
  X(double, replace_with_mask, 0.8)                                \
  /* of the selected: -> a random regular token (the rest stay) */ \
  X(double, replace_with_random, 0.1)

struct MlmPretrainOptions {
  MTREC_OPTIONS(MTREC_MLM_PRETRAIN_OPTIONS)
};

struct MlmEpoch {
  int epoch = 0;              // 1-based
  double loss = 0;            // mean cross-entropy per masked token
  double accuracy = 0;        // share of masked tokens predicted exactly
  int64_t masked_tokens = 0;  // (after a mid-epoch resume: those of this process only)
};

struct MlmPretrainResult {
  int64_t texts = 0;
  std::vector<MlmEpoch> epochs;  // the epochs this process ran
  MlmHead head{nullptr};         // the trained prediction head (its decoder is the token embedding)
  TrainSummary summary;
};

/// The catalogue's texts, items first, then users (with `users`), empty texts dropped.
std::vector<std::string> catalogue_texts(const Dataset& ds, bool users = true);

/// Pretrains `encoder` with MLM on `texts`, tokenised by `tokenizer` ([CLS] + text, truncated
/// to the encoder's max_len). `trainer` sets the loop (epochs, batch size, optimiser, lr,
/// schedule, clipping, bf16, seed, device); the encoder ends on the trainer's device in eval
/// mode; the run's artefacts go to RUN/pretrain/. Throws mtrec::Error when there is no text or
/// the encoder does not match the tokenizer (vocabulary, pad id).
MlmPretrainResult pretrain_mlm(nn::TextEncoder& encoder, const Tokenizer& tokenizer,
                               const std::vector<std::string>& texts, const TrainerOptions& trainer,
                               const MlmPretrainOptions& mlm = {}, const RunOptions& run = {});

}  // namespace mtrec
