#include "mtrec/data/id_remap.h"

#include <gtest/gtest.h>

#include "mtrec/core/check.h"

namespace mtrec {
namespace {

// A data set with users a, b, items x, y and scenarios home, search.
Dataset two_scenario_data() {
  Dataset ds;
  for (const char* u : {"a", "b"}) ds.users.intern(u);
  for (const char* i : {"x", "y"}) ds.items.intern(i);
  for (const char* s : {"home", "search"}) ds.scenarios.intern(s);
  ds.interactions.push_back(0, 0, 1, 0, /*scen=*/1);
  ds.interactions.push_back(1, 1, 1, 0, /*scen=*/0);
  return ds;
}

IdMap map_of(std::initializer_list<const char*> raws) {
  IdMap m;
  for (const char* r : raws) m.intern(r);
  return m;
}

}  // namespace

TEST(IdRemap, MapsUsersItemsAndScenariosByName) {
  Dataset ds = two_scenario_data();
  int64_t dropped = 0;
  Interactions out =
      remap_ids(ds.interactions, ds, map_of({"b", "a"}), map_of({"y", "x"}), map_of({"search", "home"}), dropped);
  EXPECT_EQ(dropped, 0);
  EXPECT_EQ(out.user, (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(out.item, (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(out.scenario, (std::vector<int16_t>{0, 1}));
}

TEST(IdRemap, ContextsKeepTheirIds) {
  Dataset ds = two_scenario_data();
  ds.context_text.set(0, "text", "q");
  ds.context_text.set(1, "text", "p");
  ds.interactions.has_context = true;
  ds.interactions.context = {1, -1};
  int64_t dropped = 0;
  Interactions out = remap_ids(ds.interactions, ds, map_of({"b"}), map_of({"y", "x"}), IdMap(), dropped);
  EXPECT_EQ(dropped, 1);
  ASSERT_TRUE(out.has_context);
  EXPECT_EQ(out.context, (std::vector<int32_t>{-1}));
}

TEST(IdRemap, UnknownUsersAreDroppedAndCounted) {
  Dataset ds = two_scenario_data();
  int64_t dropped = 3;
  Interactions out =
      remap_ids(ds.interactions, ds, map_of({"a"}), map_of({"x", "y"}), map_of({"home", "search"}), dropped);
  EXPECT_EQ(dropped, 4);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out.scenario[0], 1);
}

TEST(IdRemap, UnknownScenarioIsAnErrorNamingIt) {
  // Row 0 is in "search", which the target maps lack: it must not be scored as "home" (id 0).
  Dataset ds = two_scenario_data();
  int64_t dropped = 0;
  try {
    remap_ids(ds.interactions, ds, map_of({"a", "b"}), map_of({"x", "y"}), map_of({"home", "ads"}), dropped);
    FAIL() << "an unknown scenario was accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'search'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("home, ads"), std::string::npos) << msg;
  }
  // A data set without scenarios is in "default".
  Dataset plain = two_scenario_data();
  plain.scenarios = IdMap();
  plain.interactions.scenario.assign(plain.interactions.size(), 0);
  EXPECT_THROW(remap_ids(plain.interactions, plain, map_of({"a", "b"}), map_of({"x", "y"}), map_of({"home"}), dropped),
               Error);
  Interactions ok =
      remap_ids(plain.interactions, plain, map_of({"a", "b"}), map_of({"x", "y"}), map_of({"ads", "default"}), dropped);
  EXPECT_EQ(ok.scenario, (std::vector<int16_t>{1, 1}));
  // No target scenarios (a checkpoint of a head without them): the column is left alone.
  Interactions as_is = remap_ids(ds.interactions, ds, map_of({"a", "b"}), map_of({"x", "y"}), IdMap(), dropped);
  EXPECT_EQ(as_is.scenario, ds.interactions.scenario);
}

}  // namespace mtrec
