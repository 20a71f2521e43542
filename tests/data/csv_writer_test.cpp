#include "mtrec/data/csv_writer.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "mtrec/core/io.h"
#include "mtrec/data/csv_reader.h"
#include "mtrec/data/synthetic.h"
#include "test_util.h"

namespace mtrec {
namespace {

/// Field by field: ids both ways, every interaction column, every text field of every entity.
void expect_same_dataset(const Dataset& a, const Dataset& b) {
  EXPECT_EQ(a.users.raws(), b.users.raws());
  EXPECT_EQ(a.items.raws(), b.items.raws());
  EXPECT_EQ(a.scenarios.raws(), b.scenarios.raws());
  EXPECT_EQ(a.behaviors.raws(), b.behaviors.raws());
  const Interactions &x = a.interactions, &y = b.interactions;
  EXPECT_EQ(x.has_rating, y.has_rating);
  EXPECT_EQ(x.has_timestamp, y.has_timestamp);
  EXPECT_EQ(x.user, y.user);
  EXPECT_EQ(x.item, y.item);
  EXPECT_EQ(x.rating, y.rating);  // bit-exact: ratings are written in shortest round-trip form
  EXPECT_EQ(x.timestamp, y.timestamp);
  EXPECT_EQ(x.scenario, y.scenario);
  EXPECT_EQ(x.behavior, y.behavior);
  EXPECT_EQ(x.has_context, y.has_context);
  EXPECT_EQ(x.context, y.context);
  if (x.has_context) {
    EXPECT_EQ(a.context_text.size(), b.context_text.size());
  }
  for (auto [ta, tb, n] :
       {std::tuple{&a.item_text, &b.item_text, a.num_items()}, std::tuple{&a.user_text, &b.user_text, a.num_users()},
        std::tuple{&a.context_text, &b.context_text, x.has_context ? a.context_text.size() : 0}}) {
    if (n == 0) continue;
    EXPECT_EQ(ta->fields(), tb->fields());
    for (int32_t id = 0; id < n; ++id)
      for (const auto& f : ta->fields()) EXPECT_EQ(ta->get(id, f), tb->get(id, f)) << "id " << id << " field " << f;
  }
}

/// Ids, scenarios and behaviours deliberately interned in an order that first appearance in
/// interactions.csv would not reproduce, plus an item and a behaviour without interactions.
Dataset tricky_dataset() {
  Dataset ds;
  ds.name = "tricky";
  for (const char* u : {"alice", "bob, jr.", "\"carol\""}) ds.users.intern(u);
  for (const char* i : {"i9", "i1", "multi\nline id", "lonely"}) ds.items.intern(i);
  for (const char* s : {"search", "home feed"}) ds.scenarios.intern(s);
  for (const char* b : {"wishlist", "click", "never used"}) ds.behaviors.intern(b);
  auto& x = ds.interactions;
  x.has_rating = x.has_timestamp = true;
  x.push_back(2, 1, 4.5f, 1700000000, 1, 1);
  x.push_back(0, 0, 0.1f, -5, 0, 0);
  x.push_back(1, 2, 3.0f, 9007199254740993LL, 1, 1);  // > 2^53: must not pass through a double
  x.push_back(2, 2, 1e-7f, 0, 0, 1);
  ds.item_text.set(0, "title", "Amélie, \"Le fabuleux destin\"");
  ds.item_text.set(1, "title", "line one\nline two\r\nline three");
  ds.item_text.set(2, "description", "日本語のテキスト, with comma");
  ds.item_text.set(3, "title", " leading and trailing spaces ");
  ds.user_text.set(0, "profile", "likes \"quoted\" things");
  ds.user_text.set(2, "profile", "");
  return ds;
}

TEST(CsvWriter, QuotesPerRfc4180) {
  std::string out;
  append_csv_field(out, "plain");
  out += '|';
  append_csv_field(out, "a,b");
  out += '|';
  append_csv_field(out, "say \"hi\"");
  out += '|';
  append_csv_field(out, "two\nlines");
  out += '|';
  append_csv_field(out, "cr\ronly");
  out += '|';
  append_csv_field(out, "");
  EXPECT_EQ(out, "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"|\"cr\ronly\"|");
}

TEST(CsvWriter, WritesTheDocumentedFiles) {
  test::TempDir tmp;
  Dataset ds = tricky_dataset();
  write_dataset_csv(ds, tmp.path("out"));
  std::string inter = read_file(tmp.path("out/interactions.csv"));
  EXPECT_EQ(inter.substr(0, inter.find('\n')), "user,item,rating,timestamp,scenario,behaviour");
  EXPECT_NE(inter.find("\"\"\"carol\"\"\",i1,4.5,1700000000,home feed,click\n"), std::string::npos) << inter;
  EXPECT_NE(inter.find("\"bob, jr.\",\"multi\nline id\",3,9007199254740993,home feed,click\n"), std::string::npos);
  EXPECT_EQ(read_file(tmp.path("out/users.csv")),
            "user,profile\nalice,\"likes \"\"quoted\"\" things\"\n\"bob, jr.\",\n\"\"\"carol\"\"\",\n");
  EXPECT_EQ(read_file(tmp.path("out/behaviours.csv")), "behaviour\nwishlist\nclick\nnever used\n");
  for (const char* f : {"items.csv", "scenarios.csv"}) EXPECT_TRUE(std::filesystem::exists(tmp.path("out/") + f));
  // No temporary files left behind by the atomic writes.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(tmp.path("out")), {}), 5);
}

TEST(CsvWriter, RoundTripKeepsIdsRowsAndText) {
  test::TempDir tmp;
  Dataset ds = tricky_dataset();
  write_dataset_csv(ds, tmp.path("tricky"));
  Dataset back = read_dataset_dir(tmp.path("tricky"));
  EXPECT_EQ(back.name, "tricky");
  expect_same_dataset(ds, back);
  // Writing what was read gives the same bytes.
  write_dataset_csv(back, tmp.path("again"));
  for (const char* f : {"interactions.csv", "items.csv", "users.csv", "scenarios.csv", "behaviours.csv"})
    EXPECT_EQ(read_file(tmp.path("tricky/") + f), read_file(tmp.path("again/") + f)) << f;
}

TEST(CsvWriter, RoundTripWithoutRatingOrTimestamp) {
  test::TempDir tmp;
  Dataset ds = tricky_dataset();
  auto& x = ds.interactions;
  x.has_rating = x.has_timestamp = false;
  x.rating.clear();
  x.timestamp.clear();
  write_dataset_csv(ds, tmp.path());
  std::string inter = read_file(tmp.path("interactions.csv"));
  EXPECT_EQ(inter.substr(0, inter.find('\n')), "user,item,scenario,behaviour");
  expect_same_dataset(ds, read_dataset_dir(tmp.path()));
}

TEST(CsvWriter, SyntheticWorldRoundTrips) {
  test::TempDir tmp;
  SyntheticWorld w = generate_world(SyntheticOptions().users(40).items(25).interactions(1500).seed(7).threads(1));
  ASSERT_GT(w.data.interactions.size(), 500u);
  write_dataset_csv(w.data, tmp.path("world"));
  Dataset back = read_dataset_dir(tmp.path("world"));
  expect_same_dataset(w.data, back);
  EXPECT_EQ(back.item_text.fields(), (std::vector<std::string>{"title", "description"}));
  // The interactions file alone, read by the plain reader, has the same rows.
  Dataset flat = read_csv(tmp.path("world/interactions.csv"));
  EXPECT_EQ(flat.interactions.size(), w.data.interactions.size());
  EXPECT_TRUE(validate_csv(tmp.path("world/interactions.csv")).ok());
}

/// tricky_dataset with request contexts: catalogued in an order first appearance would not
/// give, one unused, one row without a context.
Dataset tricky_with_contexts() {
  Dataset ds = tricky_dataset();
  for (const char* c : {"never shown", "query, \"quoted\"", "home feed for you"}) {
    const int32_t id = ds.context_text.size();
    ds.context_text.set(id, "text", c);
  }
  auto& x = ds.interactions;
  x.has_context = true;
  x.context = {2, 1, -1, 2};
  return ds;
}

TEST(CsvWriter, ContextsRoundTripAsTextWithTheirCatalogue) {
  test::TempDir tmp;
  Dataset ds = tricky_with_contexts();
  write_dataset_csv(ds, tmp.path("ctx"));
  std::string inter = read_file(tmp.path("ctx/interactions.csv"));
  EXPECT_EQ(inter.substr(0, inter.find('\n')), "user,item,rating,timestamp,scenario,behaviour,context");
  EXPECT_NE(inter.find("\"\"\"carol\"\"\",i1,4.5,1700000000,home feed,click,home feed for you\n"), std::string::npos)
      << inter;
  EXPECT_NE(inter.find("3,9007199254740993,home feed,click,\n"), std::string::npos) << inter;  // none: empty
  EXPECT_EQ(read_file(tmp.path("ctx/contexts.csv")),
            "context\nnever shown\n\"query, \"\"quoted\"\"\"\nhome feed for you\n");
  Dataset back = read_dataset_dir(tmp.path("ctx"));
  expect_same_dataset(ds, back);
  EXPECT_EQ(back.context_text.get(0, "text"), "never shown");
  // Without the catalogue, contexts are numbered by first appearance.
  std::filesystem::remove(tmp.path("ctx/contexts.csv"));
  Dataset flat = read_dataset_dir(tmp.path("ctx"));
  EXPECT_EQ(flat.interactions.context, (std::vector<int32_t>{0, 1, -1, 0}));
  EXPECT_EQ(flat.context_text.get(1, "text"), "query, \"quoted\"");
  // Data without contexts writes no context column and no contexts.csv.
  write_dataset_csv(tricky_dataset(), tmp.path("plain"));
  EXPECT_FALSE(std::filesystem::exists(tmp.path("plain/contexts.csv")));
  EXPECT_FALSE(read_dataset_dir(tmp.path("plain")).interactions.has_context);
}

TEST(CsvWriter, RejectsContextsThatWouldNotReadBack) {
  test::TempDir tmp;
  Dataset ds = tricky_with_contexts();
  ds.context_text.set(3, "text", "home feed for you");  // the same text twice
  try {
    write_dataset_csv(ds, tmp.path());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("context #3 'home feed for you'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("context #2"), std::string::npos) << e.what();
  }
  ds = tricky_with_contexts();
  ds.context_text.set(0, "text", " padded");
  EXPECT_THROW(write_dataset_csv(ds, tmp.path()), Error);
  ds = tricky_with_contexts();
  ds.interactions.context[0] = 7;  // outside the catalogue
  EXPECT_THROW(write_dataset_csv(ds, tmp.path()), Error);
}

TEST(CsvWriter, RejectsIdsThatWouldNotReadBack) {
  test::TempDir tmp;
  Dataset ds = tricky_dataset();
  ds.users.intern(" padded");
  EXPECT_THROW(write_dataset_csv(ds, tmp.path()), Error);
  EXPECT_FALSE(std::filesystem::exists(tmp.path("interactions.csv")));
}

TEST(ReadDatasetDir, ItemsWithoutCatalogAndNewIdsAppend) {
  test::TempDir tmp;
  tmp.write("interactions.csv", "user,item,rating\nu1,a,5\nu2,b,3\n");
  tmp.write("items.csv", "title,item_id\nSecond,b\n");  // id column found by name, not position
  Dataset ds = read_dataset_dir(tmp.path());
  EXPECT_EQ(ds.items.raws(), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(ds.item_text.get(0, "title"), "Second");
  EXPECT_EQ(ds.item_text.get(1, "title"), "");
  EXPECT_EQ(ds.interactions.item, (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(ds.user_text.size(), 2);
}

TEST(ReadDatasetDir, ErrorsNameFileLineAndField) {
  test::TempDir tmp;
  tmp.write("interactions.csv", "user,item\nu1,a\n");
  auto expect_error = [&](const std::string& items, int64_t line, const std::string& field, const std::string& what) {
    tmp.write("items.csv", items);
    try {
      read_dataset_dir(tmp.path());
      ADD_FAILURE() << "no error for " << items;
    } catch (const DataError& e) {
      EXPECT_EQ(e.file(), tmp.path("items.csv"));
      EXPECT_EQ(e.line(), line) << e.what();
      EXPECT_EQ(e.field(), field) << e.what();
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_error("item,title\na,\"x\ny\"\na,again\n", 4, "item", "duplicate item id 'a' (first on line 2)");
  expect_error("item,title\na,x,extra\n", 2, "column 3", "expected 2 fields, found 3");
  expect_error("item,title\n  ,x\n", 2, "item", "empty item id");
  expect_error("item,title,title\n", 1, "title", "duplicate column name");
  EXPECT_THROW(read_dataset_dir(tmp.path("missing")), Error);
}

TEST(ReadDatasetDir, DefaultBehaviourKeepsKnownIds) {
  // behaviours.csv already holds "rating" at id 0: rows without a behaviour column must get 0.
  test::TempDir tmp;
  tmp.write("interactions.csv", "user,item,rating\nu1,a,5\n");
  tmp.write("behaviours.csv", "behaviour\nrating\nclick\n");
  Dataset ds = read_dataset_dir(tmp.path());
  EXPECT_EQ(ds.behaviors.raws(), (std::vector<std::string>{"rating", "click"}));
  EXPECT_EQ(ds.interactions.behavior, (std::vector<int16_t>{0}));
}

}  // namespace
}  // namespace mtrec
