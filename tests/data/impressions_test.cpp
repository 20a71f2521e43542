#include <gtest/gtest.h>

#include "mtrec/data/impressions.h"
#include "test_data.h"
#include "test_util.h"

namespace mtrec {
namespace {

using test::data_error;
using test::TempDir;

const char* kHeader = "impression,user,scenario,position,item,propensity,prefix_propensity,click\n";

TEST(Impressions, WriteThenReadRoundTrips) {
  ImpressionLog log;
  log.users.intern("u0"), log.users.intern("u,1");
  log.items.intern("a"), log.items.intern("b"), log.items.intern("c");
  log.scenarios.intern("home_feed");
  log.add(1, 0, {2, 0}, {0.25, 0.125}, {0.25, 0.0625}, {1, 0});
  log.add(0, 0, {0, 1}, {1.0 / 3, 0.1}, {1.0 / 3, 0.05}, {0, 1});
  TempDir t;
  write_impressions_csv(log, t.path("log.csv"));
  ImpressionLog back = read_impressions_csv(t.path("log.csv"));
  ASSERT_EQ(back.size(), 2);
  EXPECT_EQ(back.k, 2);
  EXPECT_EQ(back.users.raw(back.user[0]), "u,1");
  EXPECT_EQ(back.items.raw(back.item[0]), "c");
  EXPECT_EQ(back.items.raw(back.item[3]), "b");
  EXPECT_EQ(back.propensity[2], 1.0 / 3);  // %.17g round-trips exactly
  EXPECT_EQ(back.prefix[1], 0.0625);
  EXPECT_EQ(back.click, (std::vector<uint8_t>{1, 0, 0, 1}));
  EXPECT_EQ(back.line, (std::vector<int64_t>{2, 4}));
  EXPECT_DOUBLE_EQ(back.mean_reward(), 1.0);
}

TEST(Impressions, AZeroOrMissingPropensityIsRefusedNamingFileAndLine) {
  TempDir t;
  const std::string good = "0,u0,home,0,i1,0.5,0.5,1\n0,u0,home,1,i2,0.25,0.125,0\n";
  auto zero = t.write("zero.csv", std::string(kHeader) + good + "1,u1,home,0,i1,0,0.5,0\n1,u1,home,1,i3,0.5,0.2,0\n");
  std::string e = data_error([&] { read_impressions_csv(zero); });
  EXPECT_NE(e.find("zero.csv:4"), std::string::npos) << e;
  EXPECT_NE(e.find("propensity"), std::string::npos) << e;
  auto missing = t.write("missing.csv", std::string(kHeader) + good + "1,u1,home,0,i1,,0.5,0\n");
  e = data_error([&] { read_impressions_csv(missing); });
  EXPECT_NE(e.find("missing.csv:4"), std::string::npos) << e;
  EXPECT_NE(e.find("missing"), std::string::npos) << e;
  auto above = t.write("above.csv", std::string(kHeader) + "0,u0,home,0,i1,1.5,0.5,1\n");
  EXPECT_NE(data_error([&] { read_impressions_csv(above); }).find("above.csv:2: field 'propensity'"),
            std::string::npos);
}

TEST(Impressions, MalformedLogsAreRefused) {
  TempDir t;
  auto no_column = t.write("h.csv", "impression,user,scenario,position,item,propensity,click\n0,u,s,0,i,1,1,0\n");
  EXPECT_NE(data_error([&] { read_impressions_csv(no_column); }).find("h.csv:1: field 'prefix_propensity'"),
            std::string::npos);
  auto order = t.write("o.csv", std::string(kHeader) + "0,u0,s,1,i1,0.5,0.5,0\n");
  EXPECT_NE(data_error([&] { read_impressions_csv(order); }).find("o.csv:2: field 'position'"), std::string::npos);
  auto repeat = t.write("r.csv", std::string(kHeader) + "0,u0,s,0,i1,0.5,0.5,0\n0,u0,s,1,i1,0.5,0.25,0\n");
  EXPECT_NE(data_error([&] { read_impressions_csv(repeat); }).find("r.csv:3: field 'item'"), std::string::npos);
  auto user = t.write("u.csv", std::string(kHeader) + "0,u0,s,0,i1,0.5,0.5,0\n0,u9,s,1,i2,0.5,0.25,0\n");
  EXPECT_NE(data_error([&] { read_impressions_csv(user); }).find("u.csv:3: field 'user'"), std::string::npos);
  auto sizes = t.write("k.csv", std::string(kHeader) +
                                    "0,u0,s,0,i1,0.5,0.5,0\n0,u0,s,1,i2,0.5,0.25,0\n"
                                    "1,u0,s,0,i1,0.5,0.5,0\n");
  EXPECT_NE(data_error([&] { read_impressions_csv(sizes); }).find("k.csv:4: field 'position'"), std::string::npos);
  auto click = t.write("c.csv", std::string(kHeader) + "0,u0,s,0,i1,0.5,0.5,2\n");
  EXPECT_NE(data_error([&] { read_impressions_csv(click); }).find("c.csv:2: field 'click'"), std::string::npos);
}

TEST(Impressions, RemapNamesTheLineOfAnUnknownId) {
  TempDir t;
  auto p = t.write("l.csv", std::string(kHeader) + "7,u0,s,0,i1,0.5,0.5,0\n8,u1,s,0,i9,0.5,0.5,0\n");
  ImpressionLog log = read_impressions_csv(p);
  IdMap users, items, scenarios;
  users.intern("u1"), users.intern("u0");
  items.intern("i1");
  scenarios.intern("s");
  const std::string e = data_error([&] { remap_impressions(log, users, items, scenarios); });
  EXPECT_NE(e.find("l.csv:3: field 'item'"), std::string::npos) << e;
  items.intern("i9");
  ImpressionLog r = remap_impressions(log, users, items, scenarios);
  EXPECT_EQ(r.user, (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(r.item, (std::vector<int32_t>{0, 1}));
}

}  // namespace
}  // namespace mtrec
