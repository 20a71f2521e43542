#include <gtest/gtest.h>

#include "mtrec/data/csv_writer.h"
#include "mtrec/data/dataset_loader.h"
#include "test_data.h"
#include "test_util.h"

namespace mtrec {
namespace {

using test::TempDir;

using test::data_error;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// Interactions from (user, item, rating, timestamp, behaviour) rows.
Interactions rows(const std::vector<std::tuple<int, int, float, int64_t, int>>& r, bool rating = true, bool ts = true) {
  Interactions x;
  x.has_rating = rating;
  x.has_timestamp = ts;
  for (const auto& [u, i, v, t, b] : r) x.push_back(u, i, v, t, 0, static_cast<int16_t>(b));
  return x;
}

TEST(DatasetLoader, TwoFilesWithBehavioursMergeIntoOneDataset) {
  TempDir t;
  auto ratings = t.write("ratings.csv", "user,item,rating,timestamp\nu1,b1,4,10\nu2,b2,5,20\n");
  auto wish = t.write("wish.csv", "user_id,book_id,timestamp\nu2,b1,30\nu3,b3,40\n");  // no rating column
  DatasetLoadReport rep;
  Dataset ds = load_dataset(DatasetSpec().file(ratings, "rating").file(wish, "wishlist"), &rep);
  const auto& x = ds.interactions;
  ASSERT_EQ(x.size(), 4u);
  EXPECT_EQ(ds.name, "ratings");
  EXPECT_TRUE(x.has_rating);
  EXPECT_TRUE(x.has_timestamp);
  // ids agree across files: b1 of the wishlist is b1 of the ratings.
  EXPECT_EQ(ds.users.raws(), (std::vector<std::string>{"u1", "u2", "u3"}));
  EXPECT_EQ(ds.items.raws(), (std::vector<std::string>{"b1", "b2", "b3"}));
  EXPECT_EQ(x.item[2], x.item[0]);
  EXPECT_EQ(x.user[2], x.user[1]);
  EXPECT_EQ(ds.behaviors.raws(), (std::vector<std::string>{"rating", "wishlist"}));
  EXPECT_EQ(x.behavior, (std::vector<int16_t>{0, 0, 1, 1}));
  EXPECT_EQ(x.rating, (std::vector<float>{4, 5, 1, 1}));  // the wishlist's rows: rating 1
  EXPECT_EQ(x.timestamp, (std::vector<int64_t>{10, 20, 30, 40}));
  ASSERT_EQ(rep.files.size(), 2u);
  EXPECT_EQ(rep.files[1].rows, 2);
  EXPECT_EQ(rep.files[1].behavior, "wishlist");
  EXPECT_FALSE(rep.files[1].has_rating);
  EXPECT_EQ(rep.duplicates.policy, DuplicatePolicy::KeepLast);  // Auto on rating data
  EXPECT_TRUE(contains(rep.summary(), "wish.csv has no ratings: its rows have rating 1")) << rep.summary();
  ds.validate();
}

TEST(DatasetLoader, ContextsOfOneFileAreKeptAndTheOthersHaveNone) {
  TempDir t;
  auto search = t.write("search.csv", "user,item,context\nu1,b1,red shoes\nu2,b2,\n");
  auto feed = t.write("feed.csv", "user,item\nu2,b1\n");
  auto more = t.write("more.csv", "user,item,context\nu3,b1,blue hats\nu1,b2,red shoes\n");
  Dataset ds = load_dataset(
      DatasetSpec().file(search, "click").file(feed, "click").file(more, "click").duplicates(DuplicatePolicy::KeepAll));
  const auto& x = ds.interactions;
  ASSERT_TRUE(x.has_context);
  EXPECT_EQ(x.context, (std::vector<int32_t>{0, -1, -1, 1, 0}));
  EXPECT_EQ(ds.context_text.get(0, "text"), "red shoes");
  EXPECT_EQ(ds.context_text.get(1, "text"), "blue hats");
}

TEST(DatasetLoader, TimestampsMissingInOneFileAreDroppedAndSaidSo) {
  TempDir t;
  auto a = t.write("a.csv", "user,item,timestamp\nu1,i1,5\n");
  auto b = t.write("b.csv", "user,item\nu1,i2\n");
  DatasetLoadReport rep;
  Dataset ds = load_dataset(DatasetSpec().file(a, "click").file(b, "buy"), &rep);
  EXPECT_FALSE(ds.interactions.has_timestamp);
  EXPECT_FALSE(ds.interactions.has_rating);
  EXPECT_TRUE(ds.interactions.timestamp.empty());
  ASSERT_EQ(rep.notes.size(), 1u);
  EXPECT_TRUE(contains(rep.notes[0], "timestamps dropped: " + b)) << rep.notes[0];
  EXPECT_EQ(rep.duplicates.policy, DuplicatePolicy::KeepAll);  // Auto on implicit data
}

TEST(DatasetLoader, CatalogueTextIsAttachedAndColdStartItemsInterned) {
  TempDir t;
  auto r = t.write("r.csv", "user,item,rating\nu1,b1,4\nu2,b2,3\n");
  auto items = t.write("books.tsv",
                       "book_id\ttitle\tauthors\tyear\nb2\tDune\tHerbert\t1965\nb9\tEmma\tAusten\t1815\n"
                       "b1\tUlysses\tJoyce\t1922\n");
  auto users = t.write("users.csv", "uid,profile\nu2,likes sci-fi\n");
  DatasetLoadReport rep;
  Dataset ds = load_dataset(DatasetSpec()
                                .file(r)
                                .items(CatalogSpec(items).id("book_id").text({"title", "authors"}).delimiter("\t"))
                                .users(CatalogSpec(users)),  // id found by alias, text: every other column
                            &rep);
  // b9 is only in the catalogue: a cold-start item after the interactions' ids.
  EXPECT_EQ(ds.items.raws(), (std::vector<std::string>{"b1", "b2", "b9"}));
  EXPECT_EQ(ds.interactions.size(), 2u);
  EXPECT_EQ(ds.item_text.fields(), (std::vector<std::string>{"title", "authors"}));
  ASSERT_EQ(ds.item_text.size(), 3);
  EXPECT_EQ(ds.item_text.get(ds.items.find("b1"), "title"), "Ulysses");
  EXPECT_EQ(ds.item_text.get(ds.items.find("b9"), "authors"), "Austen");
  EXPECT_EQ(ds.item_text.text(ds.items.find("b2")), "Dune. Herbert");
  EXPECT_EQ(ds.item_text.field_index("year"), -1);
  EXPECT_EQ(ds.user_text.fields(), (std::vector<std::string>{"profile"}));
  ASSERT_EQ(ds.user_text.size(), 2);
  EXPECT_EQ(ds.user_text.get(ds.users.find("u2"), "profile"), "likes sci-fi");
  EXPECT_EQ(ds.user_text.get(ds.users.find("u1"), "profile"), "");
  EXPECT_EQ(rep.items.rows, 3);
  EXPECT_EQ(rep.items.new_ids, 1);
  EXPECT_EQ(rep.users.new_ids, 0);
  EXPECT_TRUE(contains(rep.summary(), "1 items only there (cold start)")) << rep.summary();
  ds.validate();
}

TEST(DatasetLoader, BadCataloguesNameFileLineAndField) {
  TempDir t;
  auto r = t.write("r.csv", "user,item\nu1,i1\n");
  auto load = [&](const std::string& name, const std::string& content, CatalogSpec c = {}) {
    c.path(t.write(name, content));
    return data_error([&] { load_dataset(DatasetSpec().file(r).items(c)); });
  };
  const std::string p = t.path();
  EXPECT_EQ(load("few.csv", "item,title,year\ni1,A,1\ni2,B\n"),
            p + "/few.csv:3: field 'year': expected 3 fields, found 2");
  EXPECT_EQ(load("many.csv", "item,title\ni1,A,x\n"), p + "/many.csv:2: field 'column 3': expected 2 fields, found 3");
  EXPECT_EQ(load("empty_id.csv", "item,title\ni1,A\n ,B\n"), p + "/empty_id.csv:3: field 'item': empty item id");
  EXPECT_EQ(load("dup.csv", "item,title\ni1,A\ni2,B\ni1,C\n"),
            p + "/dup.csv:4: field 'item': duplicate item id 'i1' (first on line 2)");
  EXPECT_EQ(load("text.csv", "item,title,year\ni1,A,1\n", CatalogSpec().text({"title", "authors"})),
            p + "/text.csv:1: field 'authors': no text column named 'authors' (columns: item, title, year)");
  EXPECT_EQ(load("idcol.csv", "item,title\ni1,A\n", CatalogSpec().id("book_id")),
            p + "/idcol.csv:1: field 'book_id': no id column named 'book_id' (columns: item, title)");
  EXPECT_EQ(
      load("idx.csv", "item,title\ni1,A\n", CatalogSpec().id(5)),
      p + "/idx.csv:1: field 'item id': column index 5 is outside the 2 columns (item, title; indices are 0-based)");
  EXPECT_EQ(load("both.csv", "item,title\ni1,A\n", CatalogSpec().text({"item"})),
            p + "/both.csv:1: field 'item': the id column cannot also be a text column");
  EXPECT_EQ(load("none.csv", ""), p + "/none.csv:1: the file is empty (expected a header)");
  // Interaction files: the second file's problems name that file.
  auto good = t.write("good.csv", "user,item,rating\nu1,i1,4\n");
  auto bad = t.write("bad.csv", "user,item,rating\nu1,i2,x\n");
  EXPECT_EQ(data_error([&] { load_dataset(DatasetSpec().file(good).file(bad)); }),
            p + "/bad.csv:2: field 'rating': not a number: 'x'");
}

TEST(DatasetLoader, InconsistentSpecsAreErrors) {
  EXPECT_THROW(load_dataset(DatasetSpec()), Error);
  EXPECT_THROW(load_dataset(DatasetSpec().dir("x").file("y.csv")), Error);
  EXPECT_THROW(parse_duplicate_policy("first"), Error);
  EXPECT_EQ(parse_duplicate_policy("mean"), DuplicatePolicy::MeanRating);
  EXPECT_STREQ(to_string(parse_duplicate_policy("keep-last")), "keep-last");
}

TEST(DatasetLoader, FolderFromWriteDatasetCsvReadsBack) {
  TempDir t;
  Dataset w;
  w.name = "w";
  w.interactions.has_rating = true;
  w.users.intern("a");
  w.items.intern("x");
  w.items.intern("y");
  w.scenarios.intern("default");
  w.behaviors.intern("rating");
  w.interactions.push_back(0, 0, 3.0f);
  w.interactions.push_back(0, 0, 5.0f);  // a repeat: keep-last keeps this one
  w.interactions.push_back(0, 1, 2.0f);
  w.item_text = TextCatalog({"title"});
  w.item_text.set(1, "title", "Why");
  w.item_text.resize(2);
  write_dataset_csv(w, t.path("world"));
  DatasetLoadReport rep;
  Dataset ds = load_dataset(DatasetSpec().dir(t.path("world")), &rep);
  EXPECT_EQ(ds.name, "world");
  EXPECT_EQ(ds.num_items(), 2);
  EXPECT_EQ(ds.item_text.get(1, "title"), "Why");
  EXPECT_EQ(ds.interactions.rating, (std::vector<float>{5, 2}));
  EXPECT_EQ(rep.duplicates.pairs, 1);
  EXPECT_EQ(rep.duplicates.rows_before, 3);
  EXPECT_EQ(rep.duplicates.rows_after, 2);
}

// ---- duplicate policies, by hand -----------------------------------------------------------
// Rows (user, item, rating, timestamp, behaviour):
//   0: (0,0, 4, 30, 0)   1: (0,0, 2, 10, 0)   2: (1,0, 5, 5, 0)   3: (0,0, 3, 30, 0)
//   4: (0,0, 1, 50, 1)   5: (0,1, 4, 7, 0)    6: (0,1, 2, 7, 0)
// Keys with repeats: (0,0,b0) rows 0,1,3 and (0,1,b0) rows 5,6; row 4 is another behaviour.
Interactions dup_rows(bool ts = true) {
  return rows({{0, 0, 4, 30, 0},
               {0, 0, 2, 10, 0},
               {1, 0, 5, 5, 0},
               {0, 0, 3, 30, 0},
               {0, 0, 1, 50, 1},
               {0, 1, 4, 7, 0},
               {0, 1, 2, 7, 0}},
              true, ts);
}

TEST(DuplicatePolicy, CountsRepeatedPairsPerBehaviour) {
  DuplicateCount c = count_duplicate_pairs(dup_rows());
  EXPECT_EQ(c.pairs, 2);
  EXPECT_EQ(c.extra_rows, 3);  // 2 beyond row 0, 1 beyond row 5
  EXPECT_EQ(count_duplicate_pairs(rows({{0, 0, 1, 0, 0}, {0, 1, 1, 0, 0}})).pairs, 0);
}

TEST(DuplicatePolicy, KeepAllChangesNothingButCounts) {
  DuplicateReport r;
  Interactions out = apply_duplicate_policy(dup_rows(), DuplicatePolicy::KeepAll, &r);
  EXPECT_EQ(out.rating, dup_rows().rating);
  EXPECT_EQ(r.pairs, 2);
  EXPECT_EQ(r.rows_before, 7);
  EXPECT_EQ(r.rows_after, 7);
  EXPECT_EQ(r.describe(), "2 repeated (user, item, behaviour) pairs; keep-all: 7 -> 7 rows");
}

TEST(DuplicatePolicy, KeepLastTakesTheLatestTimestampThenTheLaterRow) {
  DuplicateReport r;
  Interactions out = apply_duplicate_policy(dup_rows(), DuplicatePolicy::KeepLast, &r);
  // (0,0,b0): rows 0 and 3 share the latest timestamp 30 -> row 3 (later in file order);
  // (1,0): row 2; (0,0,b1): row 4; (0,1,b0): rows 5, 6 tie at 7 -> row 6. Original order kept.
  EXPECT_EQ(out.rating, (std::vector<float>{5, 3, 1, 2}));
  EXPECT_EQ(out.timestamp, (std::vector<int64_t>{5, 30, 50, 7}));
  EXPECT_EQ(out.user, (std::vector<int32_t>{1, 0, 0, 0}));
  EXPECT_EQ(out.item, (std::vector<int32_t>{0, 0, 0, 1}));
  EXPECT_EQ(out.behavior, (std::vector<int16_t>{0, 0, 1, 0}));
  EXPECT_EQ(r.describe(), "2 repeated (user, item, behaviour) pairs; keep-last: 7 -> 4 rows");
  // Without timestamps: the last row in file order (row 3 for (0,0,b0), row 6 for (0,1,b0)).
  Interactions no_ts = apply_duplicate_policy(dup_rows(false), DuplicatePolicy::KeepLast);
  EXPECT_EQ(no_ts.rating, (std::vector<float>{5, 3, 1, 2}));
  // A later row with an earlier timestamp loses: (0,0): row 0 at t=9 beats row 1 at t=3.
  Interactions late = apply_duplicate_policy(rows({{0, 0, 4, 9, 0}, {0, 0, 2, 3, 0}}), DuplicatePolicy::KeepLast);
  EXPECT_EQ(late.rating, (std::vector<float>{4}));
}

TEST(DuplicatePolicy, MeanRatingAveragesIntoTheLatestRow) {
  DuplicateReport r;
  Interactions out = apply_duplicate_policy(dup_rows(), DuplicatePolicy::MeanRating, &r);
  // (0,0,b0): (4+2+3)/3 = 3 at row 3's place; (1,0): 5; (0,0,b1): 1; (0,1,b0): (4+2)/2 = 3.
  EXPECT_EQ(out.rating, (std::vector<float>{5, 3, 1, 3}));
  EXPECT_EQ(out.timestamp, (std::vector<int64_t>{5, 30, 50, 7}));
  EXPECT_EQ(r.policy, DuplicatePolicy::MeanRating);
  EXPECT_EQ(r.rows_after, 4);
  Interactions uneven =
      apply_duplicate_policy(rows({{0, 0, 1, 1, 0}, {0, 0, 2, 2, 0}, {0, 0, 4, 3, 0}}), DuplicatePolicy::MeanRating);
  EXPECT_FLOAT_EQ(uneven.rating[0], 7.0f / 3.0f);
  // Implicit data has nothing to average.
  EXPECT_THROW(apply_duplicate_policy(rows({{0, 0, 1, 1, 0}}, false), DuplicatePolicy::MeanRating), Error);
}

TEST(DuplicatePolicy, AutoIsKeepLastOnRatingsAndKeepAllOtherwise) {
  DuplicateReport r;
  EXPECT_EQ(apply_duplicate_policy(dup_rows(), DuplicatePolicy::Auto, &r).size(), 4u);
  EXPECT_EQ(r.policy, DuplicatePolicy::KeepLast);
  EXPECT_EQ(apply_duplicate_policy(rows({{0, 0, 1, 1, 0}, {0, 0, 1, 2, 0}}, false), DuplicatePolicy::Auto, &r).size(),
            2u);
  EXPECT_EQ(r.policy, DuplicatePolicy::KeepAll);
  EXPECT_EQ(r.pairs, 1);
}

TEST(DatasetLoader, PolicyAppliesAcrossFilesInFileOrder) {
  TempDir t;
  // The same (user, item) rated in two files without timestamps: the second file's row is later.
  auto a = t.write("a.csv", "user,item,rating\nu1,i1,2\nu1,i2,4\n");
  auto b = t.write("b.csv", "user,item,rating\nu1,i1,5\n");
  DatasetLoadReport rep;
  Dataset last = load_dataset(DatasetSpec().file(a).file(b).duplicates(DuplicatePolicy::KeepLast), &rep);
  EXPECT_EQ(last.interactions.rating, (std::vector<float>{4, 5}));
  EXPECT_EQ(rep.duplicates.pairs, 1);
  Dataset mean = load_dataset(DatasetSpec().file(a).file(b).duplicates(DuplicatePolicy::MeanRating));
  EXPECT_EQ(mean.interactions.rating, (std::vector<float>{4, 3.5}));
  Dataset all = load_dataset(DatasetSpec().file(a).file(b).duplicates(DuplicatePolicy::KeepAll));
  EXPECT_EQ(all.interactions.size(), 3u);
}

}  // namespace
}  // namespace mtrec
