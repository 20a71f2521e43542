#pragma once
// Tokenizers: text -> token ids for the text encoder.
//
//   auto tok = mtrec::SentencePieceTokenizer::train(titles,
//       mtrec::SentencePieceTrainOptions().vocab_size(8000).model_type("unigram").seed(7));
//   tok.save("run/tokenizer.model");                       // atomic
//   auto again = mtrec::SentencePieceTokenizer::load("run/tokenizer.model");
//   mtrec::BatchEncoding b = tok.encode_batch({"Toy Story (1995)", "Amélie"}, /*max_len=*/32);
//   // b.input_ids [2, L] int64 ([CLS] first, [PAD] after the text), b.attention_mask [2, L]
//
//   auto bert = mtrec::WordPieceTokenizer::load("bert-base-uncased/vocab.txt");
//   bert.tokenize("unaffable")  ->  {"un", "##aff", "##able"}
//
// Every tokenizer has the special tokens [PAD] [UNK] [CLS] [SEP] [MASK] with distinct ids.
// SentencePiece models trained here put them at 0..4 (pad, unk, cls, sep, mask); WordPiece takes
// them from vocab.txt. sentencepiece itself lives in a shim module (libmtrec_sentencepiece.so)
// opened with dlopen(RTLD_LOCAL|RTLD_DEEPBIND) because its protobuf clashes with LibTorch's; the
// module is found beside libmtrec.so or via $MTREC_SENTENCEPIECE_MODULE. RTLD_DEEPBIND does not
// work under AddressSanitizer, so in ASan builds SentencePieceTokenizer throws a clear error.
#include <torch/arg.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mtrec/core/options.h"

namespace mtrec {

/// The ids of the special tokens; all distinct and in [0, vocab_size).
struct SpecialTokenIds {
  int64_t pad = 0;
  int64_t unk = 1;
  int64_t cls = 2;
  int64_t sep = 3;
  int64_t mask = 4;
};

/// A padded batch: input_ids and attention_mask are [B, L] int64 on the CPU (move them to the
/// model's device); attention_mask is 1 on real tokens (including [CLS]/[SEP]) and 0 on padding.
/// lengths[b] is the number of real tokens of row b.
struct BatchEncoding {
  at::Tensor input_ids;
  at::Tensor attention_mask;
  std::vector<int64_t> lengths;
};

/// How encode_batch lays out a row: [CLS] text-ids [SEP] [PAD]... truncated to max_len.
struct EncodeOptions {
  int64_t max_len = 128;    // total row length cap, special tokens included
  bool add_cls = true;      // prepend [CLS]
  bool add_sep = false;     // append [SEP] (kept even when the text is truncated)
  bool pad_to_max = false;  // L = max_len; otherwise L = longest row in the batch (<= max_len)
  EncodeOptions& set_max_len(int64_t v) {
    max_len = v;
    return *this;
  }
  EncodeOptions& set_add_cls(bool v) {
    add_cls = v;
    return *this;
  }
  EncodeOptions& set_add_sep(bool v) {
    add_sep = v;
    return *this;
  }
  EncodeOptions& set_pad_to_max(bool v) {
    pad_to_max = v;
    return *this;
  }
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  /// Token ids of `text`, without special tokens.
  virtual std::vector<int64_t> encode(std::string_view text) const = 0;
  /// Text of `ids`; [PAD] [CLS] [SEP] [MASK] are skipped ([UNK] stands for lost text and stays).
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual SpecialTokenIds special_ids() const = 0;
  /// The piece of id `id` (throws when out of range) and the id of `piece` (-1 when absent).
  virtual std::string id_to_piece(int64_t id) const = 0;
  virtual int64_t piece_to_id(std::string_view piece) const = 0;

  int64_t pad_id() const { return special_ids().pad; }
  int64_t unk_id() const { return special_ids().unk; }
  int64_t cls_id() const { return special_ids().cls; }
  int64_t sep_id() const { return special_ids().sep; }
  int64_t mask_id() const { return special_ids().mask; }
  /// True for the five special ids.
  bool is_special(int64_t id) const;

  /// One row per text laid out as EncodeOptions says (see BatchEncoding).
  BatchEncoding encode_batch(const std::vector<std::string>& texts, const EncodeOptions& options) const;
  /// Shorthand: [CLS] + text, truncated to max_len, padded to the longest row.
  BatchEncoding encode_batch(const std::vector<std::string>& texts, int64_t max_len) const;
  /// Same rows as encode_batch, as plain vectors of their real tokens (no padding, no LibTorch).
  std::vector<std::vector<int64_t>> encode_rows(const std::vector<std::string>& texts,
                                                const EncodeOptions& options) const;
};

/// Pads rows (as encode_rows makes them) into a BatchEncoding; L = max row length, or
/// `pad_to` when > 0 (rows longer than pad_to are an error).
BatchEncoding make_batch(const std::vector<std::vector<int64_t>>& rows, int64_t pad_id, int64_t pad_to = 0);

#define MTREC_SENTENCE_PIECE_TRAIN_OPTIONS(X)                      \
  X(int64_t, vocab_size, 8000)                                     \
  /* "unigram" or "bpe" */                                         \
  X(std::string, model_type, "unigram")                            \
  /* sentencepiece's sampling seed; training is single-threaded */ \
  X(uint64_t, seed, 0)                                             \
  X(double, character_coverage, 0.9995)                            \
  /* bytes; longer training sentences are skipped */               \
  X(int64_t, max_sentence_length, 4192)                            \
  /* 0: all sentences; else a seeded sample of this many */        \
  X(int64_t, input_sentence_size, 0)                               \
  /* false: a small corpus may give fewer pieces than asked */     \
  X(bool, hard_vocab_limit, false)                                 \
  /* trainer threads */                                            \
  X(int, num_threads, 1)

struct SentencePieceTrainOptions {
  MTREC_OPTIONS(MTREC_SENTENCE_PIECE_TRAIN_OPTIONS)
};

/// A sentencepiece model (unigram or BPE). Copies share the loaded model; thread-safe for
/// concurrent encode/decode.
class SentencePieceTokenizer : public Tokenizer {
 public:
  /// Trains on `texts` (one sentence each; empty ones are skipped). Special ids: pad 0, unk 1,
  /// [CLS] 2, [SEP] 3, [MASK] 4. [CLS] [SEP] [MASK] are control symbols: the literal text
  /// "[MASK]" in a title is ordinary text, never the mask token.
  static SentencePieceTokenizer train(const std::vector<std::string>& texts, const SentencePieceTrainOptions& options);
  /// Trains on a corpus file, one sentence per line.
  static SentencePieceTokenizer train_from_file(const std::string& corpus_path,
                                                const SentencePieceTrainOptions& options);
  /// Loads a .model file (ours or any sentencepiece model that has [CLS] [SEP] [MASK] pieces
  /// and a pad id); throws mtrec::Error naming the file otherwise.
  static SentencePieceTokenizer load(const std::string& path);
  static SentencePieceTokenizer from_serialized(const std::string& model_bytes);

  /// Writes the .model file atomically.
  void save(const std::string& path) const;
  /// The serialized model proto (what save writes), e.g. to embed in a checkpoint.
  std::string serialized() const;

  std::vector<int64_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override;
  SpecialTokenIds special_ids() const override { return special_; }
  std::string id_to_piece(int64_t id) const override;
  int64_t piece_to_id(std::string_view piece) const override;
  /// The sentencepiece pieces of `text` (e.g. "▁Toy", "▁Story").
  std::vector<std::string> encode_pieces(std::string_view text) const;

  struct Handle;  // the shim's model, freed through the shim

 private:
  explicit SentencePieceTokenizer(std::shared_ptr<Handle> handle, const std::string& origin);
  std::shared_ptr<Handle> handle_;
  SpecialTokenIds special_;
  int64_t vocab_size_ = 0;
};

/// Whether the sentencepiece shim can be used in this process; `why` gets the reason when not.
bool sentencepiece_available(std::string* why = nullptr);

struct WordPieceOptions {
  bool lower_case_ = true;            // BERT "uncased": lower-case and strip accents
  bool strip_accents_ = true;         // é -> e; lower_case(v) sets it to v too, as BERT does
  bool tokenize_cjk_chars_ = true;    // each CJK ideograph becomes its own word
  int64_t max_chars_per_word_ = 100;  // longer words become [UNK]
  std::string unk_token_ = "[UNK]", pad_token_ = "[PAD]", cls_token_ = "[CLS]", sep_token_ = "[SEP]",
              mask_token_ = "[MASK]";
  WordPieceOptions& lower_case(bool v) {
    lower_case_ = strip_accents_ = v;
    return *this;
  }
  WordPieceOptions& strip_accents(bool v) {
    strip_accents_ = v;
    return *this;
  }
  WordPieceOptions& tokenize_cjk_chars(bool v) {
    tokenize_cjk_chars_ = v;
    return *this;
  }
  WordPieceOptions& max_chars_per_word(int64_t v) {
    max_chars_per_word_ = v;
    return *this;
  }
};

/// BERT's WordPiece: basic tokenizer (clean, optional lower-case + accent strip, split on
/// whitespace and punctuation, CJK characters apart) then greedy longest-match-first with "##"
/// continuation pieces; a word with no full match becomes [UNK].
class WordPieceTokenizer : public Tokenizer {
 public:
  /// Reads a BERT vocab.txt (one piece per line, id = 0-based line number).
  static WordPieceTokenizer load(const std::string& vocab_path, const WordPieceOptions& options = {});
  /// From pieces in id order; must contain the five special tokens.
  WordPieceTokenizer(std::vector<std::string> vocab, const WordPieceOptions& options = {});

  /// The pieces of `text` ("unaffable" -> "un", "##aff", "##able").
  std::vector<std::string> tokenize(std::string_view text) const;
  /// The basic tokenizer's words (after cleaning, case/accent handling and splitting).
  std::vector<std::string> basic_tokenize(std::string_view text) const;

  std::vector<int64_t> encode(std::string_view text) const override;
  /// Joins pieces with spaces, gluing "##" continuations to the previous piece.
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(vocab_.size()); }
  SpecialTokenIds special_ids() const override { return special_; }
  std::string id_to_piece(int64_t id) const override;
  int64_t piece_to_id(std::string_view piece) const override;

 private:
  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int64_t> index_;  // piece -> id
  WordPieceOptions options_;
  SpecialTokenIds special_;
  std::string origin_;
};

}  // namespace mtrec
