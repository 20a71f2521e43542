#include "mtrec/data/impressions.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <unordered_set>

#include "mtrec/core/check.h"
#include "mtrec/core/io.h"
#include "mtrec/data/csv_reader.h"
#include "mtrec/data/csv_writer.h"

namespace mtrec {
namespace {

constexpr const char* kColumns[] = {"impression", "user",       "scenario",          "position",
                                    "item",       "propensity", "prefix_propensity", "click"};
constexpr int kColumnCount = 8;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

void check_slate(int64_t k, const std::vector<int32_t>& items, const std::vector<double>& propensity,
                 const std::vector<double>& prefix, const std::vector<uint8_t>& clicks) {
  MTREC_CHECK(int64_t(items.size()) == k && int64_t(propensity.size()) == k && int64_t(prefix.size()) == k &&
                  int64_t(clicks.size()) == k,
              "an impression of a k=", k, " log needs k items, propensities, prefix propensities and clicks, got ",
              items.size(), ", ", propensity.size(), ", ", prefix.size(), ", ", clicks.size());
  for (int64_t j = 0; j < k; ++j) {
    MTREC_CHECK(
        propensity[size_t(j)] > 0 && propensity[size_t(j)] <= 1 && prefix[size_t(j)] > 0 && prefix[size_t(j)] <= 1,
        "propensities must lie in (0, 1], got ", propensity[size_t(j)], " and prefix ", prefix[size_t(j)],
        " at position ", j);
    MTREC_CHECK(clicks[size_t(j)] <= 1, "a click is 0 or 1, got ", int(clicks[size_t(j)]));
  }
}

}  // namespace

double ImpressionLog::mean_reward() const {
  if (size() == 0) return 0;
  double clicks = 0;
  for (uint8_t c : click) clicks += c;
  return clicks / double(size());
}

void ImpressionLog::add(int32_t u, int32_t s, const std::vector<int32_t>& items, const std::vector<double>& prop,
                        const std::vector<double>& pre, const std::vector<uint8_t>& clicks) {
  if (size() == 0 && k == 0) k = int64_t(items.size());
  check_slate(k, items, prop, pre, clicks);
  user.push_back(u);
  scenario.push_back(s);
  line.push_back(0);
  item.insert(item.end(), items.begin(), items.end());
  propensity.insert(propensity.end(), prop.begin(), prop.end());
  prefix.insert(prefix.end(), pre.begin(), pre.end());
  click.insert(click.end(), clicks.begin(), clicks.end());
}

void write_impressions_csv(const ImpressionLog& log, const std::string& path) {
  AtomicFile file(path);
  auto& out = file.stream();
  std::string row;
  for (int c = 0; c < kColumnCount; ++c) row += std::string(c ? "," : "") + kColumns[c];
  out << row << '\n';
  for (int64_t n = 0; n < log.size(); ++n) {
    for (int64_t j = 0; j < log.k; ++j) {
      const size_t at = size_t(n * log.k + j);
      row.clear();
      row += std::to_string(n) + ',';
      append_csv_field(row, log.users.raw(log.user[size_t(n)]));
      row += ',';
      append_csv_field(row, log.scenarios.raw(log.scenario[size_t(n)]));
      row += ',' + std::to_string(j) + ',';
      append_csv_field(row, log.items.raw(log.item[at]));
      row += fmt::format(",{:.17g},{:.17g},{}", log.propensity[at], log.prefix[at], int(log.click[at]));
      out << row << '\n';
    }
  }
  MTREC_CHECK(bool(out), "cannot write impressions to ", path);
  file.commit();
}

ImpressionLog read_impressions_csv(const std::string& path) {
  ImpressionLog log;
  log.source = path;
  int col[kColumnCount];
  bool header = true;
  std::string current;  // impression id of the open impression
  int64_t position = 0;
  std::vector<int32_t> items;
  std::vector<double> prop, pre;
  std::vector<uint8_t> clicks;
  int64_t first_line = 0;
  const auto fail = [&](int64_t line, const char* field, const std::string& msg) {
    throw DataError(path, line, field, msg);
  };
  std::unordered_set<std::string> seen_ids;
  const auto close = [&]() {
    if (current.empty()) return;
    if (log.k == 0) log.k = position;
    if (position != log.k)
      fail(first_line, "position",
           fmt::format("impression '{}' has {} positions, the log's first impression {}", current, position, log.k));
    log.line.push_back(first_line);
    log.item.insert(log.item.end(), items.begin(), items.end());
    log.propensity.insert(log.propensity.end(), prop.begin(), prop.end());
    log.prefix.insert(log.prefix.end(), pre.begin(), pre.end());
    log.click.insert(log.click.end(), clicks.begin(), clicks.end());
    items.clear(), prop.clear(), pre.clear(), clicks.clear();
    position = 0;
  };
  const auto number = [&](int64_t line, const char* field, std::string_view text) {
    text = trim(text);
    if (text.empty()) fail(line, field, "missing");
    double v = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec != std::errc() || r.ptr != text.data() + text.size() || !std::isfinite(v))
      fail(line, field, fmt::format("'{}' is not a number", text));
    return v;
  };
  int64_t last_line = 0;
  for_each_record(path, CsvOptions(), [&](int64_t line, const std::vector<std::string_view>& f) {
    last_line = line;
    if (header) {
      header = false;
      for (int c = 0; c < kColumnCount; ++c) {
        col[c] = -1;
        for (size_t i = 0; i < f.size(); ++i)
          if (trim(f[i]) == kColumns[c]) col[c] = int(i);
        if (col[c] < 0) fail(line, kColumns[c], "column missing from the header");
      }
      return;
    }
    const auto field = [&](int c) -> std::string_view {
      if (size_t(col[c]) >= f.size())
        fail(line, kColumns[c], fmt::format("the row has {} fields, the header more", f.size()));
      return trim(f[size_t(col[c])]);
    };
    const std::string id(field(0));
    if (id.empty()) fail(line, "impression", "missing");
    if (id != current) {
      close();
      if (!seen_ids.insert(id).second)
        fail(line, "impression",
             fmt::format("impression '{}' reappears after other impressions (its rows must be "
                         "consecutive)",
                         id));
      current = id;
      first_line = line;
      if (field(1).empty()) fail(line, "user", "missing");
      if (field(2).empty()) fail(line, "scenario", "missing");
      log.user.push_back(log.users.intern(field(1)));
      log.scenario.push_back(log.scenarios.intern(field(2)));
    } else {
      if (log.users.find(field(1)) != log.user.back())
        fail(line, "user", fmt::format("'{}' differs from the impression's first row", field(1)));
      if (log.scenarios.find(field(2)) != log.scenario.back())
        fail(line, "scenario", fmt::format("'{}' differs from the impression's first row", field(2)));
    }
    const double pos = number(line, "position", field(3));
    if (pos != double(position))
      fail(line, "position", fmt::format("expected position {} of impression '{}', got {}", position, id, field(3)));
    if (field(4).empty()) fail(line, "item", "missing");
    const int32_t it = log.items.intern(field(4));
    for (int32_t seen : items)
      if (seen == it) fail(line, "item", fmt::format("'{}' appears twice in impression '{}'", field(4), id));
    const double p = number(line, "propensity", field(5));
    if (!(p > 0 && p <= 1)) fail(line, "propensity", fmt::format("{} is not in (0, 1]", field(5)));
    const double q = number(line, "prefix_propensity", field(6));
    if (!(q > 0 && q <= 1)) fail(line, "prefix_propensity", fmt::format("{} is not in (0, 1]", field(6)));
    const double c = number(line, "click", field(7));
    if (c != 0 && c != 1) fail(line, "click", fmt::format("'{}' is not 0 or 1", field(7)));
    items.push_back(it), prop.push_back(p), pre.push_back(q), clicks.push_back(uint8_t(c));
    ++position;
  });
  if (header) throw DataError(path, 0, "impression", "the file is empty (no header)");
  close();
  if (log.size() == 0) throw DataError(path, last_line, "impression", "no impressions after the header");
  return log;
}

ImpressionLog remap_impressions(const ImpressionLog& log, const IdMap& users, const IdMap& items,
                                const IdMap& scenarios) {
  ImpressionLog out = log;
  out.users = users, out.items = items, out.scenarios = scenarios;
  const auto where = [&](int64_t n) { return log.line[size_t(n)]; };
  for (int64_t n = 0; n < log.size(); ++n) {
    const std::string& u = log.users.raw(log.user[size_t(n)]);
    out.user[size_t(n)] = users.find(u);
    if (out.user[size_t(n)] < 0) throw DataError(log.source, where(n), "user", fmt::format("unknown user '{}'", u));
    const std::string& s = log.scenarios.raw(log.scenario[size_t(n)]);
    out.scenario[size_t(n)] = scenarios.find(s);
    if (out.scenario[size_t(n)] < 0)
      throw DataError(log.source, where(n), "scenario", fmt::format("unknown scenario '{}'", s));
    for (int64_t j = 0; j < log.k; ++j) {
      const std::string& i = log.items.raw(log.item[size_t(n * log.k + j)]);
      out.item[size_t(n * log.k + j)] = items.find(i);
      if (out.item[size_t(n * log.k + j)] < 0)
        throw DataError(log.source, where(n) ? where(n) + j : 0, "item", fmt::format("unknown item '{}'", i));
    }
  }
  return out;
}

}  // namespace mtrec
