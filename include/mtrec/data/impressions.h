#pragma once
// Impression logs: what an exploring policy showed, with what probability, and what was
// clicked -- the input of off-policy evaluation and learning (policy/ope.h).
//
//   mtrec::write_impressions_csv(log, "impressions.csv");
//   mtrec::ImpressionLog back = mtrec::read_impressions_csv("impressions.csv");
//
// The CSV has one row per shown position, the rows of an impression consecutive and in position
// order, under the header
//   impression,user,scenario,position,item,propensity,prefix_propensity,click
// propensity: the logging policy's probability of showing that item at that position (its
// marginal); prefix_propensity: the probability of the slate's first position+1 items, in order;
// click: 0 or 1. Every impression has the same number of positions (the slate size k).
// Reading refuses, naming the file, line and field: a missing column, a propensity that is
// missing, not a number, <= 0 or > 1, positions out of order, an item repeated in a slate, an
// impression whose user or scenario changes between its rows, slates of different sizes.
#include <cstdint>
#include <string>
#include <vector>

#include "mtrec/data/schema.h"

namespace mtrec {

struct ImpressionLog {
  std::string source;  // the file it was read from ("" when built in memory)
  int64_t k = 0;       // slate size
  IdMap users, items, scenarios;
  std::vector<int32_t> user, scenario;  // per impression
  std::vector<int64_t> line;            // per impression: its first line in `source` (0: none)
  std::vector<int32_t> item;            // [impressions x k]
  std::vector<double> propensity;       // [impressions x k]
  std::vector<double> prefix;           // [impressions x k]
  std::vector<uint8_t> click;           // [impressions x k]

  int64_t size() const { return int64_t(user.size()); }
  /// Mean clicks per impression.
  double mean_reward() const;
  /// Appends one impression (checks sizes and propensities; throws mtrec::Error).
  void add(int32_t user, int32_t scenario, const std::vector<int32_t>& items, const std::vector<double>& propensity,
           const std::vector<double>& prefix, const std::vector<uint8_t>& clicks);
};

/// Writes atomically; throws mtrec::Error when the file cannot be written.
void write_impressions_csv(const ImpressionLog& log, const std::string& path);
/// Throws mtrec::DataError naming the file, line and field on malformed input.
ImpressionLog read_impressions_csv(const std::string& path);
/// The log with its ids renumbered into the given maps (a model's or a world's); an id the maps
/// lack throws DataError naming the log's file and the impression's line.
ImpressionLog remap_impressions(const ImpressionLog& log, const IdMap& users, const IdMap& items,
                                const IdMap& scenarios);

}  // namespace mtrec
