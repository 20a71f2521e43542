#include "mtrec/data/schema.h"

#include <gtest/gtest.h>

#include "mtrec/core/check.h"

namespace mtrec {
namespace {

Interactions with_contexts() {
  Interactions x;
  x.has_context = true;
  x.push_back(0, 1, 1, 0, 0, 0, /*ctx=*/2);
  x.push_back(1, 0, 1, 0, 1, 0);  // no context
  x.push_back(1, 1, 1, 0, 1, 0, 0);
  return x;
}

TEST(Interactions, ContextsFollowPushBackAndSubset) {
  Interactions x = with_contexts();
  EXPECT_EQ(x.context, (std::vector<int32_t>{2, -1, 0}));
  x.check_consistent();
  Interactions s = x.subset({2, 0});
  EXPECT_TRUE(s.has_context);
  EXPECT_EQ(s.context, (std::vector<int32_t>{0, 2}));
  // Without the flag the argument is ignored.
  Interactions plain;
  plain.push_back(0, 0, 1, 0, 0, 0, 5);
  EXPECT_TRUE(plain.context.empty());
  EXPECT_FALSE(plain.subset({0}).has_context);
}

TEST(Interactions, ContextArrayLengthAndRangeAreChecked) {
  Interactions x = with_contexts();
  x.context.pop_back();
  EXPECT_THROW(x.check_consistent(), Error);
  Dataset ds;
  for (const char* u : {"a", "b"}) ds.users.intern(u);
  for (const char* i : {"x", "y"}) ds.items.intern(i);
  ds.interactions = with_contexts();
  ds.context_text.set(0, "text", "q");
  try {
    ds.validate();  // context 2 is outside the 1-entry catalogue
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("interaction 0 has context id 2 outside [-1, 1)"), std::string::npos)
        << e.what();
  }
  ds.context_text.set(2, "text", "r");
  ds.validate();
}

}  // namespace
}  // namespace mtrec
