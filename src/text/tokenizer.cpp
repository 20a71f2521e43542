// Tokenizer batching and the BERT WordPiece tokenizer.
#include "mtrec/text/tokenizer.h"

#include "mtrec/core/check.h"
#include "mtrec/core/io.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>

namespace mtrec {

// ---------------------------------------------------------------------------------------------
// Batching

bool Tokenizer::is_special(int64_t id) const {
  SpecialTokenIds s = special_ids();
  return id == s.pad || id == s.unk || id == s.cls || id == s.sep || id == s.mask;
}

std::vector<std::vector<int64_t>> Tokenizer::encode_rows(const std::vector<std::string>& texts,
                                                         const EncodeOptions& options) const {
  const int64_t n_special = (options.add_cls ? 1 : 0) + (options.add_sep ? 1 : 0);
  MTREC_CHECK(options.max_len > n_special, "max_len must exceed the ", n_special,
              " special tokens of a row, got max_len=", options.max_len);
  const int64_t budget = options.max_len - n_special;
  const SpecialTokenIds s = special_ids();
  std::vector<std::vector<int64_t>> rows;
  rows.reserve(texts.size());
  for (const auto& text : texts) {
    std::vector<int64_t> ids = encode(text);
    if (static_cast<int64_t>(ids.size()) > budget) ids.resize(budget);
    std::vector<int64_t> row;
    row.reserve(ids.size() + n_special);
    if (options.add_cls) row.push_back(s.cls);
    row.insert(row.end(), ids.begin(), ids.end());
    if (options.add_sep) row.push_back(s.sep);
    rows.push_back(std::move(row));
  }
  return rows;
}

BatchEncoding make_batch(const std::vector<std::vector<int64_t>>& rows, int64_t pad_id, int64_t pad_to) {
  int64_t longest = 0;
  for (const auto& r : rows) longest = std::max<int64_t>(longest, static_cast<int64_t>(r.size()));
  MTREC_CHECK(pad_to <= 0 || longest <= pad_to, "a row has ", longest, " tokens, more than pad_to=", pad_to);
  const int64_t B = static_cast<int64_t>(rows.size());
  const int64_t L = pad_to > 0 ? pad_to : longest;
  BatchEncoding out;
  out.input_ids = torch::full({B, L}, pad_id, torch::kLong);
  out.attention_mask = torch::zeros({B, L}, torch::kLong);
  int64_t* ids = out.input_ids.data_ptr<int64_t>();
  int64_t* mask = out.attention_mask.data_ptr<int64_t>();
  out.lengths.reserve(B);
  for (int64_t b = 0; b < B; ++b) {
    const auto& r = rows[b];
    std::copy(r.begin(), r.end(), ids + b * L);
    std::fill(mask + b * L, mask + b * L + static_cast<int64_t>(r.size()), int64_t{1});
    out.lengths.push_back(static_cast<int64_t>(r.size()));
  }
  return out;
}

BatchEncoding Tokenizer::encode_batch(const std::vector<std::string>& texts, const EncodeOptions& options) const {
  return make_batch(encode_rows(texts, options), pad_id(), options.pad_to_max ? options.max_len : 0);
}

BatchEncoding Tokenizer::encode_batch(const std::vector<std::string>& texts, int64_t max_len) const {
  return encode_batch(texts, EncodeOptions().set_max_len(max_len));
}

// ---------------------------------------------------------------------------------------------
// Unicode helpers for BERT's basic tokenizer. Python's str.lower() and NFD come from the full
// Unicode database; without ICU we cover the scripts of real catalogues: Latin (Latin-1,
// Extended-A), Greek, Cyrillic, fullwidth Latin, and the combining marks themselves.

namespace {

// Decodes UTF-8; an invalid byte becomes U+FFFD (which clean-up then removes, as BERT does).
std::vector<char32_t> utf8_decode(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    bool ok = true;
    for (int k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 2) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool in(char32_t c, char32_t lo, char32_t hi) { return c >= lo && c <= hi; }

bool is_whitespace(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x00A0 || c == 0x1680 || in(c, 0x2000, 0x200A) ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

// Unicode categories Cc/Cf (BERT drops them), but not the whitespace controls.
bool is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  return c < 0x20 || in(c, 0x7F, 0x9F) || c == 0x00AD || in(c, 0x200B, 0x200F) || in(c, 0x202A, 0x202E) ||
         in(c, 0x2060, 0x2064) || c == 0xFEFF;
}

// BERT: all non-alphanumeric ASCII, plus Unicode category P*.
bool is_punctuation(char32_t c) {
  if (in(c, 33, 47) || in(c, 58, 64) || in(c, 91, 96) || in(c, 123, 126)) return true;
  if (c < 0x80) return false;
  return c == 0x00A1 || c == 0x00A7 || c == 0x00AB || c == 0x00B6 || c == 0x00B7 || c == 0x00BB || c == 0x00BF ||
         c == 0x037E || c == 0x0387 || in(c, 0x055A, 0x055F) || in(c, 0x0589, 0x058A) || c == 0x05BE || c == 0x05C0 ||
         c == 0x05C3 || c == 0x05C6 || in(c, 0x05F3, 0x05F4) || in(c, 0x060C, 0x060D) || c == 0x061B || c == 0x061F ||
         in(c, 0x066A, 0x066D) || c == 0x06D4 || in(c, 0x0964, 0x0965) || c == 0x0970 || c == 0x0E4F ||
         in(c, 0x0E5A, 0x0E5B) || in(c, 0x2010, 0x2027) || in(c, 0x2030, 0x2043) || in(c, 0x2045, 0x2051) ||
         in(c, 0x2053, 0x205E) || in(c, 0x207D, 0x207E) || in(c, 0x208D, 0x208E) || in(c, 0x2308, 0x230B) ||
         in(c, 0x2329, 0x232A) || in(c, 0x2768, 0x2775) || in(c, 0x27C5, 0x27C6) || in(c, 0x27E6, 0x27EF) ||
         in(c, 0x2983, 0x2998) || in(c, 0x29D8, 0x29DB) || in(c, 0x29FC, 0x29FD) || in(c, 0x2E00, 0x2E4F) ||
         in(c, 0x3001, 0x3003) || in(c, 0x3008, 0x3011) || in(c, 0x3014, 0x301F) || c == 0x3030 || c == 0x303D ||
         c == 0x30A0 || c == 0x30FB || in(c, 0xFE10, 0xFE19) || in(c, 0xFE30, 0xFE52) || in(c, 0xFE54, 0xFE61) ||
         c == 0xFE63 || c == 0xFE68 || in(c, 0xFE6A, 0xFE6B) || in(c, 0xFF01, 0xFF03) || in(c, 0xFF05, 0xFF0A) ||
         in(c, 0xFF0C, 0xFF0F) || in(c, 0xFF1A, 0xFF1B) || in(c, 0xFF1F, 0xFF20) || in(c, 0xFF3B, 0xFF3D) ||
         c == 0xFF3F || c == 0xFF5B || c == 0xFF5D || in(c, 0xFF5F, 0xFF65);
}

// BERT's "Chinese character" blocks (CJK Unified Ideographs and extensions; not kana/hangul).
bool is_cjk(char32_t c) {
  return in(c, 0x4E00, 0x9FFF) || in(c, 0x3400, 0x4DBF) || in(c, 0x20000, 0x2A6DF) || in(c, 0x2A700, 0x2B73F) ||
         in(c, 0x2B740, 0x2B81F) || in(c, 0x2B820, 0x2CEAF) || in(c, 0xF900, 0xFAFF) || in(c, 0x2F800, 0x2FA1F);
}

// Nonspacing combining marks (category Mn) that NFD splits off accented letters.
bool is_combining_mark(char32_t c) {
  return in(c, 0x0300, 0x036F) || in(c, 0x1AB0, 0x1AFF) || in(c, 0x1DC0, 0x1DFF) || in(c, 0x20D0, 0x20FF) ||
         in(c, 0xFE20, 0xFE2F);
}

// Appends lower(c) (one or, for U+0130, two code points).
void append_lower(std::vector<char32_t>& out, char32_t c) {
  if (in(c, 'A', 'Z'))
    c += 0x20;
  else if (in(c, 0xC0, 0xDE) && c != 0xD7)
    c += 0x20;
  else if (c == 0x130) {
    out.push_back('i');
    out.push_back(0x307);
    return;
  } else if (in(c, 0x100, 0x137) || in(c, 0x14A, 0x177)) {
    if (c % 2 == 0) c += 1;
  } else if (in(c, 0x139, 0x148) || in(c, 0x179, 0x17E)) {
    if (c % 2 == 1) c += 1;
  } else if (c == 0x178)
    c = 0xFF;
  else if (in(c, 0x391, 0x3AB) && c != 0x3A2)
    c += 0x20;
  else if (c == 0x386)
    c = 0x3AC;
  else if (in(c, 0x388, 0x38A))
    c += 0x25;
  else if (c == 0x38C)
    c = 0x3CC;
  else if (in(c, 0x38E, 0x38F))
    c += 0x3F;
  else if (in(c, 0x410, 0x42F))
    c += 0x20;
  else if (in(c, 0x400, 0x40F))
    c += 0x50;
  else if (in(c, 0xFF21, 0xFF3A))
    c += 0x20;
  out.push_back(c);
}

// The base letter NFD leaves after removing combining marks; 0 when c has no such decomposition.
char32_t accent_base(char32_t c) {
  // '?' marks letters without a canonical decomposition (Æ, Ø, ß, Đ, Ł, Œ, ...).
  static const char kLatin1[] = "AAAAAA?CEEEEIIII?NOOOOO??UUUUY??aaaaaa?ceeeeiiii?nooooo??uuuuy?y";
  static const char kLatinExtA[] =  // U+0100..U+017F, 16 per line
      "AaAaAaCcCcCcCcDd"
      "??EeEeEeEeEeGgGg"
      "GgGgHh??IiIiIiIi"
      "I???JjKk?LlLlLl?"
      "???NnNnNn???OoOo"
      "Oo??RrRrRrSsSsSs"
      "SsTtTt??UuUuUuUu"
      "UuUuWwYyYZzZzZz?";
  static_assert(sizeof(kLatin1) == 65 && sizeof(kLatinExtA) == 129, "one entry per code point");
  char base = 0;
  if (in(c, 0xC0, 0xFF))
    base = kLatin1[c - 0xC0];
  else if (in(c, 0x100, 0x17F))
    base = kLatinExtA[c - 0x100];
  if (base != 0) return base == '?' ? 0 : static_cast<char32_t>(base);
  switch (c) {  // Greek tonos/dialytika, Cyrillic breve/diaeresis
    case 0x386:
      return 0x391;
    case 0x388:
      return 0x395;
    case 0x389:
      return 0x397;
    case 0x38A:
      return 0x399;
    case 0x38C:
      return 0x39F;
    case 0x38E:
      return 0x3A5;
    case 0x38F:
      return 0x3A9;
    case 0x3AC:
      return 0x3B1;
    case 0x3AD:
      return 0x3B5;
    case 0x3AE:
      return 0x3B7;
    case 0x3AF:
      return 0x3B9;
    case 0x3CC:
      return 0x3BF;
    case 0x3CD:
      return 0x3C5;
    case 0x3CE:
      return 0x3C9;
    case 0x3CA:
    case 0x390:
      return 0x3B9;
    case 0x3CB:
    case 0x3B0:
      return 0x3C5;
    case 0x3AA:
      return 0x399;
    case 0x3AB:
      return 0x3A5;
    case 0x419:
      return 0x418;
    case 0x439:
      return 0x438;
    case 0x401:
      return 0x415;
    case 0x451:
      return 0x435;
    case 0x407:
      return 0x406;
    case 0x457:
      return 0x456;
    case 0x40E:
      return 0x423;
    case 0x45E:
      return 0x443;
    default:
      return 0;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// WordPiece

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocab, const WordPieceOptions& options)
    : vocab_(std::move(vocab)), options_(options), origin_("WordPiece vocabulary") {
  MTREC_CHECK(options_.max_chars_per_word_ > 0, "max_chars_per_word must be > 0, got ", options_.max_chars_per_word_);
  index_.reserve(vocab_.size());
  for (size_t i = 0; i < vocab_.size(); ++i) index_.emplace(vocab_[i], static_cast<int64_t>(i));  // first wins
  auto need = [&](const std::string& token) {
    int64_t id = piece_to_id(token);
    MTREC_CHECK(id >= 0, origin_, ": special token ", token, " is not in the vocabulary (", vocab_.size(), " pieces)");
    return id;
  };
  special_.pad = need(options_.pad_token_);
  special_.unk = need(options_.unk_token_);
  special_.cls = need(options_.cls_token_);
  special_.sep = need(options_.sep_token_);
  special_.mask = need(options_.mask_token_);
}

WordPieceTokenizer WordPieceTokenizer::load(const std::string& vocab_path, const WordPieceOptions& options) {
  std::string text = read_file(vocab_path);
  std::vector<std::string> vocab;
  size_t start = 0;
  int64_t line = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++line;
    std::string piece = text.substr(start, end - start);
    // BERT strips each line; a blank line would make every later id wrong, so refuse it.
    while (!piece.empty() && (piece.back() == '\r' || piece.back() == ' ' || piece.back() == '\t')) piece.pop_back();
    size_t lead = piece.find_first_not_of(" \t");
    piece = lead == std::string::npos ? "" : piece.substr(lead);
    if (piece.empty()) throw DataError(vocab_path, line, "piece", "empty line in a WordPiece vocabulary");
    vocab.push_back(std::move(piece));
    start = end + 1;
  }
  if (vocab.empty()) throw DataError(vocab_path, 0, "piece", "WordPiece vocabulary is empty");
  try {
    WordPieceTokenizer tok(std::move(vocab), options);
    tok.origin_ = vocab_path;
    return tok;
  } catch (const Error& e) {
    throw Error(vocab_path + ": " + e.what());
  }
}

std::vector<std::string> WordPieceTokenizer::basic_tokenize(std::string_view text) const {
  std::vector<char32_t> cps = utf8_decode(text);
  std::vector<std::string> words;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) words.push_back(std::move(cur));
    cur.clear();
  };
  std::vector<char32_t> lowered;
  for (char32_t c : cps) {
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    if (is_whitespace(c)) {
      flush();
      continue;
    }
    if (options_.tokenize_cjk_chars_ && is_cjk(c)) {
      flush();
      utf8_append(cur, c);
      flush();
      continue;
    }
    lowered.clear();
    if (options_.lower_case_)
      append_lower(lowered, c);
    else
      lowered.push_back(c);
    for (char32_t l : lowered) {
      if (options_.strip_accents_) {
        if (is_combining_mark(l)) continue;
        if (char32_t base = accent_base(l)) l = base;
      }
      if (is_punctuation(l)) {
        flush();
        utf8_append(cur, l);
        flush();
        continue;
      }
      utf8_append(cur, l);
    }
  }
  flush();
  return words;
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> pieces;
  for (const std::string& word : basic_tokenize(text)) {
    // Byte offsets of code point starts (+ the end): pieces split only between characters.
    std::vector<size_t> starts;
    for (size_t i = 0; i < word.size(); ++i)
      if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) starts.push_back(i);
    const size_t n = starts.size();
    starts.push_back(word.size());
    if (static_cast<int64_t>(n) > options_.max_chars_per_word_) {
      pieces.push_back(options_.unk_token_);
      continue;
    }
    std::vector<std::string> sub;
    size_t begin = 0;
    bool bad = false;
    std::string candidate;
    while (begin < n) {
      size_t end = n;
      bool found = false;
      while (begin < end) {
        candidate.assign(begin > 0 ? "##" : "");
        candidate.append(word, starts[begin], starts[end] - starts[begin]);
        if (index_.count(candidate) != 0) {
          found = true;
          break;
        }
        --end;
      }
      if (!found) {
        bad = true;
        break;
      }
      sub.push_back(candidate);
      begin = end;
    }
    if (bad)
      pieces.push_back(options_.unk_token_);
    else
      pieces.insert(pieces.end(), sub.begin(), sub.end());
  }
  return pieces;
}

std::vector<int64_t> WordPieceTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  for (const auto& piece : tokenize(text)) ids.push_back(index_.at(piece));
  return ids;
}

std::string WordPieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (int64_t id : ids) {
    MTREC_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " out of range [0, ", vocab_size(), ")");
    if (id != special_.unk && is_special(id)) continue;
    const std::string& piece = vocab_[id];
    if (piece.size() > 2 && piece.compare(0, 2, "##") == 0) {
      out.append(piece, 2, std::string::npos);
    } else {
      if (!out.empty()) out += ' ';
      out += piece;
    }
  }
  return out;
}

std::string WordPieceTokenizer::id_to_piece(int64_t id) const {
  MTREC_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " out of range [0, ", vocab_size(), ")");
  return vocab_[id];
}

int64_t WordPieceTokenizer::piece_to_id(std::string_view piece) const {
  auto it = index_.find(std::string(piece));
  return it == index_.end() ? -1 : it->second;
}

}  // namespace mtrec
