#pragma once
// The task map: which heads of the unified model serve which scenario, and how their scores
// are combined into one ranking score (a weighted sum of per-user z-scored head scores over the
// candidates, as fusion.h normalises them). Evaluation and serving follow it.
//   mtrec::TaskMap map = mtrec::parse_task_map("home_feed=ctr:1,next_item:0.5;search=ctr;*=ctr");
//   map.heads("ads")  ->  {{"ctr", 1}}   (the "*" entry; without one, the default head)
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mtrec {

struct TaskMap {
  /// scenario name ("*": every other scenario) -> (head, weight); heads: ctr|rating|next_item|match.
  std::map<std::string, std::vector<std::pair<std::string, double>>> entries;
  /// The heads of `scenario`: its entry, else "*", else `fallback` with weight 1.
  std::vector<std::pair<std::string, double>> heads(const std::string& scenario,
                                                    const std::string& fallback = "ctr") const;
  std::string to_string() const;
};

/// "scen=head[:w],head[:w];scen2=..." (weights default to 1); throws mtrec::Error naming the
/// malformed entry or a head not in `heads` (the unified model's, or a one-head model's own).
TaskMap parse_task_map(const std::string& text,
                       const std::vector<std::string>& heads = {"ctr", "rating", "next_item", "match"});

}  // namespace mtrec
