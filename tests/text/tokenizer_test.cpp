#include "mtrec/text/tokenizer.h"

#include "mtrec/core/check.h"
#include "test_util.h"

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <set>

#if defined(__SANITIZE_ADDRESS__)
#define MTREC_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MTREC_TEST_ASAN 1
#endif
#endif

// Under ASan the shim cannot be opened (RTLD_DEEPBIND); elsewhere it must work, so a missing
// module fails the tests instead of skipping them.
#ifdef MTREC_TEST_ASAN
#define MTREC_REQUIRE_SENTENCEPIECE() \
  GTEST_SKIP() << "sentencepiece needs RTLD_DEEPBIND, which AddressSanitizer does not support"
#else
#define MTREC_REQUIRE_SENTENCEPIECE() \
  do {                                \
  } while (0)
#endif

namespace mtrec {
namespace {

using ::mtrec::test::TempDir;

// ---------------------------------------------------------------------------------------------
// SentencePiece

// A small movie-title corpus with a few non-ASCII titles, deterministic.
std::vector<std::string> corpus() {
  const std::vector<std::string> words = {"Toy",   "Story", "Star",  "Wars",  "Return", "of",    "the",
                                          "Jedi",  "Love",  "Night", "Day",   "City",   "Blue",  "Man",
                                          "Woman", "King",  "Dark",  "House", "Game",   "River", "Lost"};
  std::vector<std::string> out = {
      "Amélie",       "Crème brûlée",     "東京 物語", "Le Fabuleux Destin d'Amélie Poulain", "Tokyo Story (東京物語)",
      "Café au lait", "Crème de la crème"};
  uint32_t x = 12345;
  for (int i = 0; i < 300; ++i) {
    std::string s;
    int n = 1 + i % 4;
    for (int k = 0; k < n; ++k) {
      x = x * 1664525u + 1013904223u;
      s += (k ? " " : "") + words[(x >> 8) % words.size()];
    }
    s += " (" + std::to_string(1950 + i % 50) + ")";
    out.push_back(s);
  }
  return out;
}

SentencePieceTrainOptions small(const std::string& type) {
  return SentencePieceTrainOptions().vocab_size(150).model_type(type).seed(7).character_coverage(1.0);
}

const std::vector<std::string> kProbe = {"Toy Story (1995)",          "Amélie",         "Crème brûlée", "東京",
                                         "Return of the Jedi (1983)", "Dark River King"};

TEST(SentencePieceTokenizer, UnigramAndBpeRoundTripIncludingNonAscii) {
  MTREC_REQUIRE_SENTENCEPIECE();
  for (const std::string type : {"unigram", "bpe"}) {
    SentencePieceTokenizer tok = SentencePieceTokenizer::train(corpus(), small(type));
    EXPECT_GT(tok.vocab_size(), 5);
    EXPECT_LE(tok.vocab_size(), 150);
    for (const auto& text : kProbe) {
      std::vector<int64_t> ids = tok.encode(text);
      ASSERT_FALSE(ids.empty()) << type << ": " << text;
      for (int64_t id : ids) {
        EXPECT_GE(id, 0);
        EXPECT_LT(id, tok.vocab_size());
        EXPECT_NE(id, tok.unk_id()) << type << ": unknown piece in " << text;
        EXPECT_FALSE(tok.is_special(id));
      }
      EXPECT_EQ(tok.decode(ids), text) << type;
    }
    // Subword tokenization: a frequent word is a single piece, the text splits into pieces.
    EXPECT_LT(tok.encode("Story").size(), std::string("Story").size());
  }
}

TEST(SentencePieceTokenizer, SpecialTokensDistinctStableAndNeverFromText) {
  MTREC_REQUIRE_SENTENCEPIECE();
  SentencePieceTokenizer tok = SentencePieceTokenizer::train(corpus(), small("unigram"));
  SpecialTokenIds s = tok.special_ids();
  EXPECT_EQ(s.pad, 0);
  EXPECT_EQ(s.unk, 1);
  EXPECT_EQ(s.cls, 2);
  EXPECT_EQ(s.sep, 3);
  EXPECT_EQ(s.mask, 4);
  EXPECT_EQ(tok.id_to_piece(s.cls), "[CLS]");
  EXPECT_EQ(tok.id_to_piece(s.mask), "[MASK]");
  EXPECT_EQ(tok.piece_to_id("[SEP]"), 3);
  EXPECT_EQ(tok.piece_to_id("no-such-piece"), -1);
  // "[MASK]" typed in a title is text, not the mask token.
  // ("[" and "]" are not in the corpus, so they map to [UNK].)
  for (int64_t id : tok.encode("Star [MASK] Wars [CLS]")) {
    EXPECT_TRUE(id != s.mask && id != s.cls && id != s.sep && id != s.pad) << id;
  }
  // decode drops [PAD]/[CLS]/[SEP]/[MASK].
  std::vector<int64_t> ids = tok.encode("Toy Story");
  std::vector<int64_t> framed = {s.cls};
  framed.insert(framed.end(), ids.begin(), ids.end());
  framed.push_back(s.sep);
  framed.push_back(s.pad);
  EXPECT_EQ(tok.decode(framed), "Toy Story");
  EXPECT_THROW(tok.decode({tok.vocab_size()}), Error);
  EXPECT_THROW(tok.id_to_piece(-1), Error);
}

TEST(SentencePieceTokenizer, SeededTrainingIsDeterministicAndSaveLoadKeepsIds) {
  MTREC_REQUIRE_SENTENCEPIECE();
  TempDir dir;
  SentencePieceTokenizer a = SentencePieceTokenizer::train(corpus(), small("unigram"));
  SentencePieceTokenizer b = SentencePieceTokenizer::train(corpus(), small("unigram"));
  EXPECT_EQ(a.serialized(), b.serialized());

  a.save(dir.path("tok.model"));
  SentencePieceTokenizer loaded = SentencePieceTokenizer::load(dir.path("tok.model"));
  SentencePieceTokenizer from_bytes = SentencePieceTokenizer::from_serialized(a.serialized());
  EXPECT_EQ(loaded.vocab_size(), a.vocab_size());
  for (const auto& text : kProbe) {
    EXPECT_EQ(loaded.encode(text), a.encode(text)) << text;
    EXPECT_EQ(from_bytes.encode(text), a.encode(text)) << text;
  }
  BatchEncoding x = a.encode_batch(kProbe, 8), y = loaded.encode_batch(kProbe, 8);
  EXPECT_TRUE(torch::equal(x.input_ids, y.input_ids));

  // The file-based trainer reads the same sentences.
  std::string text;
  for (const auto& line : corpus()) text += line + "\n";
  SentencePieceTokenizer f = SentencePieceTokenizer::train_from_file(dir.write("corpus.txt", text), small("unigram"));
  EXPECT_EQ(f.serialized(), a.serialized());
}

TEST(SentencePieceTokenizer, ErrorsNameTheFileAndTheProblem) {
  MTREC_REQUIRE_SENTENCEPIECE();
  TempDir dir;
  try {
    SentencePieceTokenizer::load(dir.path("missing.model"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.model"), std::string::npos) << e.what();
  }
  try {
    SentencePieceTokenizer::load(dir.write("junk.model", "this is not a protobuf"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("junk.model"), std::string::npos) << e.what();
  }
  EXPECT_THROW(SentencePieceTokenizer::train(corpus(), small("wordpiece")), Error);
  EXPECT_THROW(SentencePieceTokenizer::train({"", ""}, small("bpe")), Error);
  EXPECT_THROW(SentencePieceTokenizer::train(corpus(), small("bpe").vocab_size(5)), Error);
}

TEST(SentencePieceTokenizer, BatchHasClsPaddingAndMask) {
  MTREC_REQUIRE_SENTENCEPIECE();
  SentencePieceTokenizer tok = SentencePieceTokenizer::train(corpus(), small("bpe"));
  std::vector<std::string> texts = {"Toy Story (1995)", "", "Return of the Jedi Dark River King Lost Night (1983)"};
  BatchEncoding b = tok.encode_batch(texts, 6);
  ASSERT_EQ(b.input_ids.sizes(), (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(b.input_ids.scalar_type(), torch::kLong);
  EXPECT_EQ(b.attention_mask.scalar_type(), torch::kLong);
  for (int64_t r = 0; r < 3; ++r) {
    EXPECT_EQ(b.input_ids[r][0].item<int64_t>(), tok.cls_id());
    EXPECT_EQ(b.attention_mask[r].sum().item<int64_t>(), b.lengths[r]);
  }
  std::vector<int64_t> first = tok.encode(texts[0]);
  EXPECT_EQ(b.lengths[0], std::min<int64_t>(6, 1 + static_cast<int64_t>(first.size())));
  EXPECT_EQ(b.lengths[1], 1);  // only [CLS]
  EXPECT_EQ(b.lengths[2], 6);  // truncated
  EXPECT_EQ(b.input_ids[1][1].item<int64_t>(), tok.pad_id());
}

#ifdef MTREC_TEST_ASAN
TEST(SentencePieceTokenizer, RefusesClearlyUnderAddressSanitizer) {
  std::string why;
  EXPECT_FALSE(sentencepiece_available(&why));
  EXPECT_NE(why.find("AddressSanitizer"), std::string::npos) << why;
  EXPECT_THROW(SentencePieceTokenizer::train(corpus(), small("bpe")), Error);
}
#endif

// ---------------------------------------------------------------------------------------------
// WordPiece

const std::vector<std::string> kVocab = {"[PAD]", "[UNK]",  "[CLS]", "[SEP]", "[MASK]", "un",     "##aff",  "##able",
                                         "hello", "world",  ",",     "!",     "'",      "amelie", "creme",  "brulee",
                                         "東",    "京",     "the",   "##s",   "cat",    "Hello",  "moskva", "москва",
                                         "-",     "иошкар", "ола",   "(",     ")",      "1995",   "toy",    "story"};

TEST(WordPieceTokenizer, GreedyLongestMatchWithContinuations) {
  WordPieceTokenizer tok(kVocab);
  EXPECT_EQ(tok.tokenize("unaffable"), (std::vector<std::string>{"un", "##aff", "##able"}));
  EXPECT_EQ(tok.encode("unaffable"), (std::vector<int64_t>{5, 6, 7}));
  EXPECT_EQ(tok.tokenize("cats"), (std::vector<std::string>{"cat", "##s"}));
  // No full cover -> the whole word is [UNK], not a partial match.
  EXPECT_EQ(tok.tokenize("unaffablex hello"), (std::vector<std::string>{"[UNK]", "hello"}));
  EXPECT_EQ(tok.tokenize("zebra"), (std::vector<std::string>{"[UNK]"}));
  EXPECT_EQ(tok.decode(tok.encode("unaffable cats, hello")), "unaffable cats , hello");
  // Words longer than max_chars_per_word are [UNK] outright.
  WordPieceTokenizer short_words(kVocab, WordPieceOptions().max_chars_per_word(5));
  EXPECT_EQ(short_words.tokenize("unaffable cat"), (std::vector<std::string>{"[UNK]", "cat"}));
}

TEST(WordPieceTokenizer, BasicTokenizerCasePunctuationAccentsCjk) {
  WordPieceTokenizer tok(kVocab);
  EXPECT_EQ(tok.tokenize("Hello, World!"), (std::vector<std::string>{"hello", ",", "world", "!"}));
  EXPECT_EQ(tok.tokenize("Héllo"), (std::vector<std::string>{"hello"}));
  EXPECT_EQ(tok.basic_tokenize("Amélie  Crème\tbrûlée"), (std::vector<std::string>{"amelie", "creme", "brulee"}));
  EXPECT_EQ(tok.tokenize("東京"), (std::vector<std::string>{"東", "京"}));
  EXPECT_EQ(tok.basic_tokenize("Tokyo東京story"), (std::vector<std::string>{"tokyo", "東", "京", "story"}));
  EXPECT_EQ(tok.basic_tokenize("Toy Story (1995)"), (std::vector<std::string>{"toy", "story", "(", "1995", ")"}));
  EXPECT_EQ(tok.basic_tokenize("l'été"), (std::vector<std::string>{"l", "'", "ete"}));
  EXPECT_EQ(tok.basic_tokenize("ÀÉÎÕÜ Ñ ÇŠŽŁ ß"), (std::vector<std::string>{"aeiou", "n", "cszł", "ß"}));
  // Cyrillic: lower-case, and NFD strips the breve of Й as BERT uncased does.
  EXPECT_EQ(tok.tokenize("МОСКВА Йошкар-Ола"), (std::vector<std::string>{"москва", "иошкар", "-", "ола"}));
  EXPECT_EQ(tok.basic_tokenize("ΑΘΉΝΑ"), (std::vector<std::string>{"αθηνα"}));
  // Already-decomposed accents (e + U+0301) lose their mark too; control characters vanish.
  EXPECT_EQ(tok.basic_tokenize("he\xCC\x81llo wo\x01rld\xE2\x80\x8B"), (std::vector<std::string>{"hello", "world"}));
  // Unicode punctuation and whitespace: « » and a no-break space.
  EXPECT_EQ(tok.basic_tokenize("«cat»\xC2\xA0the"), (std::vector<std::string>{"«", "cat", "»", "the"}));
  // Invalid UTF-8 bytes are dropped rather than passed on.
  EXPECT_EQ(tok.basic_tokenize("cat\xFF\xFEs"), (std::vector<std::string>{"cats"}));

  WordPieceTokenizer cased(kVocab, WordPieceOptions().lower_case(false));
  EXPECT_EQ(cased.tokenize("Hello hello"), (std::vector<std::string>{"Hello", "hello"}));
  EXPECT_EQ(cased.basic_tokenize("Héllo"), (std::vector<std::string>{"Héllo"}));
  WordPieceTokenizer no_cjk(kVocab, WordPieceOptions().tokenize_cjk_chars(false));
  EXPECT_EQ(no_cjk.basic_tokenize("Tokyo東京"), (std::vector<std::string>{"tokyo東京"}));
}

TEST(WordPieceTokenizer, LoadsVocabFileWithLineIds) {
  TempDir dir;
  std::string text;
  for (const auto& p : kVocab) text += p + "\n";
  WordPieceTokenizer tok = WordPieceTokenizer::load(dir.write("vocab.txt", text));
  EXPECT_EQ(tok.vocab_size(), static_cast<int64_t>(kVocab.size()));
  for (size_t i = 0; i < kVocab.size(); ++i) EXPECT_EQ(tok.piece_to_id(kVocab[i]), static_cast<int64_t>(i));
  SpecialTokenIds s = tok.special_ids();
  EXPECT_EQ(std::set<int64_t>({s.pad, s.unk, s.cls, s.sep, s.mask}), (std::set<int64_t>{0, 1, 2, 3, 4}));

  // A vocabulary without [MASK] is refused, naming the file and the token.
  try {
    WordPieceTokenizer::load(dir.write("nomask.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n"));
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("nomask.txt"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[MASK]"), std::string::npos) << msg;
  }
  // A blank line would shift every later id: DataError with its line number.
  try {
    WordPieceTokenizer::load(dir.write("blank.txt", "[PAD]\n[UNK]\n\n[CLS]\n"));
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_EQ(e.line(), 3);
    EXPECT_NE(std::string(e.what()).find("blank.txt"), std::string::npos);
  }
  EXPECT_THROW(WordPieceTokenizer::load(dir.path("absent.txt")), Error);
}

// ---------------------------------------------------------------------------------------------
// Batching (exact ids with the WordPiece vocabulary)

TEST(Tokenizer, EncodeBatchPadsTruncatesAndMasks) {
  WordPieceTokenizer tok(kVocab);
  std::vector<std::string> texts = {"hello world", "unaffable hello world !", ""};
  BatchEncoding b = tok.encode_batch(texts, 4);
  auto ids = [](const at::Tensor& t) {
    return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
  };
  ASSERT_EQ(b.input_ids.sizes(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(ids(b.input_ids), (std::vector<int64_t>{2, 8, 9, 0, /**/ 2, 5, 6, 7, /**/ 2, 0, 0, 0}));
  EXPECT_EQ(ids(b.attention_mask), (std::vector<int64_t>{1, 1, 1, 0, /**/ 1, 1, 1, 1, /**/ 1, 0, 0, 0}));
  EXPECT_EQ(b.lengths, (std::vector<int64_t>{3, 4, 1}));

  // Padded to the longest row when shorter than max_len.
  BatchEncoding c = tok.encode_batch({"hello", "cats"}, 16);
  EXPECT_EQ(ids(c.input_ids), (std::vector<int64_t>{2, 8, 0, /**/ 2, 20, 19}));

  // [SEP] survives truncation; pad_to_max fixes L.
  BatchEncoding d = tok.encode_batch(texts, EncodeOptions().set_max_len(5).set_add_sep(true).set_pad_to_max(true));
  EXPECT_EQ(ids(d.input_ids), (std::vector<int64_t>{2, 8, 9, 3, 0, /**/ 2, 5, 6, 7, 3, /**/ 2, 3, 0, 0, 0}));
  BatchEncoding e = tok.encode_batch({"hello world"}, EncodeOptions().set_max_len(3).set_add_cls(false));
  EXPECT_EQ(ids(e.input_ids), (std::vector<int64_t>{8, 9}));

  BatchEncoding empty = tok.encode_batch({}, 8);
  EXPECT_EQ(empty.input_ids.size(0), 0);
  EXPECT_THROW(tok.encode_batch(texts, EncodeOptions().set_max_len(2).set_add_sep(true)), Error);
  EXPECT_THROW(make_batch({{1, 2, 3}}, 0, 2), Error);
}

}  // namespace
}  // namespace mtrec
