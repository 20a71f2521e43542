#include "mtrec/data/csv_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <unordered_map>

#include "mtrec/core/io.h"

namespace mtrec {

// ---------------------------------------------------------------------------------------------
// Encoding

std::string latin1_to_utf8(std::string_view bytes) {
  size_t high = 0;
  for (unsigned char c : bytes) high += c >> 7;
  std::string out;
  out.reserve(bytes.size() + high);
  for (unsigned char c : bytes) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

size_t find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    if (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if ((w & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07;
    } else {
      return i;  // continuation byte without a lead, 0xC0/0xC1 (overlong) or > 0xF4
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += len;
  }
  return std::string_view::npos;
}

Encoding parse_encoding(std::string_view name) {
  std::string n;
  for (char c : name) n.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (n == "utf8" || n == "utf-8") return Encoding::Utf8;
  if (n == "latin1" || n == "latin-1" || n == "iso-8859-1" || n == "iso8859-1") return Encoding::Latin1;
  throw Error("unknown encoding '" + std::string(name) + "' (expected utf8 or latin1)");
}

// ---------------------------------------------------------------------------------------------
// Options

static std::string_view trim(std::string_view s) {
  // Fast path for the common case (nothing to trim), small enough to inline in the row loop.
  if (s.empty() || (s.front() != ' ' && s.front() != '\t' && s.back() != ' ' && s.back() != '\t' && s.back() != '\r'))
    return s;
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

static std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

ColumnSpec ColumnSpec::parse(std::string_view text) {
  text = trim(text);
  std::string l = lower(text);
  if (l.empty() || l == "auto") return ColumnSpec();
  if (l == "none" || l == "-") return none();
  if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int v = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec != std::errc()) throw Error("column index '" + std::string(text) + "' is too large");
    return ColumnSpec(v);
  }
  return ColumnSpec(std::string(text));
}

std::string ColumnSpec::to_string() const {
  switch (kind) {
    case Kind::Auto:
      return "auto";
    case Kind::Index:
      return std::to_string(index);
    case Kind::Name:
      return name;
    case Kind::None:
      return "none";
  }
  return "";
}

static bool parse_bool(std::string_view key, std::string_view v) {
  std::string l = lower(trim(v));
  if (l == "true" || l == "yes" || l == "1" || l == "on") return true;
  if (l == "false" || l == "no" || l == "0" || l == "off") return false;
  throw Error("'" + std::string(v) + "' is not a boolean for " + std::string(key) + " (true|false)");
}

static std::string parse_delimiter(std::string_view v) {
  std::string l = lower(v);
  if (l == "\\t" || l == "tab") return "\t";
  if (l == "space") return " ";
  if (l == "pipe") return "|";
  if (l == "comma") return ",";
  if (l == "semicolon") return ";";
  if (v.empty()) throw Error("the delimiter must not be empty");
  return std::string(v);
}

CsvOptions& CsvOptions::set(std::string_view key_in, std::string_view value_in) {
  std::string key = lower(trim(key_in));
  std::string_view value = trim(value_in);
  if (key == "delimiter" || key == "sep" || key == "separator") {
    delimiter_ = parse_delimiter(value);
  } else if (key == "header" || key == "has_header") {
    has_header_ = parse_bool(key, value);
  } else if (key == "encoding") {
    encoding_ = parse_encoding(value);
  } else if (key == "quoting") {
    quoting_ = parse_bool(key, value);
  } else if (key == "user" || key == "user_col") {
    user_ = ColumnSpec::parse(value);
  } else if (key == "item" || key == "item_col") {
    item_ = ColumnSpec::parse(value);
  } else if (key == "rating" || key == "rating_col") {
    rating_ = ColumnSpec::parse(value);
  } else if (key == "timestamp" || key == "timestamp_col") {
    timestamp_ = ColumnSpec::parse(value);
  } else if (key == "scenario" || key == "scenario_col") {
    scenario_ = ColumnSpec::parse(value);
  } else if (key == "behavior" || key == "behaviour" || key == "behavior_col" || key == "behaviour_col") {
    behavior_ = ColumnSpec::parse(value);
  } else if (key == "context" || key == "context_col") {
    context_ = ColumnSpec::parse(value);
  } else if (key == "default_scenario") {
    default_scenario_ = std::string(value);
  } else if (key == "default_behavior" || key == "default_behaviour") {
    default_behavior_ = std::string(value);
  } else if (key == "name") {
    name_ = std::string(value);
  } else {
    throw Error("unknown key '" + std::string(key_in) +
                "' (known: delimiter, header, encoding, quoting, user, item, rating, timestamp, scenario, behavior, "
                "context, default_scenario, default_behavior, name)");
  }
  return *this;
}

CsvOptions CsvOptions::from_config(const std::string& path) {
  std::string text = read_file(path);
  CsvOptions opts;
  int64_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    // '#' starts a comment at the start of a line or after a space (so "delimiter = #" works).
    std::string_view body = trim(line);
    if (body.empty() || body.front() == '#') continue;
    size_t eq = body.find('=');
    if (eq == std::string_view::npos)
      throw DataError(path, line_no, "", "expected 'key = value', got '" + std::string(body) + "'");
    std::string_view key = trim(body.substr(0, eq));
    std::string_view value = trim(body.substr(eq + 1));
    size_t hash = value.find(" #");
    if (hash != std::string_view::npos) value = trim(value.substr(0, hash));
    if (key.empty()) throw DataError(path, line_no, "", "missing key before '='");
    try {
      opts.set(key, value);
    } catch (const DataError&) {
      throw;
    } catch (const Error& e) {
      throw DataError(path, line_no, std::string(key), e.what());
    }
  }
  return opts;
}

// ---------------------------------------------------------------------------------------------
// Tokenizer: RFC 4180 records over a mutable in-memory buffer. Quoted fields are unescaped in
// place (the text only shrinks), so fields are views into the buffer and no per-field string
// is allocated.

namespace {

struct TokenError {
  int field = 0;  // index of the field in the record
  int64_t line = 0;
  std::string message;
};

class Tokenizer {
 public:
  Tokenizer(std::string& buffer, std::string_view delimiter, bool quoting)
      : p_(buffer.data()), end_(buffer.data() + buffer.size()), delim_(delimiter), quoting_(quoting) {
    // A UTF-8 byte order mark is not part of the first field.
    if (end_ - p_ >= 3 && std::memcmp(p_, "\xEF\xBB\xBF", 3) == 0) p_ += 3;
  }

  /// Reads the next non-blank record. Returns false at the end of the input. On a quoting
  /// problem fills `error`, skips to the next line and returns true with error->message set.
  bool next(std::vector<std::string_view>& fields, TokenError& error) {
    fields.clear();
    error.message.clear();
    while (p_ < end_ && (*p_ == '\n' || (*p_ == '\r' && (p_ + 1 == end_ || p_[1] == '\n')))) {
      if (*p_ == '\n') ++line_;
      ++p_;
    }
    if (p_ >= end_) return false;
    record_line_ = line_;
    record_start_ = p_;
    const char d0 = delim_[0];
    const size_t dlen = delim_.size();
    for (;;) {
      if (quoting_ && *p_ == '"') {
        int64_t open_line = line_;
        char* start = ++p_;
        char* w = start;
        for (;;) {
          if (p_ >= end_) {
            error = {static_cast<int>(fields.size()), open_line,
                     "unterminated quoted field (the opening quote is on line " + std::to_string(open_line) + ")"};
            return true;
          }
          char c = *p_;
          if (c == '"') {
            if (p_ + 1 < end_ && p_[1] == '"') {
              *w++ = '"';
              p_ += 2;
              continue;
            }
            ++p_;
            break;
          }
          if (c == '\n') ++line_;
          *w++ = c;
          ++p_;
        }
        fields.emplace_back(start, static_cast<size_t>(w - start));
        if (p_ >= end_) return true;
        if (at_delimiter(d0, dlen)) {
          p_ += dlen;
          continue;
        }
        if (*p_ == '\n' || (*p_ == '\r' && (p_ + 1 == end_ || p_[1] == '\n'))) {
          finish_line();
          return true;
        }
        error = {static_cast<int>(fields.size()) - 1, line_,
                 std::string("unexpected character '") + *p_ + "' after a closing quote"};
        skip_line();
        return true;
      }
      char* start = p_;
      if (dlen == 1) {
        while (p_ < end_ && *p_ != d0 && *p_ != '\n') ++p_;
      } else {
        while (p_ < end_ && *p_ != '\n' && !at_delimiter(d0, dlen)) ++p_;
      }
      char* stop = p_;
      bool line_end = p_ >= end_ || *p_ == '\n';
      if (line_end && stop > start && stop[-1] == '\r') --stop;
      fields.emplace_back(start, static_cast<size_t>(stop - start));
      if (p_ >= end_) return true;
      if (line_end) {
        ++p_;
        ++line_;
        return true;
      }
      p_ += dlen;
      if (p_ >= end_) {  // a delimiter right at the end: one more, empty field
        fields.emplace_back(p_, 0);
        return true;
      }
    }
  }

  int64_t record_line() const { return record_line_; }
  /// The line on which field `f` of the current record starts (fields may span lines).
  int64_t field_line(const std::vector<std::string_view>& fields, size_t f) const {
    if (f >= fields.size()) return record_line_;
    return record_line_ + std::count(record_start_, fields[f].data(), '\n');
  }

 private:
  bool at_delimiter(char d0, size_t dlen) const {
    return *p_ == d0 &&
           (dlen == 1 || (static_cast<size_t>(end_ - p_) >= dlen && std::memcmp(p_, delim_.data(), dlen) == 0));
  }
  void finish_line() {
    if (*p_ == '\r') ++p_;
    if (p_ < end_ && *p_ == '\n') ++p_;
    ++line_;
  }
  void skip_line() {
    while (p_ < end_ && *p_ != '\n') ++p_;
    if (p_ < end_) ++p_;
    ++line_;
  }

  char* p_;
  char* end_;
  std::string_view delim_;
  bool quoting_;
  int64_t line_ = 1;
  int64_t record_line_ = 1;
  const char* record_start_ = nullptr;
};

/// Decodes the raw bytes per the options: Latin-1 to UTF-8, or a check that UTF-8 is valid
/// (the first bad byte is returned so that the caller can name line and field).
std::string decode(std::string bytes, Encoding enc, size_t& first_bad) {
  first_bad = std::string::npos;
  if (enc == Encoding::Latin1) {
    bool ascii =
        std::all_of(bytes.begin(), bytes.end(), [](char c) { return (static_cast<unsigned char>(c) & 0x80) == 0; });
    return ascii ? std::move(bytes) : latin1_to_utf8(bytes);
  }
  first_bad = find_invalid_utf8(bytes);
  return bytes;
}

/// A fast hash for short ids (8 bytes at a time, multiply-xorshift mixing); std::hash goes
/// through an out-of-line call per id.
inline size_t hash_view(std::string_view key) {
  const char* p = key.data();
  size_t n = key.size();
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xC2B2AE3D27D4EB4FULL);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
    h ^= h >> 32;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
  }
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ULL;
  return static_cast<size_t>(h ^ (h >> 32));
}

inline bool same_bytes(const char* a, const char* b, size_t n) {
  for (size_t k = 0; k < n; ++k)
    if (a[k] != b[k]) return false;
  return true;
}

/// Open-addressing map from a view into the (stable) input buffer to a dense id: the hot path
/// hashes each id once and allocates nothing for ids already seen. One slot array (hash, key,
/// id) keeps a lookup to one cache line; the table grows at half load.
class ViewIndex {
 public:
  ViewIndex() { rehash(1024); }
  /// The id of `key`, or -1.
  int32_t find(std::string_view key, size_t h) const {
    for (size_t s = h & mask_;; s = (s + 1) & mask_) {
      const Slot& e = slots_[s];
      if (e.val < 0) return -1;
      if (e.hash == h && e.len == key.size() && same_bytes(e.ptr, key.data(), key.size())) return e.val;
    }
  }
  void insert(std::string_view key, size_t h, int32_t val) {
    if ((size_ + 1) * 2 > slots_.size()) rehash(slots_.size() * 2);
    size_t s = h & mask_;
    while (slots_[s].val >= 0) s = (s + 1) & mask_;
    slots_[s] = Slot{h, key.data(), static_cast<uint32_t>(key.size()), val};
    ++size_;
  }

 private:
  struct Slot {
    size_t hash = 0;
    const char* ptr = nullptr;
    uint32_t len = 0;
    int32_t val = -1;
  };
  void rehash(size_t cap) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    size_ = 0;
    for (const Slot& e : old)
      if (e.val >= 0) insert(std::string_view(e.ptr, e.len), e.hash, e.val);
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0, size_ = 0;
};

/// An IdMap plus a fast view index over it. Ids already in the map (read against another
/// data set's ids) are indexed through a private copy of their text.
class Interner {
 public:
  explicit Interner(IdMap& map) : map_(map) {
    size_t total = 0;
    for (const auto& r : map.raws()) total += r.size();
    arena_.reserve(total);  // never grows past this: the views below stay valid
    for (int32_t id = 0; id < map.size(); ++id) {
      const std::string& r = map.raws()[static_cast<size_t>(id)];
      std::string_view v(arena_.data() + arena_.size(), r.size());
      arena_ += r;
      index_.insert(v, hash_view(v), id);
    }
  }
  /// The dense id of `key`, or -1 when it is new and `add` is false.
  int32_t get(std::string_view key, bool add) {
    size_t h = hash_view(key);
    int32_t id = index_.find(key, h);
    if (id >= 0 || !add) return id;
    id = map_.intern(key);
    index_.insert(key, h, id);
    return id;
  }

 private:
  IdMap& map_;
  ViewIndex index_;
  std::string arena_;
};

std::string normalize_header(std::string_view name) {
  name = trim(name);
  size_t colon = name.find(':');  // RecBole atomic files: "user_id:token"
  if (colon != std::string_view::npos) name = name.substr(0, colon);
  std::string out;
  for (char c : name) {
    if (c == '_' || c == '-' || c == ' ' || c == '.') continue;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

enum Role { kUser, kItem, kRating, kTimestamp, kScenario, kBehavior, kContext, kRoles };
const char* const kRoleNames[kRoles] = {"user", "item", "rating", "timestamp", "scenario", "behavior", "context"};

const std::vector<std::vector<std::string>>& role_aliases() {
  static const std::vector<std::vector<std::string>> aliases = {
      {"user", "userid", "uid", "users", "customer", "customerid", "reviewerid", "visitorid", "memberid"},
      {"item",    "itemid", "iid",    "items", "movie",  "movieid", "product", "productid", "asin",     "track",
       "trackid", "song",   "songid", "book",  "bookid", "isbn",    "article", "articleid", "business", "businessid"},
      {"rating", "ratings", "score", "stars", "star", "overall", "rate"},
      {"timestamp", "time", "ts", "unixtime", "unixreviewtime", "epoch"},
      {"scenario", "domain", "scene"},
      {"behavior", "behaviour", "action", "event", "eventtype", "behaviortype", "behaviourtype"},
      {"context"},
  };
  return aliases;
}

/// Collects problems (validate mode) or throws the first (read mode).
struct Problems {
  std::string file;
  std::vector<DataError>* sink = nullptr;
  void report(int64_t line, const std::string& field, const std::string& message) {
    if (!sink) throw DataError(file, line, field, message);
    sink->emplace_back(file, line, field, message);
  }
};

std::string show(std::string_view v) {
  constexpr size_t kMax = 40;
  return "'" + std::string(v.substr(0, kMax)) + (v.size() > kMax ? "...'" : "'");
}

bool parse_float(std::string_view v, float& out) {
  v = trim(v);
  if (v.empty()) return false;
  const char* b = v.data();
  if (*b == '+') ++b;
  auto r = std::from_chars(b, v.data() + v.size(), out);
  return r.ec == std::errc() && r.ptr == v.data() + v.size() && std::isfinite(out);
}

bool parse_int64(std::string_view v, int64_t& out) {
  v = trim(v);
  if (v.empty()) return false;
  const char* b = v.data();
  if (*b == '+') ++b;
  const char* e = v.data() + v.size();
  auto r = std::from_chars(b, e, out);
  if (r.ec == std::errc() && r.ptr == e) return true;
  // Fractional seconds ("881250949.5"): keep the whole seconds.
  double d;
  auto rd = std::from_chars(b, e, d);
  if (rd.ec != std::errc() || rd.ptr != e || !std::isfinite(d) || std::fabs(d) > 9.0e18) return false;
  out = static_cast<int64_t>(std::floor(d));
  return true;
}

/// The shared reader: parses `content` into a Dataset whose maps start from `ids` (if any).
Dataset parse_interactions(std::string content, const std::string& file, const CsvOptions& opt, const Dataset* ids,
                           bool allow_new_ids, std::vector<DataError>* problems, int64_t* good_rows) {
  Problems prob{file, problems};
  MTREC_CHECK(!opt.delimiter().empty(), "the delimiter must not be empty");
  MTREC_CHECK(!(opt.quoting() && opt.delimiter().find('"') != std::string::npos), "the delimiter ",
              show(opt.delimiter()), " contains a double quote; turn quoting off");
  size_t bad_utf8 = std::string::npos;
  content = decode(std::move(content), opt.encoding(), bad_utf8);

  Dataset ds;
  if (ids) {
    ds.users = ids->users;
    ds.items = ids->items;
    ds.scenarios = ids->scenarios;
    ds.behaviors = ids->behaviors;
  }
  ds.name = !opt.name().empty() ? opt.name() : ids ? ids->name : std::filesystem::path(file).stem().string();

  Tokenizer tok(content, opt.delimiter(), opt.quoting());
  std::vector<std::string_view> fields;
  fields.reserve(16);
  TokenError terr;

  // The first record: the header, or the first data row (which fixes the column count).
  bool have_first = false;
  while (!have_first) {
    if (!tok.next(fields, terr)) {
      prob.report(tok.record_line(), "", content.empty() ? "the file is empty" : "the file has no records");
      if (good_rows) *good_rows = 0;
      return ds;
    }
    if (terr.message.empty()) {
      have_first = true;
    } else {
      prob.report(terr.line, "column " + std::to_string(terr.field + 1), terr.message);
      if (problems == nullptr) return ds;
    }
  }
  const int ncols = static_cast<int>(fields.size());
  std::vector<std::string> labels(static_cast<size_t>(ncols));  // names of the columns in messages
  std::vector<std::string> header_norm;
  if (opt.has_header()) {
    for (int c = 0; c < ncols; ++c) {
      labels[static_cast<size_t>(c)] = std::string(trim(fields[static_cast<size_t>(c)]));
      header_norm.push_back(normalize_header(fields[static_cast<size_t>(c)]));
    }
  }

  // Resolve the column of each role.
  const ColumnSpec* specs[kRoles] = {&opt.user(),     &opt.item(),     &opt.rating(), &opt.timestamp(),
                                     &opt.scenario(), &opt.behavior(), &opt.context()};
  int col[kRoles];
  bool mapping_ok = true;
  auto header_list = [&] {
    std::string s;
    for (const auto& l : labels) s += (s.empty() ? "" : ", ") + l;
    return s;
  };
  for (int r = 0; r < kRoles; ++r) {
    const ColumnSpec& spec = *specs[r];
    col[r] = -1;
    switch (spec.kind) {
      case ColumnSpec::Kind::None:
        break;
      case ColumnSpec::Kind::Index:
        if (spec.index < 0 || spec.index >= ncols) {
          prob.report(tok.record_line(), kRoleNames[r],
                      "column index " + std::to_string(spec.index) + " is outside the " + std::to_string(ncols) +
                          " columns of the file (indices are 0-based)");
          mapping_ok = false;
        } else {
          col[r] = spec.index;
        }
        break;
      case ColumnSpec::Kind::Name: {
        if (!opt.has_header()) {
          prob.report(tok.record_line(), kRoleNames[r],
                      "column named '" + spec.name + "' but the file is read without a header; give a 0-based index");
          mapping_ok = false;
          break;
        }
        for (int c = 0; c < ncols && col[r] < 0; ++c)
          if (labels[static_cast<size_t>(c)] == spec.name) col[r] = c;
        std::string want = normalize_header(spec.name);
        for (int c = 0; c < ncols && col[r] < 0; ++c)
          if (header_norm[static_cast<size_t>(c)] == want) col[r] = c;
        if (col[r] < 0) {
          prob.report(tok.record_line(), kRoleNames[r],
                      "no column named '" + spec.name + "' in the header (columns: " + header_list() + ")");
          mapping_ok = false;
        }
        break;
      }
      case ColumnSpec::Kind::Auto:
        if (opt.has_header()) {
          const auto& al = role_aliases()[static_cast<size_t>(r)];
          for (const auto& a : al) {  // earlier aliases win: "user" before "uid"
            for (int c = 0; c < ncols && col[r] < 0; ++c)
              if (header_norm[static_cast<size_t>(c)] == a) col[r] = c;
            if (col[r] >= 0) break;
          }
        } else {
          const int positional[kRoles] = {0, 1, 2, 3, -1, -1, -1};
          if (positional[r] >= 0 && positional[r] < ncols) col[r] = positional[r];
        }
        break;
    }
  }
  for (int r : {kUser, kItem}) {
    if (col[r] < 0 && mapping_ok && specs[r]->kind != ColumnSpec::Kind::Index &&
        specs[r]->kind != ColumnSpec::Kind::Name) {
      prob.report(tok.record_line(), kRoleNames[r],
                  specs[r]->kind == ColumnSpec::Kind::None
                      ? std::string("the ") + kRoleNames[r] + " column cannot be none"
                      : std::string("no ") + kRoleNames[r] + " column found" +
                            (opt.has_header() ? " in the header (columns: " + header_list() + "); name it '" +
                                                    kRoleNames[r] + "' or map it explicitly"
                                              : ""));
      mapping_ok = false;
    }
  }
  for (int r = 0; r < kRoles && mapping_ok; ++r)
    for (int s = r + 1; s < kRoles; ++s)
      if (col[r] >= 0 && col[r] == col[s]) {
        prob.report(tok.record_line(), kRoleNames[s],
                    std::string("column ") + std::to_string(col[s]) + " is already mapped to " + kRoleNames[r]);
        mapping_ok = false;
      }
  if (!mapping_ok) {
    if (good_rows) *good_rows = 0;
    return ds;
  }
  for (int c = 0; c < ncols; ++c) {
    auto& l = labels[static_cast<size_t>(c)];
    if (!l.empty()) continue;
    for (int r = 0; r < kRoles; ++r)
      if (col[r] == c) l = kRoleNames[r];
    if (l.empty()) l = "column " + std::to_string(c + 1);
  }

  Interactions& x = ds.interactions;
  x.has_rating = col[kRating] >= 0;
  x.has_timestamp = col[kTimestamp] >= 0;
  x.has_context = col[kContext] >= 0;
  size_t expected_rows = static_cast<size_t>(std::count(content.begin(), content.end(), '\n')) + 1;
  x.reserve(expected_rows);
  if (col[kScenario] < 0) ds.scenarios.intern(opt.default_scenario());
  // intern() returns the existing id when `ids` already holds the default (not always the last).
  int32_t beh_default_id = 0;
  if (col[kBehavior] < 0)
    beh_default_id = ds.behaviors.intern(!opt.default_behavior().empty() ? opt.default_behavior()
                                         : x.has_rating                  ? "rating"
                                                                         : "interaction");
  const int16_t scen_default = static_cast<int16_t>(col[kScenario] < 0 ? ds.scenarios.find(opt.default_scenario()) : 0);
  const int16_t beh_default = static_cast<int16_t>(beh_default_id);
  // Views stay valid: `content` is not touched again until the end of this function.
  const bool add_ids = ids == nullptr || allow_new_ids;
  Interner users(ds.users), items(ds.items), scenarios(ds.scenarios), behaviors(ds.behaviors);
  // Context texts are their own ids: those of `ids` keep theirs, new ones follow.
  IdMap context_ids;
  if (ids)
    for (int32_t c = 0; c < ids->context_text.size(); ++c) context_ids.intern(ids->context_text.get(c, "text"));
  Interner contexts(context_ids);

  // Fields of the current row that are not valid UTF-8 (rare: only checked when the buffer has any).
  auto utf8_problem = [&](std::vector<std::string_view>& f) -> bool {
    if (bad_utf8 == std::string::npos) return false;
    for (size_t c = 0; c < f.size(); ++c) {
      size_t off = find_invalid_utf8(f[c]);
      if (off != std::string_view::npos) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned char>(f[c][off]));
        prob.report(tok.field_line(f, c), labels[std::min(c, labels.size() - 1)],
                    std::string("invalid UTF-8 (byte ") + buf + " at offset " + std::to_string(off) +
                        "); pass encoding=latin1 if the file is Latin-1");
        return true;
      }
    }
    return false;
  };

  int64_t rows = 0;
  bool first = true;
  bool skip_first = opt.has_header();
  if (utf8_problem(fields)) skip_first = true;  // only returns in validate mode
  for (;;) {
    if (!first) {
      if (!tok.next(fields, terr)) break;
      if (!terr.message.empty()) {
        size_t f = static_cast<size_t>(terr.field);
        prob.report(terr.line, f < labels.size() ? labels[f] : "column " + std::to_string(f + 1), terr.message);
        continue;
      }
      if (utf8_problem(fields)) continue;
    }
    first = false;
    if (skip_first) {
      skip_first = false;
      continue;
    }
    const int64_t line = tok.record_line();
    if (static_cast<int>(fields.size()) != ncols) {
      size_t f = std::min(fields.size(), static_cast<size_t>(ncols));
      std::string where = f < labels.size() ? labels[f] : "column " + std::to_string(f + 1);
      prob.report(
          line, where,
          "expected " + std::to_string(ncols) + " fields, found " + std::to_string(fields.size()) +
              (fields.size() < static_cast<size_t>(ncols) ? " (this field is missing)" : " (this one is extra)"));
      continue;
    }
    auto field = [&](int role) { return trim(fields[static_cast<size_t>(col[role])]); };
    auto bad = [&](int role, const std::string& msg) {
      prob.report(tok.field_line(fields, static_cast<size_t>(col[role])), labels[static_cast<size_t>(col[role])], msg);
    };
    std::string_view u = field(kUser), i = field(kItem);
    if (u.empty()) {
      bad(kUser, "empty user id");
      continue;
    }
    if (i.empty()) {
      bad(kItem, "empty item id");
      continue;
    }
    float rating = 1.0f;
    int64_t ts = 0;
    if (x.has_rating && !parse_float(field(kRating), rating)) {
      bad(kRating, "not a number: " + show(field(kRating)));
      continue;
    }
    if (x.has_timestamp && !parse_int64(field(kTimestamp), ts)) {
      bad(kTimestamp, "not an integer timestamp: " + show(field(kTimestamp)));
      continue;
    }
    int32_t scen = scen_default, beh = beh_default;
    if (col[kScenario] >= 0) {
      std::string_view s = field(kScenario);
      if (s.empty()) {
        bad(kScenario, "empty scenario");
        continue;
      }
      scen = scenarios.get(s, true);
      if (scen > std::numeric_limits<int16_t>::max()) {
        bad(kScenario, "more than 32767 distinct scenarios");
        continue;
      }
    }
    if (col[kBehavior] >= 0) {
      std::string_view b = field(kBehavior);
      if (b.empty()) {
        bad(kBehavior, "empty behaviour");
        continue;
      }
      beh = behaviors.get(b, true);
      if (beh > std::numeric_limits<int16_t>::max()) {
        bad(kBehavior, "more than 32767 distinct behaviours");
        continue;
      }
    }
    int32_t ctx = -1;
    if (col[kContext] >= 0) {
      std::string_view c = field(kContext);
      if (!c.empty()) ctx = contexts.get(c, true);
    }
    int32_t uid = users.get(u, add_ids);
    if (uid < 0) {
      bad(kUser, "user " + show(u) + " is not in " + (ids->name.empty() ? "the reference data" : ids->name));
      continue;
    }
    int32_t iid = items.get(i, add_ids);
    if (iid < 0) {
      bad(kItem, "item " + show(i) + " is not in " + (ids->name.empty() ? "the reference data" : ids->name));
      continue;
    }
    x.user.push_back(uid);
    x.item.push_back(iid);
    if (x.has_rating) x.rating.push_back(rating);
    if (x.has_timestamp) x.timestamp.push_back(ts);
    x.scenario.push_back(static_cast<int16_t>(scen));
    x.behavior.push_back(static_cast<int16_t>(beh));
    if (x.has_context) x.context.push_back(ctx);
    ++rows;
  }
  if (rows == 0 && (problems == nullptr || problems->empty()))
    prob.report(tok.record_line(), "", "no data rows" + std::string(opt.has_header() ? " after the header" : ""));
  if (good_rows) *good_rows = rows;
  if (ids) {
    ds.item_text = ids->item_text;
    ds.user_text = ids->user_text;
    ds.context_text = ids->context_text;
  }
  if (context_ids.size() > ds.context_text.size()) {
    ds.context_text = TextCatalog({"text"});
    ds.context_text.resize(context_ids.size());
    for (int32_t c = 0; c < context_ids.size(); ++c) ds.context_text.set(c, "text", context_ids.raw(c));
  }
  return ds;
}

}  // namespace

Dataset parse_csv(std::string content, const std::string& source_name, const CsvOptions& options) {
  return parse_interactions(std::move(content), source_name, options, nullptr, true, nullptr, nullptr);
}

Dataset read_csv(const std::string& path, const CsvOptions& options) {
  return parse_csv(read_file(path), path, options);
}

Dataset read_csv_with_ids(const std::string& path, const CsvOptions& options, const Dataset& ids, bool allow_new_ids) {
  return parse_interactions(read_file(path), path, options, &ids, allow_new_ids, nullptr, nullptr);
}

CsvValidation validate_csv(const std::string& path, const CsvOptions& options) {
  CsvValidation v;
  parse_interactions(read_file(path), path, options, nullptr, true, &v.problems, &v.rows);
  return v;
}

void for_each_record(const std::string& path, const CsvOptions& options, const RecordFn& fn) {
  size_t bad = std::string::npos;
  std::string content = decode(read_file(path), options.encoding(), bad);
  Tokenizer tok(content, options.delimiter(), options.quoting());
  std::vector<std::string_view> fields;
  TokenError err;
  while (tok.next(fields, err)) {
    if (!err.message.empty()) throw DataError(path, err.line, "column " + std::to_string(err.field + 1), err.message);
    if (bad != std::string::npos) {
      for (size_t c = 0; c < fields.size(); ++c)
        if (find_invalid_utf8(fields[c]) != std::string_view::npos)
          throw DataError(path, tok.field_line(fields, c), "column " + std::to_string(c + 1),
                          "invalid UTF-8; pass encoding=latin1 if the file is Latin-1");
    }
    fn(tok.record_line(), fields);
  }
}

// ---------------------------------------------------------------------------------------------
// A folder in the generic format (csv_writer.h)

namespace {

/// The column of `labels` that `spec` names: exact label first, then the normalised form (as
/// the interaction reader matches names); -1 when absent.
int find_label(const std::vector<std::string>& labels, const std::string& name) {
  for (size_t c = 0; c < labels.size(); ++c)
    if (labels[c] == name) return static_cast<int>(c);
  const std::string want = normalize_header(name);
  for (size_t c = 0; c < labels.size(); ++c)
    if (normalize_header(labels[c]) == want) return static_cast<int>(c);
  return -1;
}

}  // namespace

CatalogRead read_catalog(const CatalogSpec& spec, CatalogRole role_in, IdMap& ids, TextCatalog* text) {
  const std::string& path = spec.path();
  const Role role = role_in == CatalogRole::User       ? kUser
                    : role_in == CatalogRole::Item     ? kItem
                    : role_in == CatalogRole::Scenario ? kScenario
                    : role_in == CatalogRole::Behavior ? kBehavior
                                                       : kContext;
  std::vector<std::string> labels;
  int id_col = -1;
  std::vector<int> text_cols;
  std::unordered_map<int32_t, int64_t> first_line;  // dense id -> the line of this file that defined it
  std::vector<std::pair<int32_t, std::vector<std::string>>> rows;
  CatalogRead read;
  const int32_t known_before = ids.size();
  auto columns = [&] {
    std::string s;
    for (const auto& l : labels) s += (s.empty() ? "" : ", ") + l;
    return s;
  };
  for_each_record(path, spec.csv(), [&](int64_t line, const std::vector<std::string_view>& f) {
    if (labels.empty()) {
      for (size_t c = 0; c < f.size(); ++c) {
        std::string l(trim(f[c]));
        if (l.empty())
          throw DataError(path, line, "column " + std::to_string(c + 1), "empty column name in the header");
        for (const auto& prev : labels)
          if (prev == l) throw DataError(path, line, l, "duplicate column name in the header");
        labels.push_back(std::move(l));
      }
      const ColumnSpec& id = spec.id();
      const std::string id_field = std::string(kRoleNames[role]) + " id";
      switch (id.kind) {
        case ColumnSpec::Kind::Index:
          if (id.index < 0 || id.index >= static_cast<int>(labels.size()))
            throw DataError(path, line, id_field,
                            "column index " + std::to_string(id.index) + " is outside the " +
                                std::to_string(labels.size()) + " columns (" + columns() + "; indices are 0-based)");
          id_col = id.index;
          break;
        case ColumnSpec::Kind::Name:
          id_col = find_label(labels, id.name);
          if (id_col < 0)
            throw DataError(path, line, id.name, "no id column named '" + id.name + "' (columns: " + columns() + ")");
          break;
        case ColumnSpec::Kind::None:
          throw DataError(path, line, id_field, "a catalogue needs an id column");
        case ColumnSpec::Kind::Auto:
          for (const auto& a : role_aliases()[static_cast<size_t>(role)])
            for (size_t c = 0; c < labels.size() && id_col < 0; ++c)
              if (normalize_header(labels[c]) == a) id_col = static_cast<int>(c);
          if (id_col < 0) id_col = 0;
          break;
      }
      if (spec.text_columns().empty()) {
        for (size_t c = 0; c < labels.size(); ++c)
          if (static_cast<int>(c) != id_col) text_cols.push_back(static_cast<int>(c));
      } else {
        for (const auto& name : spec.text_columns()) {
          const int c = find_label(labels, name);
          if (c < 0)
            throw DataError(path, line, name, "no text column named '" + name + "' (columns: " + columns() + ")");
          if (c == id_col) throw DataError(path, line, name, "the id column cannot also be a text column");
          text_cols.push_back(c);
        }
      }
      return;
    }
    if (f.size() != labels.size())
      throw DataError(path, line, f.size() < labels.size() ? labels[f.size()] : "column " + std::to_string(f.size()),
                      "expected " + std::to_string(labels.size()) + " fields, found " + std::to_string(f.size()));
    const std::string_view raw = trim(f[static_cast<size_t>(id_col)]);
    const std::string& id_label = labels[static_cast<size_t>(id_col)];
    if (raw.empty()) throw DataError(path, line, id_label, std::string("empty ") + kRoleNames[role] + " id");
    const int32_t id = ids.intern(raw);
    auto [it, fresh] = first_line.emplace(id, line);
    if (!fresh)
      throw DataError(path, line, id_label,
                      std::string("duplicate ") + kRoleNames[role] + " id " + show(raw) + " (first on line " +
                          std::to_string(it->second) + ")");
    ++read.rows;
    if (text) {
      std::vector<std::string> values;
      values.reserve(text_cols.size());
      for (int c : text_cols) values.emplace_back(f[static_cast<size_t>(c)]);
      rows.emplace_back(id, std::move(values));
    }
  });
  if (labels.empty()) throw DataError(path, 1, "", "the file is empty (expected a header)");
  read.new_ids = ids.size() - known_before;
  if (!text) return read;
  std::vector<std::string> fields;
  for (int c : text_cols) fields.push_back(labels[static_cast<size_t>(c)]);
  TextCatalog cat(fields);
  cat.resize(ids.size());
  for (auto& [id, values] : rows)
    for (size_t k = 0; k < values.size(); ++k) cat.set(id, fields[k], std::move(values[k]));
  *text = std::move(cat);
  return read;
}

Dataset read_dataset_dir(const std::string& dir, const CsvOptions& options) {
  namespace fs = std::filesystem;
  const fs::path root(dir);
  const fs::path interactions = root / "interactions.csv";
  MTREC_CHECK(fs::is_regular_file(interactions), "no interactions.csv in '", dir,
              "' (expected the generic format: interactions.csv, optional items.csv and users.csv)");
  CsvOptions catalog_options = options;
  catalog_options.has_header(true);
  Dataset ids;
  auto optional = [&](const char* name, CatalogRole role, IdMap& map, TextCatalog* text) {
    const fs::path p = root / name;
    if (fs::exists(p)) read_catalog(CatalogSpec(p.string()).csv(catalog_options), role, map, text);
  };
  optional("items.csv", CatalogRole::Item, ids.items, &ids.item_text);
  optional("users.csv", CatalogRole::User, ids.users, &ids.user_text);
  optional("scenarios.csv", CatalogRole::Scenario, ids.scenarios, nullptr);
  optional("behaviours.csv", CatalogRole::Behavior, ids.behaviors, nullptr);
  if (!fs::exists(root / "behaviours.csv")) optional("behaviors.csv", CatalogRole::Behavior, ids.behaviors, nullptr);
  IdMap context_ids;
  optional("contexts.csv", CatalogRole::Context, context_ids, nullptr);
  if (context_ids.size() > 0) {
    ids.context_text = TextCatalog({"text"});
    ids.context_text.resize(context_ids.size());
    for (int32_t c = 0; c < context_ids.size(); ++c) ids.context_text.set(c, "text", context_ids.raw(c));
  }
  fs::path norm = root.lexically_normal();
  ids.name = (norm.has_filename() ? norm.filename() : norm.parent_path().filename()).string();
  Dataset ds = read_csv_with_ids(interactions.string(), options, ids, true);
  ds.item_text.resize(ds.num_items());  // ids first seen in interactions.csv have no text
  ds.user_text.resize(ds.num_users());
  return ds;
}

}  // namespace mtrec
