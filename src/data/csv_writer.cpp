#include "mtrec/data/csv_writer.h"

#include <charconv>
#include <cmath>
#include <filesystem>

#include "mtrec/core/check.h"
#include "mtrec/core/io.h"

namespace mtrec {

void append_csv_field(std::string& out, std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) {
    out.append(field);
    return;
  }
  out.push_back('"');
  for (char c : field) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

namespace {

/// Buffers rows and streams them into an atomic file in chunks, so millions of rows never sit
/// in memory as text.
class CsvOut {
 public:
  explicit CsvOut(const std::string& path) : file_(path) { buf_.reserve(kChunk + 4096); }
  std::string& buf() { return buf_; }
  void end_row() {
    buf_.push_back('\n');
    if (buf_.size() >= kChunk) flush();
  }
  void commit() {
    flush();
    file_.commit();
  }

 private:
  static constexpr size_t kChunk = 1 << 20;
  void flush() {
    file_.stream().write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
    buf_.clear();
  }
  AtomicFile file_;
  std::string buf_;
};

/// The reader trims spaces around ids and skips blank records: such ids would not read back.
void check_ids(const IdMap& ids, const char* what) {
  for (int32_t id = 0; id < ids.size(); ++id) {
    const std::string& raw = ids.raw(id);
    MTREC_CHECK(!raw.empty() && raw.front() != ' ' && raw.back() != ' ' && raw.front() != '\t' && raw.back() != '\t',
                "cannot write ", what, " id #", id, " '", raw,
                "' as CSV: ids must be non-empty without leading or trailing spaces");
  }
}

template <typename T>
void append_number(std::string& out, T v) {
  char tmp[32];
  auto res = std::to_chars(tmp, tmp + sizeof tmp, v);  // shortest form that parses back exactly
  out.append(tmp, res.ptr);
}

/// One row per entity in dense-id order: its raw id, then every text field.
void write_catalog(const std::string& path, const char* id_column, const IdMap& ids, const TextCatalog& text) {
  CsvOut out(path);
  std::string& head = out.buf();
  head += id_column;
  for (const auto& f : text.fields()) head.push_back(','), append_csv_field(head, f);
  out.end_row();
  for (int32_t id = 0; id < ids.size(); ++id) {
    std::string& b = out.buf();
    append_csv_field(b, ids.raw(id));
    for (const auto& f : text.fields()) b.push_back(','), append_csv_field(b, id < text.size() ? text.get(id, f) : "");
    out.end_row();
  }
  out.commit();
}

}  // namespace

void write_dataset_csv(const Dataset& ds, const std::string& dir) {
  ds.validate();
  check_ids(ds.users, "user");
  check_ids(ds.items, "item");
  check_ids(ds.scenarios, "scenario");
  check_ids(ds.behaviors, "behaviour");
  const Interactions& x = ds.interactions;
  // A context's text is its id in the files: it must read back as the same text, once.
  IdMap contexts;
  if (x.has_context) {
    for (int32_t c = 0; c < ds.context_text.size(); ++c) {
      const std::string& t = ds.context_text.get(c, "text");
      MTREC_CHECK(contexts.intern(t) == c, "cannot write context #", c, " '", t,
                  "' as CSV: the same text is also context #", contexts.find(t));
    }
    check_ids(contexts, "context");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  MTREC_CHECK(!ec, "cannot create folder '", dir, "': ", ec.message());

  CsvOut out(dir + "/interactions.csv");
  out.buf() += "user,item";
  if (x.has_rating) out.buf() += ",rating";
  if (x.has_timestamp) out.buf() += ",timestamp";
  out.buf() += ",scenario,behaviour";
  if (x.has_context) out.buf() += ",context";
  out.end_row();
  for (size_t r = 0; r < x.size(); ++r) {
    std::string& b = out.buf();
    append_csv_field(b, ds.users.raw(x.user[r]));
    b.push_back(',');
    append_csv_field(b, ds.items.raw(x.item[r]));
    if (x.has_rating) {
      MTREC_CHECK(std::isfinite(x.rating[r]), "cannot write interaction ", r, ": rating ", x.rating[r],
                  " is not finite");
      b.push_back(',');
      append_number(b, x.rating[r]);
    }
    if (x.has_timestamp) b.push_back(','), append_number(b, x.timestamp[r]);
    b.push_back(',');
    append_csv_field(b, ds.scenarios.raw(x.scenario[r]));
    b.push_back(',');
    append_csv_field(b, ds.behaviors.raw(x.behavior[r]));
    if (x.has_context) {
      b.push_back(',');
      if (x.context[r] >= 0) append_csv_field(b, contexts.raw(x.context[r]));
    }
    out.end_row();
  }
  out.commit();
  write_catalog(dir + "/items.csv", "item", ds.items, ds.item_text);
  write_catalog(dir + "/users.csv", "user", ds.users, ds.user_text);
  write_catalog(dir + "/scenarios.csv", "scenario", ds.scenarios, TextCatalog());
  write_catalog(dir + "/behaviours.csv", "behaviour", ds.behaviors, TextCatalog());
  if (x.has_context) write_catalog(dir + "/contexts.csv", "context", contexts, TextCatalog());
}

}  // namespace mtrec
