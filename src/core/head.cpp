#include "mtrec/core/head.h"

#include "mtrec/core/check.h"

namespace mtrec {

const std::vector<Head>& all_heads() {
  static const std::vector<Head> heads = {Head::Rating, Head::Ctr,      Head::NextItem,
                                          Head::Match,  Head::Scenario, Head::Mlm};
  return heads;
}

const char* head_name(Head head) {
  switch (head) {
    case Head::Rating:
      return "rating";
    case Head::Ctr:
      return "ctr";
    case Head::NextItem:
      return "next_item";
    case Head::Match:
      return "match";
    case Head::Scenario:
      return "scenario";
    case Head::Mlm:
      return "mlm";
  }
  MTREC_FAIL("head_name: not a head (", static_cast<int>(head), ")");
}

std::string canonical_task_name(const std::string& name) { return name == "next-item" ? "next_item" : name; }

Head parse_head(const std::string& name) {
  const std::string n = canonical_task_name(name);
  std::string names;
  for (Head h : all_heads()) {
    if (n == head_name(h)) return h;
    names += (names.empty() ? "" : "|") + std::string(head_name(h));
  }
  MTREC_FAIL("unknown head '", name, "' (expected ", names, ")");
}

}  // namespace mtrec
